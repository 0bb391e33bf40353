"""CycleGAN losses against hand-computed values."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.cyclegan import losses


def test_mse_constant_target():
  pred = jnp.array([[0.0, 1.0], [2.0, -1.0]])
  # ((0-1)^2 + 0 + 1 + 4) / 4
  assert float(losses.mse(pred, 1.0)) == pytest.approx(6.0 / 4)
  assert float(losses.mse(pred, 0.0)) == pytest.approx((0 + 1 + 4 + 1) / 4)


def test_mse_array_target_and_bf16_input():
  pred = jnp.array([1.5, -0.5, 0.25], jnp.bfloat16)
  target = jnp.array([1.0, 0.5, 0.25])
  out = losses.mse(pred, target)
  assert out.dtype == jnp.float32
  assert float(out) == pytest.approx((0.25 + 1.0 + 0.0) / 3)


def test_l1_is_a_mean():
  a = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)
  b = a[::-1] * 0 + 2.0
  assert float(losses.l1(jnp.asarray(a), jnp.asarray(b))) == pytest.approx(
    np.abs(a - 2.0).sum() / 12
  )
  assert float(losses.l1(jnp.ones((3, 4)), -jnp.ones((3, 4)))) == pytest.approx(2.0)
