"""GAN losses shared by the translation tasks (CycleGAN, pix2pix, CUT): junyanz's `--gan_mode`.

`gan_loss(pred, target_is_real, mode)` is the reference's `GANLoss(mode)(pred, target_is_real)`:
  lsgan    mean((pred - t)²), t = 1 (real) or 0 (fake)                    (`nn.MSELoss`)
  vanilla  mean(BCE-with-logits(pred, t)), computed stably                 (`nn.BCEWithLogitsLoss`)
  wgangp   -mean(pred) for real, mean(pred) for fake                       (the critic's score)
The discriminator's objective is `discriminator_loss` = 0.5 · (real term + fake term), as every
reference task computes it; a WGAN-GP critic adds `gradient_penalty` (the reference's
`cal_gradient_penalty`; pix2pix and CycleGAN do not call it, the caller decides).
All reductions run in float32, so bfloat16 logits do not lose precision in the mean.
Pure functions of arrays; no jax config, no models: it sits below every task.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

GAN_MODES = ('lsgan', 'vanilla', 'wgangp')
GP_KINDS = ('real', 'fake', 'mixed')


def lsgan(pred: jax.Array, target: float | jax.Array) -> jax.Array:
  """Mean squared error against a constant or an array target (`nn.MSELoss`)."""
  pred = pred.astype(jnp.float32)
  return jnp.mean(jnp.square(pred - jnp.asarray(target, jnp.float32)))


def vanilla(logits: jax.Array, target: float | jax.Array) -> jax.Array:
  """`nn.BCEWithLogitsLoss`: mean of max(x, 0) - x·t + log(1 + exp(-|x|)), no overflow for any x."""
  x = logits.astype(jnp.float32)
  t = jnp.asarray(target, jnp.float32)
  return jnp.mean(jnp.maximum(x, 0.0) - x * t + jnp.log1p(jnp.exp(-jnp.abs(x))))


def wgan(pred: jax.Array, target_is_real: bool) -> jax.Array:
  """The Wasserstein critic's term: -mean for real, +mean for fake (lower is better for both)."""
  m = jnp.mean(pred.astype(jnp.float32))
  return -m if target_is_real else m


def gan_loss(pred: jax.Array, target_is_real: bool, mode: str) -> jax.Array:
  """The reference's `GANLoss(mode)(pred, target_is_real)`; labels 1.0 real, 0.0 fake."""
  if mode == 'lsgan':
    return lsgan(pred, 1.0 if target_is_real else 0.0)
  if mode == 'vanilla':
    return vanilla(pred, 1.0 if target_is_real else 0.0)
  if mode == 'wgangp':
    return wgan(pred, target_is_real)
  raise ValueError(f'unknown gan mode {mode!r}; choose from {GAN_MODES}')


def discriminator_loss(pred_real: jax.Array, pred_fake: jax.Array, mode: str) -> jax.Array:
  """0.5 · (loss(real, True) + loss(fake, False)): every reference task's `backward_D`."""
  return 0.5 * (gan_loss(pred_real, True, mode) + gan_loss(pred_fake, False, mode))


def gradient_penalty(
  critic: Callable[[jax.Array], jax.Array],
  real: jax.Array,
  fake: jax.Array,
  key: jax.Array | None = None,
  *,
  kind: str = 'mixed',
  constant: float = 1.0,
  weight: float = 10.0,
) -> jax.Array:
  """WGAN-GP (Gulrajani et al. 2017), as the reference's `cal_gradient_penalty`.

  `weight · mean_i((‖∇ₓ Σ critic(x)ᵢ‖₂ - constant)²)` per sample i, at x = real, fake, or (`mixed`)
  α·real + (1-α)·fake with one α ~ U[0, 1) per sample drawn from `key`. As the reference, 1e-16
  is added to each gradient entry before the norm (so a zero gradient has a finite derivative).
  Differentiable with respect to the critic's parameters (double backprop through `critic`).
  """
  if kind == 'real':
    x = real
  elif kind == 'fake':
    x = fake
  elif kind == 'mixed':
    if key is None:
      raise ValueError("kind='mixed' needs a key for the interpolation weights")
    alpha = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), jnp.float32)
    x = alpha * real.astype(jnp.float32) + (1.0 - alpha) * fake.astype(jnp.float32)
  else:
    raise ValueError(f'unknown gradient-penalty kind {kind!r}; choose from {GP_KINDS}')
  grads = jax.grad(lambda y: jnp.sum(critic(y).astype(jnp.float32)))(x)
  flat = grads.reshape(grads.shape[0], -1).astype(jnp.float32) + 1e-16
  norms = jnp.sqrt(jnp.sum(jnp.square(flat), axis=1))
  return weight * jnp.mean(jnp.square(norms - constant))
