"""fast_conv: the shifted-GEMM kernel gradient equals XLA's, and layers.Conv on it equals nn.Conv."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxstyle.kernels import fast_conv
from jaxstyle.models import layers

pytestmark = (
  pytest.mark.slow
)  # many conv-gradient compiles (~35 s); test_dispatch covers the same paths

CASES = [  # (kernel, stride, padding, H, Cin, Cout)
  (3, 1, 'VALID', 9, 3, 5),  # ResNet block conv on a reflect-padded input
  (4, 2, 'SAME', 8, 4, 6),  # book U-Net / PatchGAN down conv
  (4, 1, 'SAME', 8, 3, 2),  # book U-Net up conv (pads 1 before, 2 after)
  (3, 2, ((1, 1), (1, 1)), 9, 2, 3),  # reference down conv, odd side
  (7, 1, 'VALID', 12, 3, 4),  # stem / head
  (4, 1, ((1, 1), (1, 1)), 7, 3, 1),  # reference PatchGAN head
  (3, 1, 'VALID', 6, 4, 16),  # Cout >= MIN_GEMM_COUT: the shifted-GEMM path
  (4, 2, ((1, 1), (1, 1)), 10, 3, 16),  # the same, strided, reference padding
  (3, 1, ((2, 0), (0, 2)), 8, 6, 3),  # stride 1, Cout < Cin: shifted copies of dy, uneven pads
  (4, 1, 'SAME', 6, 16, 12),  # book U-Net head as a sub-pixel conv (64 -> 4*3)
]


def _reference(x, w, stride, padding):
  return lax.conv_general_dilated(
    x, w, (stride, stride), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


def _numpy_kernel_grad(x, dy, k, stride, pads):
  """Direct loop definition of dL/dW, independent of both XLA formulations."""
  xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  n, ho, wo, cout = dy.shape
  dw = np.zeros((k, k, x.shape[-1], cout))
  for i in range(k):
    for j in range(k):
      xs = xp[:, i : i + stride * ho : stride, j : j + stride * wo : stride, :][:, :ho, :wo]
      dw[i, j] = np.einsum('nhwc,nhwd->cd', xs.astype(np.float64), dy.astype(np.float64))
  return dw


@pytest.mark.parametrize('k, stride, padding, h, cin, cout', CASES)
def test_grads_match_xla(k, stride, padding, h, cin, cout):
  rng = np.random.default_rng(k * 10 + stride)
  x = jnp.asarray(rng.normal(size=(2, h, h + 1, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32)
  y_ref, vjp_ref = jax.vjp(lambda x_, w_: _reference(x_, w_, stride, padding), x, w)
  y, vjp = jax.vjp(lambda x_, w_: fast_conv.conv2d(x_, w_, (stride, stride), padding), x, w)
  # Error model: x, w, dy ~ N(0, 1), so every element of y, dx, dw is a sum of n ≤ 196 products
  # (Σ|terms| ≈ 0.64·n ≈ 125), off by ≤ sqrt(n)·u·125 ≈ 1e-4 in each float32 result; two of them:
  # atol 2e-4 (elements near 0 carry the whole error). A wrong tap or pad is off by O(1).
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=2e-4)
  dy = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
  dx_ref, dw_ref = vjp_ref(dy)
  dx, dw = vjp(dy)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=2e-4)
  np.testing.assert_allclose(dw, dw_ref, rtol=1e-5, atol=2e-4)
  pads = fast_conv.explicit_pads(x.shape, w.shape, (stride, stride), padding)
  dw_np = _numpy_kernel_grad(np.asarray(x), np.asarray(dy), k, stride, pads)
  np.testing.assert_allclose(dw, dw_np, rtol=1e-5, atol=2e-4)
  # The GEMM formulation itself, whichever path the Cout threshold picked above.
  dw_gemm = fast_conv.kernel_grad(x, dy, (k, k), (stride, stride), pads)
  np.testing.assert_allclose(dw_gemm, dw_np, rtol=1e-5, atol=2e-4)


def test_bfloat16_grad_dtype():
  x = jnp.ones((1, 6, 6, 2), jnp.bfloat16)
  w = jnp.ones((3, 3, 2, 3), jnp.bfloat16)
  dw = jax.grad(lambda w_: fast_conv.conv2d(x, w_, (1, 1), 'SAME').astype(jnp.float32).sum())(w)
  assert dw.dtype == jnp.bfloat16
  # Interior taps see 4x4 of the 6x6 ones input per position pair: corner tap counts 25 pixels.
  assert float(dw[0, 0, 0, 0]) == 25.0 and float(dw[1, 1, 0, 0]) == 36.0


@pytest.fixture(scope='module')
def both_convs():
  kw = dict(
    strides=(2, 2),
    padding='SAME',
    kernel_init=layers.kernel_init('keras'),
    bias_init=nn.initializers.normal(1.0),
  )
  return layers.Conv(6, (4, 4), impl='cpu_fast', **kw), nn.Conv(6, (4, 4), **kw)


def test_module_matches_nn_conv(both_convs):
  fast, ref = both_convs
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 3)), jnp.float32)
  p_fast = fast.init(jax.random.key(1), x)['params']
  p_ref = ref.init(jax.random.key(1), x)['params']
  assert jax.tree.map(jnp.shape, p_fast) == jax.tree.map(jnp.shape, p_ref)
  for name in ('kernel', 'bias'):  # same names, same init order -> identical initial values
    np.testing.assert_array_equal(p_fast[name], p_ref[name])
  np.testing.assert_allclose(
    fast.apply({'params': p_ref}, x), ref.apply({'params': p_ref}, x), rtol=1e-5, atol=1e-5
  )


def test_layers_pass_the_impl_down():
  """`layers.conv(..., impl=)` reaches the module, whose variables do not depend on it."""
  x = jnp.zeros((1, 8, 8, 3))
  shapes = []
  for impl in ('auto', 'xla', 'cpu_fast'):
    layer = layers.conv(4, 3, 1, 'SAME', 'c', impl=impl)
    assert isinstance(layer, layers.Conv) and layer.impl == impl
    shapes.append(jax.tree.map(jnp.shape, jax.eval_shape(layer.init, jax.random.key(0), x)))
  assert shapes[0] == shapes[1] == shapes[2]
