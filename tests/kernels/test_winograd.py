"""Winograd 3×3 and 4×4 convs (kernels/winograd.py) against XLA's direct conv, their matrices in
exact arithmetic, their use in VGG/NST and which PatchGAN layers dispatch routes to them."""

import functools
import itertools
from fractions import Fraction

import helpers
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import config_lib, models
from jaxstyle.kernels import dispatch, frozen, winograd
from jaxstyle.models import vgg
from jaxstyle.models.patchgan_bn import PatchDiscriminatorBN
from jaxstyle.nst import losses as nst_losses
from jaxstyle.tools import bench_nst


def _direct(x, w, pads='SAME'):
  return jax.lax.conv_general_dilated(
    x, w, (1, 1), pads, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


def _rel_err(a, b):
  return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.mark.parametrize('variant,tol', [('F2x2', 1e-5), ('F4x4', 1e-4)])
@pytest.mark.parametrize('shape', [(2, 13, 11, 8, 5), (1, 8, 16, 16, 24), (1, 3, 2, 4, 4)])
def test_conv_matches_direct_conv(variant, tol, shape):
  """Ragged sides (13, 11: zero-extended tiles), batches, a side smaller than one tile."""
  n, h, w, cin, cout = shape
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((n, h, w, cin)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((3, 3, cin, cout)), jnp.float32)
  y = winograd.conv3x3_same(x, winograd.kernel_transform(k, variant))
  assert y.shape == (n, h, w, cout)
  assert _rel_err(y, _direct(x, k)) < tol


@pytest.mark.parametrize('variant', ['F2x2', 'F4x4'])
def test_prepared_vgg_conv_value_and_input_gradient(variant):
  """`frozen.conv3x3` with a Prepared kernel: same value and input gradient as the direct conv."""
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((1, 10, 12, 6)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((3, 3, 6, 7)), jnp.float32)
  dy = jnp.asarray(rng.standard_normal((1, 10, 12, 7)), jnp.float32)
  y, vjp = jax.vjp(lambda x: frozen.conv3x3(x, k, winograd.prepare(k, variant)), x)
  y_ref, vjp_ref = jax.vjp(lambda x: _direct(x, k), x)
  assert _rel_err(y, y_ref) < 1e-4
  assert _rel_err(vjp(dy)[0], vjp_ref(dy)[0]) < 1e-4


def test_choose_policy():
  assert winograd.choose(64, 64, 256, 256) is None  # few channels: transforms dominate
  assert winograd.choose(128, 128, 128, 128) is None
  assert winograd.choose(128, 256, 64, 64) == 'F4x4'
  assert winograd.choose(256, 256, 64, 64) == 'F4x4'
  assert winograd.choose(512, 512, 16, 16) == 'F2x2'  # small maps: fewer, larger tiles lose
  assert winograd.choose(512, 512, 4, 4) is None


@pytest.mark.slow  # whole NST objective under each impl (~25 s)
def test_nst_objective_same_values_for_every_conv_impl(monkeypatch):
  """cpu_winograd prepares the wide layers; every impl gives the direct convs' loss and gradient."""
  monkeypatch.delenv(dispatch.ENV, raising=False)
  _, _, params, x = bench_nst._objective(64, conv_impl='cpu_winograd')
  # Average pooling: with max pooling the gradient is discontinuous at near-ties, and Winograd's
  # ~2e-5 rounding makes ties within reach (docs/development.md, "Tolerances").
  style = jnp.asarray(np.random.default_rng(1).uniform(-128, 127, x.shape), jnp.float32)
  targets, loss_fn = nst_losses.make_objective(
    vgg.VGG19(pool='avg'), params, x, style, conv_impl='cpu_winograd'
  )
  prepared = [n for n, k in targets['kernels_t'].items() if isinstance(k, winograd.Prepared)]
  assert prepared == [
    'block3_conv1',
    'block3_conv2',
    'block3_conv3',
    'block3_conv4',
    'block4_conv1',
    'block4_conv2',
    'block4_conv3',
    'block4_conv4',
  ]  # block 5 is 4x4 at 64²
  x = x * 0.01  # a small image, so the style/content terms are not lost under the TV term
  upto = {n: params[n] for n in targets['kernels_t']}
  value_and_grad = jax.jit(jax.value_and_grad(lambda x, t: loss_fn(x, t, params)[0]))
  results = {}
  for impl in dispatch.CONV_IMPLS:  # one compile per kernels_t structure (Prepared or plain)
    kernels_t = vgg.frozen_kernels(upto, (64, 64), impl)
    has_prepared = any(isinstance(k, winograd.Prepared) for k in kernels_t.values())
    assert has_prepared == (impl == 'cpu_winograd')
    results[impl] = value_and_grad(x, dict(targets, kernels_t=kernels_t))
  v_ref, g_ref = results['xla']
  # Error model: Winograd F(4x4)/F(2x2) rounds its transforms, ~2e-5 relative per conv; the value
  # passes 8 Winograd convs (1.6e-4 if the errors add up), the input gradient those 8 forward and
  # their 8 transposes backward (3.2e-4). The other impls (direct convs in other orders) are
  # ~sqrt(4608)·u ≈ 4e-6 per conv, far below. A wrong transform or a missing layer is off by O(1).
  for impl, (v, g) in results.items():
    assert abs(float(v - v_ref)) < 2e-4 * abs(float(v_ref)), impl
    assert _rel_err(g, g_ref) < 5e-4, impl
  assert not np.array_equal(results['cpu_winograd'][1], g_ref)  # Winograd really ran


@pytest.mark.parametrize(
  'variant,tol,pads',
  [
    ('F2x2', 1e-5, ((1, 1), (1, 1))),
    ('F4x4', 1e-4, ((1, 1), (1, 1))),  # SAME
    ('F4x4', 1e-4, ((0, 0), (0, 0))),  # VALID (ResNet blocks)
    ('F2x2', 1e-5, ((0, 2), (1, 0))),
  ],
)  # asymmetric
def test_trainable_conv_value_and_both_gradients(variant, tol, pads):
  """conv3x3 (custom VJP in the Winograd domain) vs jax.vjp of the direct conv: y, dx and dkernel."""
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal((2, 11, 9, 5)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((3, 3, 5, 6)), jnp.float32)
  y, vjp = jax.vjp(lambda x, k: winograd.conv3x3(x, k, pads, variant), x, k)
  y_ref, vjp_ref = jax.vjp(lambda x, k: _direct(x, k, pads), x, k)
  assert y.shape == y_ref.shape
  dy = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)
  assert _rel_err(y, y_ref) < tol
  for got, want in zip(vjp(dy), vjp_ref(dy)):
    assert _rel_err(got, want) < tol


def test_trainable_conv_rejects_pads_it_cannot_transpose():
  x, k = jnp.zeros((1, 8, 8, 2)), jnp.zeros((3, 3, 2, 2))
  with pytest.raises(ValueError, match=r'pads in \[0, 2\]'):
    winograd.conv3x3(x, k, ((3, 0), (0, 0)), 'F2x2')


def _exact(matrix):
  """A variant's matrix as Fractions (the published 3×3 ones are stored as floats: 1/6, 1/24)."""
  return [[Fraction(v).limit_denominator(10**4) for v in row] for row in matrix]


@pytest.mark.parametrize('variant', sorted(winograd.VARIANTS))
def test_matrices_compute_the_exact_correlation(variant):
  """Σ_p Aᵀ[i,p]·G[p,k]·Bᵀ[p,j] = [j = i + k] exactly, so Aᵀ[(G·g) ⊙ (Bᵀ·d)] is the 1-D
  correlation y_i = Σ_k d_(i+k)·g_k for every d and g (it is bilinear: the basis suffices)."""
  m, bt, g, at = winograd.VARIANTS[variant]
  bt, g, at = _exact(bt), _exact(g), _exact(at)
  r = winograd.kernel_size(variant)
  a = m + r - 1
  assert (len(bt), len(bt[0]), len(g), len(at), len(at[0])) == (a, a, a, m, a)
  for i, j, k in itertools.product(range(m), range(a), range(r)):
    assert sum(at[i][p] * g[p][k] * bt[p][j] for p in range(a)) == int(j == i + k), (i, j, k)


def _terms(bt, g, at):
  """Per interpolation point p, the rank-1 tensor Aᵀ[i,p]·G[p,k]·Bᵀ[p,j]: what a variant computes
  from p, invariant under rescaling p's row of Bᵀ, row of G and column of Aᵀ."""
  return [
    [
      [[at[i][p] * g[p][k] * bt[p][j] for j in range(len(bt))] for k in range(len(g[0]))]
      for i in range(len(at))
    ]
    for p in range(len(bt))
  ]


@pytest.mark.parametrize('variant,points', [('F2x2', (0, 1, -1)), ('F4x4', (0, 1, -1, 2, -2))])
def test_toom_cook_gives_the_published_3x3_matrices_up_to_scalings(variant, points):
  m, bt, g, at = winograd.VARIANTS[variant]
  assert _terms(*winograd.toom_cook(m, 3, points)) == _terms(_exact(bt), _exact(g), _exact(at))


# Error model: float32 rounding of the transforms, amplified by their entries (up to 5 in Bᵀ, 8 in
# G⁻¹'s scale): measured max |err| / max |y| ≤ 5e-6 for the values and both gradients of every case
# below, ~1e-5 for F(3×3, 4×4) on pix2pix's full conv_3 (4096-term sums), against ~1e-6 for the
# direct sums; 1e-4 leaves a 10× margin, and a wrong matrix entry or tile offset is off by O(1).
K4_CASES = [
  ('F3x3_k4', (1, 32, 32, 6, 5), ((1, 1), (1, 1))),  # pix2pix's conv_3 geometry: 31² (ragged)
  ('F3x3_k4', (2, 11, 9, 5, 6), ((0, 0), (0, 0))),
  ('F3x3_k4', (1, 7, 10, 4, 3), ((0, 3), (2, 1))),  # asymmetric
  ('F3x3_k4', (1, 2, 3, 3, 4), ((3, 3), (3, 2))),  # sides smaller than one tile
  ('F2x2_k4', (1, 32, 32, 6, 5), ((1, 1), (1, 1))),
  ('F2x2_k4', (2, 9, 12, 5, 6), ((2, 1), (0, 3))),  # 3 - 1 > m: windows span 3 blocks
]


@pytest.mark.parametrize('variant,shape,pads', K4_CASES)
def test_4x4_conv_value_and_both_gradients(variant, shape, pads):
  """winograd.conv with a 4×4 kernel vs jax.vjp of the direct conv: y, dx and dkernel."""
  n, h, w, cin, cout = shape
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.standard_normal((n, h, w, cin)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((4, 4, cin, cout)), jnp.float32)
  y, vjp = jax.vjp(lambda x, k: winograd.conv(x, k, pads, variant), x, k)
  y_ref, vjp_ref = jax.vjp(lambda x, k: _direct(x, k, pads), x, k)
  assert y.shape == y_ref.shape
  dy = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)
  assert _rel_err(y, y_ref) < 1e-4
  for got, want in zip(vjp(dy), vjp_ref(dy)):
    assert got.shape == want.shape and _rel_err(got, want) < 1e-4


def test_4x4_conv_rejects_pads_and_kernels_it_cannot_take():
  x, k = jnp.zeros((1, 8, 8, 2)), jnp.zeros((4, 4, 2, 2))
  with pytest.raises(ValueError, match=r'pads in \[0, 3\]'):
    winograd.conv(x, k, ((4, 0), (0, 0)), 'F3x3_k4')
  with pytest.raises(ValueError, match='4×4 kernels'):
    winograd.conv(x, k[:3, :3], ((1, 1), (1, 1)), 'F3x3_k4')


def test_choose_policy_4x4():
  assert winograd.choose(256, 512, 31, 31, size=4) == 'F3x3_k4'  # pix2pix PatchGAN's conv_3
  assert winograd.choose(256, 512, 15, 15, size=4) is None  # a tie at 128² images
  assert winograd.choose(32, 64, 7, 7, size=4) is None  # CycleGAN synthetic d16 (32 px)
  assert winograd.choose(512, 1, 30, 30, size=4) is None  # the 1-channel head
  assert winograd.choose(256, 512, 31, 31, size=5) is None


def _winograd_4x4_calls(monkeypatch, net, x, **kwargs):
  """The (kernel shape, variant) of every 4×4 conv `net` sends to winograd.conv (traced only)."""
  monkeypatch.delenv(dispatch.ENV, raising=False)
  calls, real = [], winograd.conv

  def recording(x, w, pads, variant):
    calls.append((tuple(w.shape), variant))
    return real(x, w, pads, variant)

  monkeypatch.setattr(winograd, 'conv', recording)
  jax.eval_shape(functools.partial(net.init, **kwargs), jax.random.key(0), x)
  return [call for call in calls if call[0][:2] == (4, 4)]


def test_dispatch_routes_pix2pix_conv_3_only(monkeypatch):
  """pix2pix's PatchGAN at 256²: conv_3 (256 -> 512, 31² out) runs F(3×3, 4×4) under cpu_winograd;
  the strided convs and the 1-channel head keep their paths."""
  net = PatchDiscriminatorBN(conv_impl='cpu_winograd')
  calls = _winograd_4x4_calls(monkeypatch, net, jnp.zeros((1, 256, 256, 6)), train=False)
  assert calls == [((4, 4, 256, 512), 'F3x3_k4')]


def test_dispatch_leaves_the_cyclegan_main_job_discriminator_alone(monkeypatch):
  """configs/cyclegan_synthetic.py's PatchGAN (d16, 2 layers, 32 px): no 4×4 Winograd conv."""
  config = config_lib.load_config(helpers.CYCLEGAN_SYNTHETIC)
  net = models.make_discriminator(config.model.copy_and_resolve_references())
  assert dispatch.resolve(net.conv_impl) == 'cpu_winograd'  # 'auto' on the CPU
  size = config.data.image_size
  assert _winograd_4x4_calls(monkeypatch, net, jnp.zeros((4, size, size, 3))) == []
