"""pix2pix train state and the per-device train step (the reference's `Pix2PixModel`).

State (a plain dict, all replicated): `{'step', 'rng', 'params': {G, D}, 'batch_stats': {G, D},
'opt': {G, D}}`. `batch_stats` holds the batch norms' running statistics: passed into the step,
returned by it and checkpointed with the rest, so a resume continues them exactly.

One step is the reference's `optimize_parameters`, in its order:
  1. fake = G(input) once, with dropout on and batch statistics (G's running stats update);
  2. D step on D(input, fake) (fake detached) and D(input, target): 0.5 · (fake + real) loss;
  3. G step with the *updated* D: GAN(D(input, fake), real) + λ_L1 · |fake - target|;
each D forward updates D's running statistics, as torch's three `netD` calls do. G's forward is
not repeated for step 3: its VJP from step 1 carries the gradient back (same values, one pass).
With `loss.gan_mode='wgangp'` the critic also gets the WGAN-GP penalty (weight `loss.lambda_gp`,
interpolates of the two pairs); the reference's pix2pix names that mode but never calls its
penalty. Gradients, metrics and the new running statistics are `pmean`-ed over `data`.

Batch norm across devices (`model.batch_stats`): 'per_device' normalises each device's own batch,
as torch DDP does; with the reference's batch 1 per device every image is normalised by itself,
exactly as in the single-GPU reference at any device count, which is why it is the default.
'synced' uses the moments of the global batch (torch SyncBatchNorm): the same numbers as one
device holding the whole batch, but a different model from the reference's batch 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxstyle import gan_losses
from jaxstyle.cyclegan.step import lr_at, make_adam
from jaxstyle.models.patchgan_bn import PatchDiscriminatorBN
from jaxstyle.models.unet256 import UnetGenerator
from jaxstyle.parallel import DATA_AXIS


def make_nets(
  model_cfg: Any, synced: bool | None = None
) -> tuple[UnetGenerator, PatchDiscriminatorBN]:
  """(G, D) from the `model` section; `synced` (default: the config's) syncs batch norm over data."""
  if synced is None:
    synced = model_cfg.get('batch_stats', 'per_device') == 'synced'
  axis = DATA_AXIS if synced else None
  common = dict(
    init_scheme=model_cfg.init,
    init_gain=model_cfg.init_gain,
    dtype=jnp.dtype(model_cfg.dtype),
    conv_impl=str(model_cfg.get('conv_impl', 'auto')),
    bn_axis_name=axis,
  )
  G = UnetGenerator(
    num_downs=model_cfg.num_downs,
    filters=model_cfg.gen_filters,
    out_channels=model_cfg.out_channels,
    use_dropout=model_cfg.use_dropout,
    **common,
  )
  D = PatchDiscriminatorBN(filters=model_cfg.disc_filters, n_layers=model_cfg.n_layers, **common)
  return G, D


def init_state(config: Any, rng: jax.Array, image_size: int) -> dict:
  """A fresh state on the host: N(0, 0.02) convs, N(1, 0.02) batch-norm scales (junyanz)."""
  G, D = make_nets(config.model, synced=False)  # init runs outside the mesh: no axis to sync
  m = config.model
  x = jnp.zeros((1, image_size, image_size, m.in_channels), jnp.float32)
  xy = jnp.zeros((1, image_size, image_size, m.in_channels + m.out_channels), jnp.float32)
  rng, r_g, r_d, r_drop = jax.random.split(rng, 4)
  g_vars = jax.jit(
    lambda: G.init({'params': r_g, 'dropout': r_drop}, x, train=True, dropout=True)
  )()
  d_vars = jax.jit(lambda: D.init(r_d, xy, train=True))()
  params = {'G': g_vars['params'], 'D': d_vars['params']}
  tx = make_adam(config.optim)
  return {
    'step': jnp.zeros((), jnp.int32),
    'rng': rng,
    'params': params,
    'batch_stats': {'G': g_vars['batch_stats'], 'D': d_vars['batch_stats']},
    'opt': {'G': tx.init(params['G']), 'D': tx.init(params['D'])},
  }


def _apply(tx: optax.GradientTransformation, grads, opt_state, params, lr):
  updates, opt_state = tx.update(grads, opt_state, params)
  return jax.tree.map(lambda p, u: p - lr * u.astype(p.dtype), params, updates), opt_state


def make_train_step(config: Any, steps_per_epoch: int) -> Callable:
  """`per_device_step(state, batch) -> (state, metrics)` for `parallel.compile_step`; the batch
  is this device's {'input', 'target'} slice."""
  G, D = make_nets(config.model)
  mode, lam = config.loss.gan_mode, config.loss
  use_gp = mode == 'wgangp' and lam.lambda_gp > 0
  tx = make_adam(config.optim)

  def d_apply(p, stats, xy):
    out, upd = D.apply({'params': p, 'batch_stats': stats}, xy, train=True, mutable=['batch_stats'])
    return out, upd['batch_stats']

  def per_device_step(state, batch):
    step = state['step']
    rng = jax.random.fold_in(jax.random.fold_in(state['rng'], step), jax.lax.axis_index(DATA_AXIS))
    rng_drop, rng_gp = jax.random.split(rng)
    x, y = batch['input'], batch['target']
    params, stats = state['params'], state['batch_stats']
    lr = lr_at(step, config.optim, steps_per_epoch)

    #### 1. G forward (kept as a VJP for step 3).
    def g_fwd(p):
      out, upd = G.apply(
        {'params': p, 'batch_stats': stats['G']},
        x,
        train=True,
        dropout=True,
        rngs={'dropout': rng_drop},
        mutable=['batch_stats'],
      )
      return out, upd['batch_stats']

    fake, g_vjp, g_stats = jax.vjp(g_fwd, params['G'], has_aux=True)
    real_xy = jnp.concatenate([x, y], axis=-1)

    #### 2. D step on the detached fake, then the real pair.
    def d_loss_fn(p):
      fake_xy = jnp.concatenate([x, jax.lax.stop_gradient(fake)], axis=-1)
      pred_fake, s1 = d_apply(p, stats['D'], fake_xy)
      pred_real, s2 = d_apply(p, s1, real_xy)
      loss_fake = gan_losses.gan_loss(pred_fake, False, mode)
      loss_real = gan_losses.gan_loss(pred_real, True, mode)
      loss = 0.5 * (loss_fake + loss_real)
      gp = jnp.zeros((), jnp.float32)
      if use_gp:  # the critic's statistics from this extra pass are not kept
        critic = lambda z: d_apply(p, s2, z)[0]
        gp = gan_losses.gradient_penalty(critic, real_xy, fake_xy, rng_gp, weight=lam.lambda_gp)
      return loss + gp, (s2, loss_fake, loss_real, gp)

    (loss_d, (d_stats, loss_fake, loss_real, gp)), d_grads = jax.value_and_grad(
      d_loss_fn, has_aux=True
    )(params['D'])
    d_params, opt_d = _apply(
      tx, jax.lax.pmean(d_grads, DATA_AXIS), state['opt']['D'], params['D'], lr
    )

    #### 3. G step through the updated D.
    def g_loss_fn(fk):
      pred, s3 = d_apply(d_params, d_stats, jnp.concatenate([x, fk], axis=-1))
      gan = gan_losses.gan_loss(pred, True, mode)
      l1 = lam.lambda_l1 * jnp.mean(jnp.abs(fk.astype(jnp.float32) - y.astype(jnp.float32)))
      return gan + l1, (s3, gan, l1)

    (loss_g, (d_stats, gan, l1)), d_fake = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(d_fake)
    g_params, opt_g = _apply(
      tx, jax.lax.pmean(g_grads, DATA_AXIS), state['opt']['G'], params['G'], lr
    )

    new_state = {
      'step': step + 1,
      'rng': state['rng'],
      'params': {'G': g_params, 'D': d_params},
      # Replicated state: the devices' updated running statistics, averaged.
      'batch_stats': jax.lax.pmean({'G': g_stats, 'D': d_stats}, DATA_AXIS),
      'opt': {'G': opt_g, 'D': opt_d},
    }
    metrics = {
      'train/loss_G': loss_g,
      'train/loss_G_GAN': gan,
      'train/loss_G_L1': l1,
      'train/loss_D': loss_d,
      'train/loss_D_fake': loss_fake,
      'train/loss_D_real': loss_real,
      'train/lr': lr,
    }
    if use_gp:
      metrics['train/loss_D_gp'] = gp
    return new_state, jax.lax.pmean(metrics, DATA_AXIS)

  return per_device_step


def make_generator_fn(model_cfg: Any, eval_mode: bool) -> Callable:
  """`fn(params, batch_stats, x, key) -> G(x)` jitted, in one of the reference's two test modes.

  `eval_mode=False` is the reference's default `test.py` (no `model.eval()`): dropout on (from
  `key`) and each call's batch statistics, so an image's output depends on what shares its
  batch: call it with one image per batch, as the reference's batch 1. `eval_mode=True` is
  `--eval`: running statistics and no dropout, deterministic and batch-independent.
  """
  G, _ = make_nets(model_cfg, synced=False)

  @jax.jit
  def fn(params, batch_stats, x, key):
    variables = {'params': params, 'batch_stats': batch_stats}
    if eval_mode:
      return G.apply(variables, x, train=False, dropout=False)
    out, _ = G.apply(
      variables, x, train=True, dropout=True, rngs={'dropout': key}, mutable=['batch_stats']
    )
    return out

  return fn
