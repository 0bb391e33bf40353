"""layers.py against NumPy re-implementations of the PyTorch / Keras ops (docs/design/cyclegan.md)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.models import layers


def np_instance_norm(x, eps, mode):
  mu = x.mean(axis=(1, 2), keepdims=True)
  var = ((x - mu) ** 2).mean(axis=(1, 2), keepdims=True)  # biased, as torch and keras-contrib
  return (x - mu) / (np.sqrt(var + eps) if mode == 'var' else np.sqrt(var) + eps)


def np_conv(x, w, stride, pads):
  """Cross-correlation, NHWC × HWIO, explicit ((top, bottom), (left, right)) zero padding."""
  x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  kh, kw = w.shape[:2]
  ho, wo = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
  y = np.zeros((x.shape[0], ho, wo, w.shape[3]))
  for i in range(ho):
    for j in range(wo):
      patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
      y[:, i, j] = np.einsum('nhwc,hwco->no', patch, w)
  return y


def keras_same_pads(n, k, s):
  total = max((math.ceil(n / s) - 1) * s + k - n, 0)
  return (total // 2, total - total // 2)


def np_conv_transpose(x, w_torch, shift):
  """y[2i+k-shift] += w[k]·x[i], cropped to 2H×2W; w in torch layout (Cin, Cout, kH, kW)."""
  n, h, w, _ = x.shape
  y = np.zeros((n, 2 * h + 3, 2 * w + 3, w_torch.shape[1]))
  for i in range(h):
    for j in range(w):
      for a in range(3):
        for b in range(3):
          y[:, 2 * i + a, 2 * j + b] += x[:, i, j] @ w_torch[:, :, a, b]
  return y[:, shift : shift + 2 * h, shift : shift + 2 * w]


@pytest.fixture(scope='module')
def x():
  rng = np.random.default_rng(0)
  # Two samples with different offsets/scales: statistics must be per sample and per channel.
  base = rng.normal(size=(2, 6, 5, 4)).astype(np.float32)
  return base * np.array([1.0, 3.0], np.float32)[:, None, None, None] + np.arange(
    4, dtype=np.float32
  )


@pytest.mark.parametrize('mode,eps', [('var', 1e-5), ('std', 1e-3), ('var', 0.5), ('std', 0.5)])
def test_instance_norm_matches_numpy(x, mode, eps):
  layer = layers.InstanceNorm(epsilon=eps, eps_mode=mode)
  variables = layer.init(jax.random.key(0), x)
  assert variables == {}  # affine=False: no variables at all
  y = layer.apply(variables, x)
  np.testing.assert_allclose(y, np_instance_norm(x.astype(np.float64), eps, mode), atol=1e-5)


def test_instance_norm_eps_modes_differ(x):
  var = layers.InstanceNorm(0.5, 'var').apply({}, x)
  std = layers.InstanceNorm(0.5, 'std').apply({}, x)
  assert np.abs(var - std).max() > 1e-2


def test_instance_norm_bf16_keeps_float32_statistics():
  rng = np.random.default_rng(1)
  # A large common offset: bf16 statistics (8-bit mantissa) would lose the signal entirely.
  x32 = (100.0 + rng.normal(size=(2, 32, 32, 3))).astype(np.float32)
  x16 = jnp.asarray(x32, jnp.bfloat16)
  y16 = layers.InstanceNorm().apply({}, x16)
  assert y16.dtype == jnp.bfloat16
  ref = np_instance_norm(np.asarray(x16, np.float64), 1e-5, 'var')  # exact stats of the bf16 input
  np.testing.assert_allclose(np.asarray(y16, np.float32), ref, atol=0.05, rtol=1 / 128)


def test_instance_norm_affine_has_params(x):
  layer = layers.InstanceNorm(affine=True)
  params = layer.init(jax.random.key(0), x)['params']
  assert {k: v.shape for k, v in params.items()} == {'scale': (4,), 'bias': (4,)}
  assert params['scale'].dtype == jnp.float32
  params = {'scale': jnp.full((4,), 2.0), 'bias': jnp.arange(4.0)}
  y = layer.apply({'params': params}, x)
  np.testing.assert_allclose(y, 2 * np_instance_norm(x, 1e-5, 'var') + np.arange(4), atol=1e-5)


def test_instance_norm_rejects_unknown_mode(x):
  with pytest.raises(ValueError, match='eps_mode'):
    layers.InstanceNorm(eps_mode='both').apply({}, x)


def test_reflect_pad_matches_torch_semantics():
  x = np.arange(2 * 4 * 5 * 1, dtype=np.float32).reshape(2, 4, 5, 1)
  y = np.asarray(layers.reflect_pad(x, 2))
  # ReflectionPad2d: the edge row is not repeated, so row -1 is row 1 and row -2 is row 2.
  np.testing.assert_array_equal(y[:, 0, 2:-2], x[:, 2])
  np.testing.assert_array_equal(y[:, 1, 2:-2], x[:, 1])
  np.testing.assert_array_equal(y[:, -1, 2:-2], x[:, -3])
  np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode='reflect'))
  assert not np.array_equal(y, np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode='symmetric'))


def test_upsample_nearest2x_matches_repeat():
  x = np.random.default_rng(2).normal(size=(2, 3, 5, 4)).astype(np.float32)
  y = np.asarray(jax.jit(layers.upsample_nearest2x)(x))
  np.testing.assert_array_equal(y, np.repeat(np.repeat(x, 2, axis=1), 2, axis=2))


def test_upsample_has_no_gather():
  hlo = jax.jit(layers.upsample_nearest2x).lower(jnp.zeros((1, 4, 4, 2))).as_text()
  assert 'gather' not in hlo


@pytest.mark.parametrize(
  'shift,padding', [(1, layers.TORCH_CONVT_PADDING), (0, layers.KERAS_CONVT_PADDING), (0, 'SAME')]
)
def test_conv_transpose_alignment(shift, padding):
  """((1,2),(1,2)) is torch ConvT(k3,s2,p1,op1); ((2,1),(2,1)) = 'SAME' is Keras Conv2DTranspose."""
  rng = np.random.default_rng(3)
  x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
  w_torch = rng.normal(size=(5, 6, 3, 3)).astype(np.float32)  # (Cin, Cout, kH, kW)
  layer = layers.conv_transpose(6, padding, 'up', dtype=jnp.float32)
  params = {'kernel': w_torch.transpose(2, 3, 1, 0), 'bias': np.zeros(6, np.float32)}
  with jax.default_matmul_precision('highest'):
    y = layer.apply({'params': params}, x)
  assert y.shape == (2, 6, 8, 6)
  np.testing.assert_allclose(y, np_conv_transpose(x, w_torch, shift), atol=1e-4)
  assert np.abs(y - np_conv_transpose(x, w_torch, 1 - shift)).max() > 0.1  # alignments differ


@pytest.mark.parametrize('impl', layers.CONV_IMPLS)
@pytest.mark.parametrize('padding', [layers.TORCH_CONVT_PADDING, layers.KERAS_CONVT_PADDING])
def test_conv_transpose_matches_flax_for_every_impl(padding, impl):
  """Same init, outputs and gradients (input, kernel, bias) as the input-dilated nn.ConvTranspose."""
  import flax.linen as nn

  x = jnp.asarray(np.random.default_rng(5).normal(size=(2, 6, 10, 5)), jnp.float32)
  layer = layers.conv_transpose(7, padding, 'up', init='keras', impl=impl)
  ref = nn.ConvTranspose(
    7,
    (3, 3),
    strides=(2, 2),
    padding=padding,
    transpose_kernel=True,
    kernel_init=nn.initializers.glorot_uniform(),
  )
  params = layer.init(jax.random.key(1), x)
  np.testing.assert_array_equal(
    params['params']['kernel'], ref.init(jax.random.key(1), x)['params']['kernel']
  )
  params = jax.tree.map(lambda a: a + 0.1, params)  # non-zero bias
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))
  with jax.default_matmul_precision('highest'):
    ours, theirs = layer.apply(params, x), ref.apply(params, x)
    g_ours = jax.grad(loss(layer), argnums=(0, 1))(params, x)
    g_theirs = jax.grad(loss(ref), argnums=(0, 1))(params, x)
  np.testing.assert_allclose(ours, theirs, atol=1e-5)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_theirs)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(b).max()))


@pytest.mark.parametrize(
  'size,k,s', [((8, 6), 4, 2), ((9, 7), 4, 2), ((5, 6), 4, 1), ((8, 10), 3, 2), ((7, 7), 3, 2)]
)
def test_conv_same_is_keras_same(size, k, s):
  rng = np.random.default_rng(4)
  x = rng.normal(size=(1, *size, 2)).astype(np.float32)
  w = rng.normal(size=(k, k, 2, 3)).astype(np.float32)
  pads = (keras_same_pads(size[0], k, s), keras_same_pads(size[1], k, s))
  layer = layers.conv(3, k, s, 'SAME', 'c')
  with jax.default_matmul_precision('highest'):
    y = layer.apply({'params': {'kernel': w, 'bias': np.zeros(3, np.float32)}}, x)
  np.testing.assert_allclose(y, np_conv(x, w, s, pads), atol=1e-4)


def test_conv_explicit_padding_is_torch():
  rng = np.random.default_rng(5)
  x = rng.normal(size=(1, 8, 8, 2)).astype(np.float32)
  w = rng.normal(size=(4, 4, 2, 3)).astype(np.float32)
  layer = layers.conv(3, 4, 1, ((1, 1), (1, 1)), 'c')
  with jax.default_matmul_precision('highest'):
    y = layer.apply({'params': {'kernel': w, 'bias': np.zeros(3, np.float32)}}, x)
  assert y.shape == (1, 7, 7, 3)  # PatchGAN: k4 s1 p1 shrinks by one (31 → 30 at 256²)
  np.testing.assert_allclose(y, np_conv(x, w, 1, ((1, 1), (1, 1))), atol=1e-4)


def test_kernel_init():
  shape = (4, 4, 64, 128)
  normal = layers.kernel_init('normal', 0.02)(jax.random.key(0), shape)
  assert abs(float(normal.std()) - 0.02) < 1e-3 and abs(float(normal.mean())) < 1e-3
  glorot = np.asarray(layers.kernel_init('keras')(jax.random.key(0), shape))
  limit = math.sqrt(6 / (16 * 64 + 16 * 128))  # Keras glorot_uniform with receptive field 16
  assert np.abs(glorot).max() <= limit and np.abs(glorot).max() > 0.99 * limit
  # CUT's torch xavier_normal_(gain 0.02): std gain·sqrt(2 / (fan_in + fan_out)), untruncated.
  xavier = np.asarray(layers.kernel_init('xavier', 0.02)(jax.random.key(0), shape))
  std = 0.02 * math.sqrt(2 / (16 * 64 + 16 * 128))
  assert abs(xavier.std() / std - 1) < 0.02 and np.abs(xavier).max() > 3.5 * std
  with pytest.raises(ValueError):
    layers.kernel_init('he')


@pytest.mark.parametrize(
  'k,size,impl',
  [
    (4, (4, 6), 'subpixel'),
    (4, (4, 6), 'cpu_fast'),
    (4, (4, 6), 'xla'),
    (3, (5, 3), 'cpu_fast'),
    (5, (3, 4), 'cpu_winograd'),
    (1, (2, 3), 'subpixel'),
  ],
)
def test_upsample_conv_matches_upsample_then_conv(k, size, impl):
  """Same init, outputs and gradients as nearest ×2 followed by the 'SAME' conv it replaces."""
  x = jnp.asarray(np.random.default_rng(6).normal(size=(2, *size, 5)), jnp.float32)
  layer = layers.upsample_conv(7, k, 'up', init='keras', impl=impl)
  ref = layers.conv(7, k, 1, 'SAME', 'up', init='keras', impl='xla')
  up = layers.upsample_nearest2x
  params = layer.init(jax.random.key(1), x)
  ref_params = ref.init(jax.random.key(1), up(x))
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
    np.testing.assert_array_equal(a, b)
  params = jax.tree.map(lambda a: a + 0.1, params)  # non-zero bias
  ours = lambda p, x: jnp.sum(jnp.sin(layer.apply(p, x)))
  theirs = lambda p, x: jnp.sum(jnp.sin(ref.apply(p, up(x))))
  with jax.default_matmul_precision('highest'):
    y = layer.apply(params, x)
    y_ref = ref.apply(params, up(x))
    g_ours = jax.grad(ours, argnums=(0, 1))(params, x)
    g_theirs = jax.grad(theirs, argnums=(0, 1))(params, x)
  assert y.shape == (2, 2 * size[0], 2 * size[1], 7)
  np.testing.assert_allclose(y, y_ref, atol=1e-5)
  # An independent NumPy reference (repeat, then zero-padded correlation) pins the alignment.
  w = np.asarray(params['params']['kernel'])
  x_up = np.asarray(x).repeat(2, axis=1).repeat(2, axis=2)
  pads = ((k - 1) // 2, k - 1 - (k - 1) // 2)
  np.testing.assert_allclose(y, np_conv(x_up, w, 1, (pads, pads)) + 0.1, atol=1e-4)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_theirs)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(b).max()))
