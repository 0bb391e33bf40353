"""Fast-style train state, the perceptual loss on a batch and the per-device train step.

State (a plain dict, like CycleGAN's): `{'step', 'rng', 'params': {'net'}, 'opt': {'net'}}`, all
replicated. The frozen side, `{'vgg': VGG19 params, 'kernels_t': their input-gradient kernels,
'grams': {layer: (n_styles, C, C)}}`, is a separate argument of the step (never closed over, so
80 MB of constants stay out of the HLO and out of the optimiser).

The loss is `nst.losses.make_terms`, the very function the pixel optimisation evaluates: each
output image's terms against its own content features (of the input, no gradient) and its own
style's Gram targets, averaged over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxstyle.fast_style import presets
from jaxstyle.models.johnson import JohnsonNet
from jaxstyle.models.vgg import LAYER_NAMES, VGG19, canonical_name, frozen_kernels
from jaxstyle.nst import weights
from jaxstyle.nst.losses import make_terms, style_target
from jaxstyle.parallel import DATA_AXIS


def make_net(config: Any) -> Any:
  """The Johnson transformation net `config.model` describes (conditional for several styles)."""
  m = config.model
  return JohnsonNet(
    upsample=m.upsample,
    output=m.output,
    n_styles=presets.n_styles(config),
    filters=m.filters,
    n_blocks=m.n_blocks,
    init_scheme=m.init_scheme,
    init_gain=m.init_gain,
    dtype=jnp.dtype(m.dtype),
    conv_impl=m.conv_impl,
  )


def style_input(config: Any, style_ids: jax.Array) -> jax.Array | None:
  """What the net takes as its style argument: the ids for a conditional net, else nothing."""
  return style_ids if presets.n_styles(config) > 1 else None


def make_optimizer(config: Any) -> optax.GradientTransformation:
  o = config.optim
  return optax.adam(o.lr, b1=o.b1, b2=o.b2, eps=o.eps)


def init_state(config: Any, rng: jax.Array) -> dict:
  """A fresh state on the host (every leaf replicated)."""
  net = make_net(config)
  rng, init_rng = jax.random.split(rng)
  x = jnp.zeros((1, 16, 16, 3), jnp.float32)
  style = style_input(config, jnp.zeros((1,), jnp.int32))
  params = jax.jit(net.init)(init_rng, x, style)['params']
  return {
    'step': jnp.zeros((), jnp.int32),
    'rng': rng,
    'params': {'net': params},
    'opt': {'net': make_optimizer(config).init(params)},
  }


#### VGG19 and the style targets


def load_vgg(config: Any) -> tuple[Any, Any]:
  """(VGG19 params, their preprocessing): the weight file, or seeded random weights."""
  try:
    return weights.get_vgg19(config.vgg.source, path=config.vgg.path or None, seed=config.seed)
  except weights.WeightDownloadError as e:  # name the trainer's settings, not stylize's flag
    raise weights.WeightDownloadError(
      str(e).replace('--vgg19 PATH', '--config.vgg.path=PATH')
      + ' For a smoke run without them: --config.vgg.source=random (random weights: the '
      'pictures mean nothing).'
    ) from e


def _vgg(config: Any, layers: Sequence[str]) -> Any:
  return VGG19(pool=config.vgg.pool, outputs=tuple(layers), dtype=jnp.dtype(config.vgg.dtype))


def frozen_inputs(
  config: Any,
  vgg_params: Any,
  prep: Any,
  styles: list[np.ndarray],
  image_hw: tuple[int, int] | None = None,
) -> dict:
  """`{'vgg', 'kernels_t', 'grams'}`: everything fixed during training, computed once.

  `kernels_t` (the frozen convs' input-gradient kernels; Winograd transforms on CPU) are made for
  images of `image_hw`, by default the training crops.
  """
  lc = config.loss
  style_layers = [canonical_name(n) for n in lc.style_layers]
  net = _vgg(config, style_layers)
  feature_fn = jax.jit(lambda p, x: net.apply({'params': p}, x))
  per_style = []
  for img in styles:
    feats = feature_fn(vgg_params, prep.preprocess(np.asarray(img, np.float32)[None]))
    per_style.append({n: style_target(feats[n], lc.normalisation)[0] for n in style_layers})
  grams = {n: jnp.stack([g[n] for g in per_style]) for n in style_layers}
  deepest = max(
    LAYER_NAMES.index(canonical_name(n)) for n in (*lc.content_layers, *lc.style_layers)
  )
  upto = {n: vgg_params[n] for n in LAYER_NAMES[: deepest + 1]}
  size = config.data.image_size
  kernels_t = frozen_kernels(upto, image_hw or (size, size), config.vgg.conv_impl)
  return {'vgg': upto, 'kernels_t': kernels_t, 'grams': grams}


def make_perceptual_loss(config: Any, prep: Any) -> Callable[..., tuple[jax.Array, dict]]:
  """`loss(y, x, style_ids, frozen) -> (batch mean, {'loss_content', 'loss_style', 'loss_tv'})`.

  y: the net's outputs, x: its inputs (content images), both RGB [0, 255] NHWC.
  """
  lc = config.loss
  terms = make_terms(
    lc.content_layers,
    lc.style_layers,
    layer_weights=tuple(lc.layer_weights) or None,
    content_weight=lc.content_weight,
    style_weight=lc.style_weight,
    tv_weight=lc.tv_weight,
    normalisation=lc.normalisation,
    tv_exponent=lc.tv_exponent,
  )
  layers = tuple(dict.fromkeys((*lc.content_layers, *lc.style_layers)))
  full, content_net = _vgg(config, layers), _vgg(config, tuple(lc.content_layers))

  def loss(y, x, style_ids, frozen):
    feats = full.apply({'params': frozen['vgg']}, prep.preprocess(y), frozen['kernels_t'])
    targets = content_net.apply({'params': frozen['vgg']}, prep.preprocess(x))
    targets = jax.lax.stop_gradient(targets)
    style_targets = {n: g[style_ids] for n, g in frozen['grams'].items()}
    total, aux = terms(feats, y, targets, style_targets)
    n = y.shape[0]
    return total / n, {k: v / n for k, v in aux.items()}

  return loss


#### The step


def make_train_step(config: Any, prep: Any) -> Callable:
  """`per_device_step(state, batch, frozen) -> (state, metrics)` for `parallel.compile_step`.

  Written as for pmap: `batch` is this device's slice ({'content', 'style'}); gradients and
  metrics are `pmean`-ed over `data`. No host syncs.
  """
  net, tx = make_net(config), make_optimizer(config)
  loss_fn = make_perceptual_loss(config, prep)

  def per_device_step(state, batch, frozen):
    x, ids = batch['content'], batch['style']

    def objective(params):
      y = net.apply({'params': params}, x, style_input(config, ids))
      return loss_fn(y, x, ids, frozen)

    (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(state['params']['net'])
    grads = jax.lax.pmean(grads, DATA_AXIS)
    updates, opt = tx.update(grads, state['opt']['net'], state['params']['net'])
    params = optax.apply_updates(state['params']['net'], updates)
    new_state = {
      'step': state['step'] + 1,
      'rng': state['rng'],
      'params': {'net': params},
      'opt': {'net': opt},
    }
    metrics = {'train/loss': loss, **{f'train/{k}': v for k, v in aux.items()}}
    return new_state, jax.lax.pmean(metrics, DATA_AXIS)

  return per_device_step


def make_eval_fn(config: Any, prep: Any) -> Callable:
  """Jitted `(params, frozen, content, style_ids) -> (outputs, {'eval/loss', ...})` (one device)."""
  net, loss_fn = make_net(config), make_perceptual_loss(config, prep)

  @jax.jit
  def fn(params, frozen, x, ids):
    y = net.apply({'params': params}, x, style_input(config, ids))
    loss, aux = loss_fn(y, x, ids, frozen)
    return y, {'eval/loss': loss, **{f'eval/{k}': v for k, v in aux.items()}}

  return fn
