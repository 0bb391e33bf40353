"""The shared GAN losses against independent NumPy formulas; WGAN-GP against analytic gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import gan_losses
from jaxstyle.cyclegan import losses as cyclegan_losses

# float32 means of O(1) terms over <= 60 values: relative error ~1e-6; rtol 1e-5 leaves room for
# any summation order (AVX2 / AVX-512).
RTOL = 1e-5
PRED = np.random.default_rng(0).normal(0.0, 2.0, (2, 5, 6, 1)).astype(np.float32)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize('real', [True, False])
def test_modes_match_numpy(real):
  x, t = PRED.astype(np.float64), 1.0 if real else 0.0
  want = {
    'lsgan': np.mean((x - t) ** 2),
    'vanilla': np.mean(-(t * np.log(_sigmoid(x)) + (1 - t) * np.log(1 - _sigmoid(x)))),
    'wgangp': -np.mean(x) if real else np.mean(x),
  }
  for mode, value in want.items():
    got = gan_losses.gan_loss(jnp.asarray(PRED), real, mode)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(float(got), value, rtol=RTOL, err_msg=mode)


def test_discriminator_loss_is_half_the_sum():
  r, f = jnp.asarray(PRED), jnp.asarray(-PRED[::-1])
  for mode in gan_losses.GAN_MODES:
    want = 0.5 * (
      float(gan_losses.gan_loss(r, True, mode)) + float(gan_losses.gan_loss(f, False, mode))
    )
    np.testing.assert_allclose(float(gan_losses.discriminator_loss(r, f, mode)), want, rtol=RTOL)


def test_vanilla_is_stable_for_large_logits():
  big = jnp.array([100.0, -100.0], jnp.float32)
  # BCE(100, 1) = log(1 + e^-100) ~ 0; BCE(-100, 1) = 100 + log(1 + e^-100) ~ 100 (no inf).
  np.testing.assert_allclose(float(gan_losses.vanilla(big, 1.0)), 50.0, rtol=RTOL)
  np.testing.assert_allclose(float(gan_losses.vanilla(big, 0.0)), 50.0, rtol=RTOL)


def test_cyclegan_lsgan_is_the_shared_one():
  # CycleGAN's (and CUT's) `losses.mse` is this module's LSGAN: the same numbers, bit for bit.
  assert cyclegan_losses.mse is gan_losses.lsgan


def test_unknown_mode_is_refused():
  with pytest.raises(ValueError, match='hinge'):
    gan_losses.gan_loss(jnp.zeros(3), True, 'hinge')


X = np.random.default_rng(1).normal(size=(3, 4, 4, 2)).astype(np.float32)


def _quadratic(s):
  # critic(x)_i = s/2 · Σ x_i²: ∇ = s·x_i, so the penalty is w · mean_i((|s|·‖x_i‖ - 1)²).
  return lambda x: 0.5 * s * jnp.sum(jnp.square(x), axis=(1, 2, 3))


def test_gradient_penalty_analytic():
  s, w = 0.3, 10.0
  norms = np.linalg.norm(X.reshape(3, -1).astype(np.float64), axis=1)
  want = w * np.mean((s * norms - 1.0) ** 2)
  got = gan_losses.gradient_penalty(_quadratic(s), jnp.asarray(X), None, kind='real', weight=w)
  np.testing.assert_allclose(float(got), want, rtol=RTOL)
  # Its derivative with respect to the critic's parameter (double backprop), analytically:
  # d/ds w·mean((s‖x‖-1)²) = w·mean(2(s‖x‖-1)‖x‖).
  d = jax.grad(
    lambda s_: gan_losses.gradient_penalty(_quadratic(s_), jnp.asarray(X), None, kind='real')
  )(s)
  np.testing.assert_allclose(float(d), w * np.mean(2 * (s * norms - 1.0) * norms), rtol=1e-4)


def test_gradient_penalty_mixed_interpolates_per_sample():
  real, fake = jnp.asarray(X), jnp.asarray(2.0 * X)
  gp = lambda key: gan_losses.gradient_penalty(_quadratic(1.0), real, fake, key)
  # x = α·X + (1-α)·2X = (2-α)·X with α in [0, 1): each norm lies in (‖X_i‖, 2‖X_i‖].
  norms = np.linalg.norm(X.reshape(3, -1), axis=1)
  lo, hi = 10 * np.mean((norms - 1) ** 2), 10 * np.mean((2 * norms - 1) ** 2)
  values = [float(gp(jax.random.key(k))) for k in range(3)]
  assert all(lo <= v <= hi for v in values) and len(set(values)) == 3
  same = gan_losses.gradient_penalty(_quadratic(1.0), real, real, jax.random.key(0))
  np.testing.assert_allclose(
    float(same),
    float(gan_losses.gradient_penalty(_quadratic(1.0), real, None, kind='real')),
    rtol=RTOL,
  )
  with pytest.raises(ValueError, match='key'):
    gan_losses.gradient_penalty(_quadratic(1.0), real, fake)
