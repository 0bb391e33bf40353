"""The large-kernel forward paths (fast_conv) and the reflect resize-conv (subpixel) equal XLA's.

The Johnson net's 9×9 3→32 stem runs space-to-depth, its 9×9 32→3 head as one GEMM plus shifted
sums, and its nearest-×2 + reflect-pad + 3×3 ups on the low-res input; values and gradients must
be XLA's own formulation up to float rounding, for odd sizes and explicit pads too.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxstyle.kernels import dispatch, fast_conv, subpixel

DN = ('NHWC', 'HWIO', 'NHWC')
RNG = np.random.RandomState(0)


def _arr(*shape, scale=1.0):
  return jnp.asarray(RNG.standard_normal(shape).astype(np.float32) * scale)


def _rel(a, b):
  return float(jnp.abs(a - b).max() / jnp.abs(b).max())


@pytest.mark.parametrize(
  'x_shape, w_shape, pads, path',
  [
    ((2, 21, 26, 3), (9, 9, 3, 8), ((0, 0), (0, 0)), '_is_thin_input'),
    ((1, 17, 14, 2), (9, 9, 2, 5), ((1, 2), (3, 0)), '_is_thin_input'),
    ((2, 20, 23, 16), (9, 9, 16, 3), ((0, 0), (0, 0)), '_is_narrow'),
    ((1, 18, 15, 8), (8, 8, 8, 2), ((2, 1), (0, 3)), '_is_narrow'),
  ],
)
def test_large_kernel_paths_equal_xla(x_shape, w_shape, pads, path):
  x, w = _arr(*x_shape), _arr(*w_shape, scale=0.1)
  assert getattr(fast_conv, path)(w, (1, 1))  # the case takes the path it is meant to test
  ref_fn = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=DN)
  ours_fn = lambda x, w: fast_conv.conv2d(x, w, (1, 1), pads)
  y, ref = jax.jit(ours_fn)(x, w), jax.jit(ref_fn)(x, w)
  # Error model: other summation orders; an output sums n ≤ 9·9·16 = 1296 products whose
  # magnitudes add up to ~8× the largest output: sqrt(n)·u·8 ≈ 1.7e-5 of it. The gradients sum
  # ≤ 2·20·23 pixels (≈ 1.2e-5), then pass sin's derivative: 1e-4 leaves room for both.
  assert y.shape == ref.shape and _rel(y, ref) < 5e-5
  loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
  grads = jax.jit(jax.grad(loss(ours_fn), argnums=(0, 1)))(x, w)
  ref_grads = jax.jit(jax.grad(loss(ref_fn), argnums=(0, 1)))(x, w)
  for g, r in zip(grads, ref_grads):
    assert _rel(g, r) < 1e-4


def test_small_kernels_keep_the_plain_path():
  assert not fast_conv._is_narrow(_arr(7, 7, 64, 3), (1, 1))  # CycleGAN ResNet head
  assert not fast_conv._is_thin_input(_arr(7, 7, 3, 64), (1, 1))  # CycleGAN ResNet stem
  assert not fast_conv._is_narrow(_arr(9, 9, 32, 3), (2, 2))


@pytest.mark.slow  # a literal upsample + reflect-pad form per size, gradients included
@pytest.mark.parametrize('hw', [(6, 9), (7, 5)])
def test_reflect_upsample_conv_equals_the_literal_form(hw):
  x, k = _arr(2, *hw, 6), _arr(3, 3, 6, 4, scale=0.2)

  def literal(x, k):
    up = jnp.pad(subpixel.upsample_nearest2x(x), ((0, 0), (1, 1), (1, 1), (0, 0)), mode='reflect')
    return lax.conv_general_dilated(up, k, (1, 1), 'VALID', dimension_numbers=DN)

  for impl in ('xla', 'subpixel', 'cpu_winograd'):
    ours = lambda x, k, impl=impl: dispatch.upsample_conv_reflect(x, k, impl)
    y, ref = jax.jit(ours)(x, k), jax.jit(literal)(x, k)
    assert y.shape == (2, 2 * hw[0], 2 * hw[1], 4) and _rel(y, ref) < 1e-5, impl
    loss = lambda f: lambda x, k: jnp.sum(jnp.cos(f(x, k)))
    for g, r in zip(
      jax.grad(loss(ours), argnums=(0, 1))(x, k), jax.grad(loss(literal), argnums=(0, 1))(x, k)
    ):
      assert _rel(g, r) < 1e-4, impl
