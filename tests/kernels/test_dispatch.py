"""kernels.dispatch: how conv_impl resolves, what it records, and that every impl computes the same conv."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.kernels import dispatch, fast_conv, winograd


@pytest.fixture
def no_env(monkeypatch):
  monkeypatch.delenv(dispatch.ENV, raising=False)


def test_resolve_auto_by_backend(no_env):
  want = 'cpu_winograd' if jax.default_backend() == 'cpu' else 'subpixel'
  assert dispatch.resolve() == dispatch.resolve('auto') == want
  for impl in dispatch.CONV_IMPLS:
    assert dispatch.resolve(impl) == impl
  assert set(dispatch.MEANING) == set(dispatch.CONV_IMPLS)


def test_env_overrides_config(monkeypatch):
  monkeypatch.setenv(dispatch.ENV, 'xla')
  assert dispatch.resolve('cpu_winograd') == 'xla' and dispatch.resolve('auto') == 'xla'
  monkeypatch.setenv(dispatch.ENV, '')  # empty = unset
  assert dispatch.resolve('cpu_fast') == 'cpu_fast'


def test_unknown_values_name_the_allowed_ones(monkeypatch):
  monkeypatch.delenv(dispatch.ENV, raising=False)
  with pytest.raises(
    ValueError,
    match="conv_impl .*'auto' or one of xla, subpixel, cpu_fast, cpu_winograd.*'winograd'",
  ):
    dispatch.resolve('winograd')
  monkeypatch.setenv(dispatch.ENV, 'fast')
  with pytest.raises(ValueError, match=f"{dispatch.ENV} .*cpu_winograd.*'fast'"):
    dispatch.resolve('xla')


def test_runtime_record(monkeypatch):
  monkeypatch.delenv(dispatch.ENV, raising=False)
  record = dispatch.runtime_record('auto')
  assert record['conv_impl'] == dispatch.resolve('auto')
  assert record['conv_impl_requested'] == 'auto' and record['conv_impl_env'] is None
  assert record['backend'] == jax.default_backend() and record['jax'] == jax.__version__
  assert record['devices'] == jax.device_count() and record['jaxlib']
  # The shape rule in force is recorded with the CPU impls it applies to, None otherwise.
  for impl in dispatch.CONV_IMPLS:
    want = dispatch.UPSAMPLE_MIN_PIXELS if impl in ('cpu_fast', 'cpu_winograd') else None
    assert dispatch.runtime_record(impl)['upsample_xla_below_pixels'] == want, impl
  monkeypatch.setenv(dispatch.ENV, 'subpixel')
  record = dispatch.runtime_record('cpu_fast')
  assert (record['conv_impl'], record['conv_impl_requested'], record['conv_impl_env']) == (
    'subpixel',
    'cpu_fast',
    'subpixel',
  )
  assert record['upsample_xla_below_pixels'] is None


def _rel_err(a, b):
  return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def _value_and_grads(fn, x, w, seed):
  y, vjp = jax.vjp(fn, x, w)
  dy = jnp.asarray(np.random.default_rng(seed).normal(size=y.shape), jnp.float32)
  return (y, *vjp(dy))


# (kernel, stride, padding, H, W, Cin, Cout): a wide 3×3 layer that Winograd takes (F2x2 at 8²),
# a strided Keras-'SAME' conv, and an odd-sided explicit-padding conv.
CONV_CASES = [
  (3, 1, 'VALID', 10, 10, 128, 256),
  (4, 2, 'SAME', 9, 8, 3, 16),
  (3, 1, ((1, 1), (1, 1)), 7, 5, 4, 5),
  (4, 2, ((1, 1), (1, 1)), 4, 4, 512, 512),  # weight-bound (pix2pix's inner levels): patch GEMM
  (4, 1, ((1, 1), (1, 1)), 17, 18, 128, 256),  # a wide 4×4 stride-1 layer: F(3×3, 4×4) at 16×17
]


@pytest.mark.parametrize('k, stride, padding, h, w, cin, cout', CONV_CASES)
def test_conv2d_every_impl_matches_xla(no_env, k, stride, padding, h, w, cin, cout):
  rng = np.random.default_rng(k + cin)
  x = jnp.asarray(rng.normal(size=(2, h, w, cin)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(k, k, cin, cout)) / np.sqrt(k * k * cin), jnp.float32)
  results = {
    impl: _value_and_grads(
      lambda x, w, impl=impl: dispatch.conv2d(x, w, (stride, stride), padding, impl),
      x,
      kernel,
      seed=1,
    )
    for impl in dispatch.CONV_IMPLS
  }
  for impl, got in results.items():
    for a, b in zip(got, results['xla']):
      assert a.shape == b.shape and _rel_err(a, b) < 1e-4, impl
  # The wide layer really takes another path under cpu_winograd (rounding differs, not bitwise).
  wide = k in (3, 4) and stride == 1 and cin * cout >= 128 * 256
  assert (not np.array_equal(results['cpu_winograd'][0], results['cpu_fast'][0])) == wide


def _primitives(jaxpr):
  names = set()
  for eqn in jaxpr.eqns:
    names.add(eqn.primitive.name)
    for param in eqn.params.values():
      inner = getattr(param, 'jaxpr', param)
      if hasattr(inner, 'eqns'):
        names |= _primitives(inner)
  return names


@pytest.mark.parametrize('impl', ['cpu_fast', 'cpu_winograd'])
def test_weight_bound_conv_runs_as_one_gemm(no_env, impl):
  """At most IM2COL_MAX_PIXELS outputs and a kernel of IM2COL_MIN_WEIGHTS elements: no XLA conv
  (values: test_conv2d_every_impl_matches_xla's weight-bound case); one pixel more or a smaller
  kernel keeps the conv."""
  conv = lambda x, w: dispatch.conv2d(x, w, (2, 2), ((1, 1), (1, 1)), impl)
  w = jnp.zeros((4, 4, 512, 512), jnp.float32)
  small_w = jnp.zeros((4, 4, 256, 512), jnp.float32)
  side = int(np.sqrt(fast_conv.IM2COL_MAX_PIXELS))  # output side of a 2·side input
  assert side * side == fast_conv.IM2COL_MAX_PIXELS and w.size == fast_conv.IM2COL_MIN_WEIGHTS
  at_limit = jnp.zeros((1, 2 * side, 2 * side, 512), jnp.float32)
  above = jnp.zeros((1, 2 * side, 2 * side + 2, 512), jnp.float32)
  for x, kernel, gemm in ((at_limit, w, True), (above, w, False), (at_limit, small_w, False)):
    for fn in (conv, jax.grad(lambda x, w: jnp.sum(conv(x, w)), (0, 1))):
      names = _primitives(jax.make_jaxpr(fn)(x[..., : kernel.shape[2]], kernel).jaxpr)
      assert ('conv_general_dilated' not in names) == gemm, (x.shape, kernel.shape)


# 3×3: torch (k3 p1 output_padding 1) and Keras 'same'; 4×4 ((2, 2)): torch k4 s2 p1, the pix2pix
# U-Net's up-convs; 'SAME' and a 4×4 with lo + hi = 3 (output 2H - 1) take XLA's form under every impl.
@pytest.mark.parametrize(
  'k, padding',
  [
    (3, ((1, 2), (1, 2))),
    (3, ((2, 1), (2, 1))),
    (3, 'SAME'),
    (4, ((2, 2), (2, 2))),
    (4, ((1, 2), (2, 1))),
  ],
)
def test_conv_transpose_every_impl_matches_xla(no_env, k, padding):
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 5, 6, 4)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(k, k, 7, 4)), jnp.float32)  # (kH, kW, Cout, Cin)
  ref = _value_and_grads(
    lambda x, w: jax.lax.conv_transpose(
      x, w, (2, 2), padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC'), transpose_kernel=True
    ),
    x,
    kernel,
    seed=2,
  )
  for impl in dispatch.CONV_IMPLS:
    got = _value_and_grads(
      lambda x, w, impl=impl: dispatch.conv_transpose(x, w, padding, impl), x, kernel, seed=2
    )
    for a, b in zip(got, ref):
      assert a.shape == b.shape and _rel_err(a, b) < 1e-5, impl


# (2, 4, 6): 192 output pixels, below UPSAMPLE_MIN_PIXELS (the CPU impls run the plain form);
# (2, 8, 16): 1024, above (they run the sub-pixel form on fast_conv / Winograd's conv2d).
@pytest.mark.parametrize('n, h, w', [(2, 4, 6), (2, 8, 16)])
def test_upsample_conv_every_impl_matches_upsample_then_conv(no_env, n, h, w):
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.normal(size=(n, h, w, 5)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(4, 4, 5, 3)), jnp.float32)
  ref = _value_and_grads(
    lambda x, w: jax.lax.conv_general_dilated(
      jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2),
      w,
      (1, 1),
      'SAME',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    ),
    x,
    kernel,
    seed=3,
  )
  for impl in dispatch.CONV_IMPLS:
    got = _value_and_grads(
      lambda x, w, impl=impl: dispatch.upsample_conv(x, w, impl), x, kernel, seed=3
    )
    # Error model: the sub-pixel form sums in another order; the kernel gradient sums n = 2·16·32
    # products of N(0, 1)s whose magnitudes add up to ~7× its largest element: sqrt(n)·u·7 ≈ 1.3e-5
    # of it. A misaligned phase is off by O(1).
    for a, b in zip(got, ref):
      assert a.shape == b.shape and _rel_err(a, b) < 5e-5, impl


def test_upsample_impl_threshold(no_env):
  """Output pixels N·2H·2W below UPSAMPLE_MIN_PIXELS: 'xla' for the CPU impls; others unchanged."""
  edge = dispatch.UPSAMPLE_MIN_PIXELS // 4  # N·H·W of the input at the threshold
  for impl in dispatch.CONV_IMPLS:
    cpu = impl in ('cpu_fast', 'cpu_winograd')
    assert dispatch.upsample_impl((1, edge, 1, 8), impl) == impl
    assert dispatch.upsample_impl((2, 1, edge // 2 - 1, 8), impl) == ('xla' if cpu else impl)
    assert dispatch.upsample_impl((2, 1, edge, 8), impl) == impl


@pytest.fixture(scope='module')
def upsample_sides():
  """{side: (x, kernel, dy)}: a 4×4 up-conv 6→5 whose output is below ('small', 2·4·4·4 = 128
  pixels) and above ('large', 2·16·16·4 = 2048) UPSAMPLE_MIN_PIXELS."""
  rng = np.random.default_rng(7)
  kernel = jnp.asarray(rng.normal(size=(4, 4, 6, 5)) / np.sqrt(96), jnp.float32)
  out = {}
  for side, hw in (('small', 4), ('large', 16)):
    x = jnp.asarray(rng.normal(size=(2, hw, hw, 6)), jnp.float32)
    dy = jnp.asarray(rng.normal(size=(2, 2 * hw, 2 * hw, 5)), jnp.float32)
    out[side] = (x, kernel, dy)
  assert 2 * 4 * 4 * 4 < dispatch.UPSAMPLE_MIN_PIXELS <= 2 * 16 * 16 * 4
  return out


def _upsample_vjp(impl, x, kernel, dy):
  y, vjp = jax.vjp(lambda x, w: dispatch.upsample_conv(x, w, impl), x, kernel)
  return (y, *vjp(dy))


def _conv_input_shapes(jaxpr):
  """The lhs shapes of every conv_general_dilated in `jaxpr`, custom-VJP bodies included."""
  shapes = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == 'conv_general_dilated':
      shapes.append(tuple(eqn.invars[0].aval.shape))
    for param in eqn.params.values():
      inner = getattr(param, 'jaxpr', param)  # ClosedJaxpr -> Jaxpr
      if hasattr(inner, 'eqns'):
        shapes += _conv_input_shapes(inner)
  return shapes


def _uses_subpixel(impl, x, kernel):
  """Whether the traced up-conv is the sub-pixel form: its one conv reads the low-res input (the
  plain form convolves the ×2 upsampled one)."""
  jaxpr = jax.make_jaxpr(lambda x, w: dispatch.upsample_conv(x, w, impl))(x, kernel).jaxpr
  (shape,) = _conv_input_shapes(jaxpr)
  assert shape[1] in (x.shape[1], 2 * x.shape[1], x.shape[1] + 1, x.shape[1] + 2, x.shape[1] + 3)
  return shape[1] < 2 * x.shape[1]


@pytest.mark.parametrize('impl', ['cpu_fast', 'cpu_winograd'])
def test_upsample_rule_routes_small_to_xla_and_large_to_subpixel(no_env, upsample_sides, impl):
  for side, (x, kernel, dy) in upsample_sides.items():
    assert _uses_subpixel(impl, x, kernel) == (side == 'large'), side
    assert not _uses_subpixel('xla', x, kernel)
    y, vjp = jax.vjp(
      lambda x, w: jax.lax.conv_general_dilated(
        jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2),
        w,
        (1, 1),
        'SAME',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      ),
      x,
      kernel,
    )
    ref = (y, *vjp(dy))
    got = _upsample_vjp(impl, x, kernel, dy)
    for a, b in zip(got, ref):  # as above: n = 2·32·32 terms, sqrt(n)·u·10 ≈ 3e-5 of the largest
      assert a.shape == b.shape and _rel_err(a, b) < 1e-4, side
    if side == 'small':  # the very same computation as the 'xla' impl
      for a, b in zip(got, _upsample_vjp('xla', x, kernel, dy)):
        np.testing.assert_array_equal(a, b)


def test_frozen_kernels_winograd_only_where_chosen(no_env):
  rng = np.random.default_rng(5)
  params = {
    name: {'kernel': jnp.asarray(rng.normal(size=(3, 3, cin, cout)), jnp.float32)}
    for name, cin, cout in (('narrow', 8, 8), ('wide', 128, 256))
  }
  layer_hw = {'narrow': (32, 32), 'wide': (32, 32)}
  for impl in dispatch.CONV_IMPLS:
    kernels_t = dispatch.frozen_kernels(params, layer_hw, impl)
    prepared = {n for n, k in kernels_t.items() if isinstance(k, winograd.Prepared)}
    assert prepared == ({'wide'} if impl == 'cpu_winograd' else set()), impl
    assert kernels_t['narrow'].shape == (3, 3, 8, 8)
  assert not any(
    isinstance(k, winograd.Prepared)  # without sizes nothing is prepared
    for k in dispatch.frozen_kernels(params, None, 'cpu_winograd').values()
  )
  x = jnp.asarray(rng.normal(size=(1, 32, 32, 128)), jnp.float32)
  kernel = params['wide']['kernel']
  results = {}
  for impl in ('xla', 'cpu_winograd'):
    kernel_t = dispatch.frozen_kernels(params, layer_hw, impl)['wide']
    y, vjp = jax.vjp(lambda x, kernel_t=kernel_t: dispatch.frozen_conv3x3(x, kernel, kernel_t), x)
    results[impl] = (y, *vjp(jnp.ones_like(y)))
  for a, b in zip(results['cpu_winograd'], results['xla']):
    assert _rel_err(a, b) < 1e-4
