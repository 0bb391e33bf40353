"""AdaIN train state, the loss on a batch and the per-device train step.

State (a plain dict, as the other tasks'): `{'step', 'rng', 'params': {'decoder'}, 'opt':
{'decoder'}}`, all replicated. The frozen side, `{'vgg': encoder params, 'kernels_t': their
input-gradient kernels}`, is a separate argument of the step (never closed over, so the VGG's
constants stay out of the HLO and out of the optimiser).

The loss is the reference's (naoto0804/pytorch-AdaIN `net.Net.forward`): with f the encoder
(relu1_1 ... relu4_1) and t = AdaIN(f(c)_relu4_1, f(s)_relu4_1),
  content = MSE(f(g(t))_relu4_1, t),
  style = Σ_l MSE(mean_l(g(t)), mean_l(s)) + MSE(std_l(g(t)), std_l(s)) over the four layers,
each MSE a mean over the batch (and channels, and pixels for the content term); std is
sqrt(unbiased variance + eps) as `models.adain.mean_std`. Total = content_weight · content +
style_weight · style. Images enter as [0, 255] and are scaled to the encoder's [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxstyle.fast_style.step import load_vgg
from jaxstyle.models import adain as adain_model
from jaxstyle.models.vgg import frozen_kernels
from jaxstyle.parallel import DATA_AXIS

LAYERS = adain_model.ENCODER_LAYERS
CONTENT_LAYER = LAYERS[-1]
KIND = 'imagenet'  # the encoder over our VGG19 (keras / torchvision / random weights)


def make_decoder(config: Any) -> adain_model.Decoder:
  return adain_model.Decoder(dtype=jnp.dtype(config.model.dtype), conv_impl=config.model.conv_impl)


def learning_rate(config: Any) -> Callable[[Any], Any]:
  """The reference's decay: lr / (1 + lr_decay · i) at update i (0-based, as its loop index)."""
  o = config.optim
  return lambda count: o.lr / (1.0 + o.lr_decay * count)


def make_optimizer(config: Any) -> optax.GradientTransformation:
  o = config.optim
  return optax.adam(learning_rate(config), b1=o.b1, b2=o.b2, eps=o.eps)


def init_state(config: Any, rng: jax.Array) -> dict:
  """A fresh state on the host (every leaf replicated); the decoder has PyTorch's default init."""
  rng, init_rng = jax.random.split(rng)
  params = jax.jit(make_decoder(config).init)(init_rng, jnp.zeros((1, 2, 2, 512), jnp.float32))
  params = params['params']
  return {
    'step': jnp.zeros((), jnp.int32),
    'rng': rng,
    'params': {'decoder': params},
    'opt': {'decoder': make_optimizer(config).init(params)},
  }


def frozen_inputs(config: Any, image_hw: tuple[int, int] | None = None) -> dict:
  """`{'vgg', 'kernels_t'}`: the encoder (VGG19 to relu4_1 after the 1x1 conv that folds the
  weights' preprocessing) and its input-gradient kernels for images of `image_hw` (default the
  training crops)."""
  vgg_params, prep = load_vgg(config)
  upto = {n: vgg_params[n] for n in adain_model.encoder_shapes() if n != 'input_conv'}
  size = config.data.image_size
  kernels_t = frozen_kernels(upto, image_hw or (size, size), config.vgg.conv_impl)
  ic = adain_model.input_conv_params(prep.channel_order, prep.scale, prep.mean, prep.std)
  return {'vgg': {'input_conv': ic, **upto}, 'kernels_t': kernels_t}


def make_loss(config: Any) -> Callable[..., tuple[jax.Array, dict]]:
  """`loss(decoder_params, content, style, frozen) -> (total, {'loss_content', 'loss_style'}),
  outputs` on [0, 255] NHWC batches; outputs are the decoder's images in [0, 1] (unclipped)."""
  lc, decoder = config.loss, make_decoder(config)

  def encode(frozen, x, outputs=LAYERS):
    return adain_model.encode(
      frozen['vgg'], x, KIND, outputs, frozen['kernels_t'], pool=config.vgg.pool
    )

  def loss(params, content, style, frozen):
    f_c = encode(frozen, content / 255.0, (CONTENT_LAYER,))[CONTENT_LAYER]
    f_s = jax.lax.stop_gradient(encode(frozen, style / 255.0))
    t = jax.lax.stop_gradient(adain_model.adain(f_c, f_s[CONTENT_LAYER], lc.eps))
    g = decoder.apply({'params': params}, t)
    f_g = encode(frozen, g)
    loss_c = jnp.mean(jnp.square(f_g[CONTENT_LAYER] - t))
    loss_s = 0.0
    for name in LAYERS:
      (m_g, s_g), (m_s, s_s) = (adain_model.mean_std(f[name], lc.eps) for f in (f_g, f_s))
      loss_s = loss_s + jnp.mean(jnp.square(m_g - m_s)) + jnp.mean(jnp.square(s_g - s_s))
    total = lc.content_weight * loss_c + lc.style_weight * loss_s
    return total, ({'loss_content': loss_c, 'loss_style': loss_s}, g)

  return loss


#### The step


def make_train_step(config: Any) -> Callable:
  """`per_device_step(state, batch, frozen) -> (state, metrics)` for `parallel.compile_step`.

  Written as for pmap: `batch` is this device's slice ({'content', 'style'}); every device holds
  the same number of images, so the `pmean` of per-device means is the global batch's mean.
  """
  tx, loss_fn = make_optimizer(config), make_loss(config)

  def per_device_step(state, batch, frozen):
    params = state['params']['decoder']

    def objective(p):
      total, (aux, _) = loss_fn(p, batch['content'], batch['style'], frozen)
      return total, aux

    (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(params)
    grads = jax.lax.pmean(grads, DATA_AXIS)
    updates, opt = tx.update(grads, state['opt']['decoder'], params)
    new_state = {
      'step': state['step'] + 1,
      'rng': state['rng'],
      'params': {'decoder': optax.apply_updates(params, updates)},
      'opt': {'decoder': opt},
    }
    metrics = {'train/loss': loss, **{f'train/{k}': v for k, v in aux.items()}}
    metrics['train/lr'] = learning_rate(config)(state['step'])
    return new_state, jax.lax.pmean(metrics, DATA_AXIS)

  return per_device_step


def make_eval_fn(config: Any) -> Callable:
  """Jitted `(params, frozen, content, style) -> (outputs [0, 255], {'eval/loss', ...})`."""
  loss_fn = make_loss(config)

  @jax.jit
  def fn(params, frozen, content, style):
    total, (aux, g) = loss_fn(params, content, style, frozen)
    metrics = {'eval/loss': total, **{f'eval/{k}': v for k, v in aux.items()}}
    return jnp.clip(g * 255.0, 0.0, 255.0), metrics

  return fn
