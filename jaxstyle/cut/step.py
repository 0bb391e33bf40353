"""CUT / FastCUT train state and the per-device train step (docs/cut.md, "Training").

The state is a plain dict: `{'step', 'rng', 'params': {G, D, F}, 'opt': {G, D, F}}`, all
replicated (no image pool). G maps A->B, D judges domain B, F is `PatchSampleF` (the reference's
netG / netD / netF). The LR schedule, Adam and the LSGAN loss are CycleGAN's (`cyclegan.step`,
`cyclegan.losses`); F has its own Adam with the same LR and betas, as the reference's optimizer_F.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle import models
from jaxstyle.cyclegan import losses
from jaxstyle.cyclegan.step import apply_adam, lr_at, make_adam
from jaxstyle.models import cut
from jaxstyle.parallel import DATA_AXIS


def make_nets(config: Any) -> tuple[nn.Module, nn.Module, nn.Module]:
  """(generator, discriminator, PatchSampleF) from `config.model`: the anti-aliased PatchGAN (the
  reference default) or a registered one ('patchgan': the reference's `--no_antialias`)."""
  m = config.model
  plain = m.discriminator in models.DISCRIMINATORS
  D = models.make_discriminator(m) if plain else cut.make_discriminator(m)
  return models.make_generator(m), D, cut.make_patch_sampler(m)


def init_state(config: Any, rng: jax.Array, image_size: int, n_devices: int) -> dict:
  """A fresh state on the host. F's MLPs take their input widths from the generator's taps, which
  the reference learns from the first batch; here from a zero batch of the same shape."""
  del n_devices  # every leaf is replicated
  G, D, F = make_nets(config)
  layers = tuple(config.nce.layers)
  x = jnp.zeros((1, image_size, image_size, config.model.in_channels), jnp.float32)
  rng, r_g, r_d, r_f, r_ids = jax.random.split(rng, 5)
  g = jax.jit(G.init)(r_g, x)['params']
  feats = jax.eval_shape(lambda p: G.apply({'params': p}, x, layers), g)
  feats = [jnp.zeros(f.shape, f.dtype) for f in feats]
  f = jax.jit(lambda r, fs: F.init(r, fs, config.nce.num_patches, rng=r_ids))(r_f, feats)
  params = {'G': g, 'D': jax.jit(D.init)(r_d, x)['params'], 'F': f['params']}
  tx = make_adam(config.optim)
  opt = {k: tx.init(v) for k, v in params.items()}
  return {'step': jnp.zeros((), jnp.int32), 'rng': rng, 'params': params, 'opt': opt}


def _flip(x: jax.Array) -> jax.Array:
  return x[:, :, ::-1]  # NHWC: the reference's torch.flip(x, [3]) on NCHW


def step_draws(rng: jax.Array, step: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(flip coin, patch-id key for NCE(G(X), X), key for NCE(G(Y), Y)) of train step `step`."""
  rng_flip, rng_x, rng_y = jax.random.split(jax.random.fold_in(rng, step), 3)
  return jax.random.bernoulli(rng_flip), rng_x, rng_y


def make_train_step(config: Any, steps_per_epoch: int) -> Callable:
  """`per_device_step(state, batch) -> (state, metrics)` for `parallel.compile_step`.

  The reference's `optimize_parameters` order: one generator pass on real A (and real B with the
  identity NCE) with the current G; D steps on that fake (detached) against real B; then G and F
  step together on GAN(D_new(G(A))) + λ_NCE·PatchNCE. The generator pass is not repeated for the
  G step: its VJP is kept and the G/F loss is differentiated with respect to its output. The
  NCE keys (the input's taps) come from the same pass; with flip equivariance and a flipped
  input, from a separate encoder pass on the unflipped input (as the reference). Gradients and
  metrics are `pmean`-ed over `data`; no host syncs.

  The random draws (the flip coin, the patch ids) are one per step, shared by every device, as
  the reference draws one coin and one id set per batch: a step on k devices is the step on the
  global batch on one device (tests/cut/test_step.py), whatever k.
  """
  G, D, F = make_nets(config)
  lam, nce = config.loss, config.nce
  layers = tuple(int(i) for i in nce.layers)
  tx = make_adam(config.optim)
  use_idt = bool(lam.nce_idt) and lam.lambda_nce > 0
  use_nce = lam.lambda_nce > 0
  flip_eq = bool(nce.flip_equivariance)

  def encode(g, x):
    return G.apply({'params': g}, x, layers)

  def nce_loss(f, feats_q, feats_k, rng, batch):
    """λ_NCE · the reference `calculate_NCE_loss`: F on the keys draws the patch ids, F on the
    queries reuses them; keys carry no gradient (`patch_nce_loss` stops it)."""
    k_pool, ids = F.apply({'params': f}, feats_k, nce.num_patches, rng=rng)
    q_pool, _ = F.apply({'params': f}, feats_q, nce.num_patches, patch_ids=ids)
    loss = cut.patch_nce(
      q_pool, k_pool, batch, nce.temperature, bool(nce.all_negatives_from_minibatch)
    )
    return lam.lambda_nce * loss

  def per_device_step(state, data):
    step = state['step']
    coin, rng_x, rng_y = step_draws(state['rng'], step)
    real_a, real_b = data['A'], data['B']
    lr = lr_at(step, config.optim, steps_per_epoch)
    params = state['params']
    n_a = real_a.shape[0]

    #### One generator pass (current G) on A, and B for the identity NCE; taps are the NCE keys.
    real = jnp.concatenate([real_a, real_b]) if use_idt else real_a
    flipped = coin if flip_eq else jnp.zeros((), bool)
    if flip_eq:
      real = jnp.where(flipped, _flip(real), real)

    def forward(g):
      fake, taps = G.apply({'params': g}, real, layers, with_output=True)
      return fake, taps

    (fake, taps), g_vjp = jax.vjp(forward, params['G'])
    taps = jax.lax.stop_gradient(taps)
    if flip_eq:  # keys on the unflipped input: a second encoder pass only when flipped
      taps = jax.lax.cond(flipped, lambda: encode(params['G'], _flip(real)), lambda: taps)

    #### D (the reference steps it first, on the detached fake of this pass).
    fake_b = jax.lax.stop_gradient(fake[:n_a])

    def d_loss_fn(d):
      loss_fake = losses.mse(D.apply({'params': d}, fake_b), 0.0)
      loss_real = losses.mse(D.apply({'params': d}, real_b), 1.0)
      return 0.5 * (loss_fake + loss_real), (loss_real, loss_fake)

    (loss_d, (loss_d_real, loss_d_fake)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
      params['D']
    )
    d_params, opt_d = apply_adam(
      tx, jax.lax.pmean(d_grads, DATA_AXIS), state['opt']['D'], params['D'], lr
    )

    #### G and F together, against the updated D.
    def gf_loss_fn(g, f, fake):
      terms = {'G_GAN': lam.lambda_gan * losses.mse(D.apply({'params': d_params}, fake[:n_a]), 1.0)}
      zero = jnp.zeros((), jnp.float32)
      if use_nce:
        feats_q = encode(g, fake)
        if flip_eq:
          feats_q = [jnp.where(flipped, _flip(q), q) for q in feats_q]
        first = lambda fs: [x[:n_a] for x in fs]
        rest = lambda fs: [x[n_a:] for x in fs]
        terms['NCE'] = nce_loss(f, first(feats_q), first(taps), rng_x, n_a)
        if use_idt:
          terms['NCE_Y'] = nce_loss(f, rest(feats_q), rest(taps), rng_y, n_a)
          nce_both = 0.5 * (terms['NCE'] + terms['NCE_Y'])
        else:
          terms['NCE_Y'], nce_both = zero, terms['NCE']
      else:
        terms['NCE'] = terms['NCE_Y'] = nce_both = zero
      return terms['G_GAN'] + nce_both, terms

    grad_fn = jax.value_and_grad(gf_loss_fn, argnums=(0, 1, 2), has_aux=True)
    (loss_g, terms), (g_direct, f_grads, fake_grad) = grad_fn(params['G'], params['F'], fake)
    (g_through_fake,) = g_vjp((fake_grad, jax.tree.map(jnp.zeros_like, taps)))
    g_grads = jax.tree.map(jnp.add, g_direct, g_through_fake)
    gf = jax.lax.pmean({'G': g_grads, 'F': f_grads}, DATA_AXIS)
    g_params, opt_g = apply_adam(tx, gf['G'], state['opt']['G'], params['G'], lr)
    f_params, opt_f = apply_adam(tx, gf['F'], state['opt']['F'], params['F'], lr)

    new_state = {
      'step': step + 1,
      'rng': state['rng'],
      'params': {'G': g_params, 'D': d_params, 'F': f_params},
      'opt': {'G': opt_g, 'D': opt_d, 'F': opt_f},
    }
    metrics = {
      'train/loss_G': loss_g,
      'train/loss_D': loss_d,
      'train/loss_D_real': loss_d_real,
      'train/loss_D_fake': loss_d_fake,
      'train/lr': lr,
    }
    metrics.update({f'train/loss_{k}': v for k, v in terms.items()})
    return new_state, jax.lax.pmean(metrics, DATA_AXIS)

  return per_device_step
