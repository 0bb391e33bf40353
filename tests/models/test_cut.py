"""CUT's networks and PatchNCE loss (issue #25) vs tests/fixtures/cut_ref.npz.

The fixture (make_cut_fixture.py, torch in peer-venv; checked against the reference repository's
own `models/networks.py` and `patchnce.py` when written, see docs/cut.md) holds float64 torch
results for the float32 weights in tests/fixtures/pth/cut_{G,D,F}.pth; the weights reach our
networks through `jaxstyle.ports.cut`. torch is never imported here.

Error model (u = 2^-24 ≈ 6e-8; docs/development.md "Tolerances"): ours computes in float32. A conv
or matmul of fan-in n is off by about sqrt(n)·u of its terms' magnitudes, and the error of L
layers adds up: G (ResNet-6 ngf 4) is L = 18 convs of n ≤ 4·49 = 196, 18·14·u ≈ 1.5e-5 of the
outputs' scale; instance norms over 8×8 maps divide by σ of O(0.1-1) of their inputs, which can
magnify that a few times. Bound for G's image and taps and D's scores: 1e-4 of the largest value.
F adds two matmuls (n ≤ 32) and a normalisation (well conditioned): same bound. PatchNCE on the
stored projections: dot products of n = 32 (sqrt(32)·u ≈ 3e-7 absolute on unit vectors), magnified
by 1/T ≈ 14 into the logits: 5e-6 absolute, and the cross-entropy is 1-Lipschitz in each logit:
rtol 1e-5 on losses of 3-7, and 1e-5 of the largest for its gradient. The end-to-end gradient
(loss → F → G's encoder, backward through 13 convs twice) gets 5e-4 of its largest element.
A wrong padding, blur phase or key mapping is off by O(0.1).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import FIXTURES

from jaxstyle import models, networks
from jaxstyle.models import cut
from jaxstyle.ports import cut as cut_port

REF = np.load(FIXTURES / 'cut_ref.npz')
FULL = json.loads(str(REF['full']))
TAPS = cut.NCE_LAYERS


def rel_err(ours, ref):
  ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
  assert ours.shape == ref.shape
  return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


@pytest.fixture(scope='module')
def nets():
  """The fixture's G, D, F as our modules + ported params (xla convs: the plain formulation)."""
  out = {}
  for name, load in (
    ('G', cut_port.generator_from_pth),
    ('D', cut_port.discriminator_from_pth),
    ('F', cut_port.patch_sampler_from_pth),
  ):
    params, cfg = load(FIXTURES / 'pth' / f'cut_{name}.pth')
    cfg.conv_impl = 'xla'
    net = {
      'G': models.make_generator,
      'D': cut.make_discriminator,
      'F': cut.make_patch_sampler,
    }[name](cfg)
    out[name] = (net, {'params': jax.tree.map(jnp.asarray, params)})
  return out


#### Shapes and parameter counts


def _count(tree) -> int:
  return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def test_full_size_parameter_counts_equal_the_reference():
  """ResNet-9 ngf 64, PatchGAN ndf 64 and F of 256 on the taps' real channels, as torch counts
  them in the reference nets (fixture `full`)."""
  cfg = networks.cut_model()
  g, d, f = models.make_generator(cfg), cut.make_discriminator(cfg), cut.make_patch_sampler(cfg)
  x = jnp.zeros((1, 256, 256, 3))
  pg = jax.eval_shape(g.init, jax.random.key(0), x)
  feats = jax.eval_shape(lambda p: g.apply(p, x, TAPS), pg)
  assert [t.shape for t in feats] == [
    (1, 262, 262, 3),  # 0: the reflect-padded input
    (1, 256, 256, 128),  # 4: down_0's conv, before its norm
    (1, 128, 128, 256),  # 8: down_1's conv
    (1, 64, 64, 256),  # 12: block_0
    (1, 64, 64, 256),  # 16: block_4
  ]
  pf = jax.eval_shape(lambda fs: f.init(jax.random.key(0), fs, 256, rng=jax.random.key(1)), feats)
  pd = jax.eval_shape(d.init, jax.random.key(0), x)
  assert jax.eval_shape(lambda p: d.apply(p, x), pd).shape == (1, 30, 30, 1)
  counts = FULL['param_counts']
  assert (counts['G'], counts['D'], counts['F']) == (11_378_179, 2_764_737, 560_384)
  assert (_count(pg), _count(pd), _count(pf)) == (counts['G'], counts['D'], counts['F'])


def test_generator_layer_numbering_is_the_reference_sequential():
  names = cut.generator_layers(9)
  assert len(names) == 32 and names[-1] == 'tanh'
  assert [names[i] for i in TAPS] == ['reflect_pad_3', 'down_0', 'down_1', 'block_0', 'block_4']
  # The fixture G (6 blocks) has the same modules at 0..16 as the published ResNet-9.
  layout = FULL['layouts']['G']
  assert 'model.4.weight' in layout and 'model.8.weight' in layout and 'model.7.filt' in layout


#### The blur layers against the reference's padded depthwise convs (NumPy)


def _np_depthwise(xp, filt, stride):
  k = filt.shape[0]
  h = (xp.shape[1] - k) // stride + 1
  w = (xp.shape[2] - k) // stride + 1
  out = np.zeros((xp.shape[0], h, w, xp.shape[3]))
  for a in range(k):
    for b in range(k):
      out += filt[a, b] * xp[:, a : a + stride * h : stride, b : b + stride * w : stride]
  return out


@pytest.mark.parametrize('shape', [(2, 8, 8, 3), (1, 7, 10, 2), (1, 5, 3, 1)])
def test_blur_layers_match_the_reference_formulas(shape):
  x = np.random.default_rng(0).standard_normal(shape)
  down = _np_depthwise(
    np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), 'reflect'), cut_port.BLUR_DOWN, 2
  )
  np.testing.assert_allclose(cut.blur_downsample(jnp.asarray(x, jnp.float32)), down, atol=1e-6)
  # Upsample: replicate pad 1, transposed conv stride 2 padding 2, crop one row/col at each end.
  # As a correlation: dilate by 2, pad k-1-2 = 1, the (symmetric) filter, valid.
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), 'edge')
  dil = np.zeros((xp.shape[0], 2 * xp.shape[1] - 1, 2 * xp.shape[2] - 1, xp.shape[3]))
  dil[:, ::2, ::2] = xp
  full = _np_depthwise(np.pad(dil, ((0, 0), (1, 1), (1, 1), (0, 0))), cut_port.BLUR_UP, 1)
  np.testing.assert_allclose(
    cut.blur_upsample(jnp.asarray(x, jnp.float32)), full[:, 1:-1, 1:-1], atol=1e-6
  )


#### Parity with the torch fixture


def test_generator_output_and_taps(nets):
  g, p = nets['G']
  assert rel_err(jax.jit(g.apply)(p, REF['g/x2']), REF['g/y2']) < 1e-4
  feats = jax.jit(g.apply, static_argnums=2)(p, REF['g/x'], TAPS)
  image, feats_full = jax.jit(lambda p, x: g.apply(p, x, TAPS, with_output=True))(p, REF['g/x'])
  for layer, f, f_full in zip(TAPS, feats, feats_full, strict=True):
    assert rel_err(f, REF[f'g/tap{layer}']) < 1e-4, layer
    np.testing.assert_array_equal(f, f_full)  # the early stop computes the same thing
  assert rel_err(image, REF['g/y']) < 1e-4


def test_discriminator(nets):
  d, p = nets['D']
  for j in range(2):
    assert rel_err(jax.jit(d.apply)(p, REF[f'd/x{j}']), REF[f'd/y{j}']) < 1e-4


def test_patch_sample_f_at_given_ids_and_all_positions(nets):
  f, p = nets['F']
  taps = [jnp.asarray(REF[f'g/tap{layer}']) for layer in TAPS]
  ids = [REF[f'f/ids{i}'] for i in range(5)]
  proj, ids_out = f.apply(p, taps, 16, ids)
  for i in range(5):
    assert proj[i].shape == (2 * 16, 32)
    assert rel_err(proj[i], REF[f'f/k{i}']) < 1e-4, i
    np.testing.assert_array_equal(ids_out[i], ids[i])
  dense, _ = f.apply(p, taps, 0)
  for i in (3, 4):  # the reference normalises over positions here, not channels
    assert rel_err(dense[i], REF[f'f/all{i}']) < 1e-4, i


def test_patch_nce_loss_and_gradient():
  q = [jnp.asarray(REF[f'f/q{i}']) for i in range(5)]
  k = [jnp.asarray(REF[f'f/k{i}']) for i in range(5)]
  per_layer = [jnp.mean(cut.patch_nce_loss(a, b, 2)) for a, b in zip(q, k)]
  np.testing.assert_allclose(per_layer, REF['nce/loss'], rtol=1e-5)
  all_neg = [
    jnp.mean(cut.patch_nce_loss(a, b, 2, all_negatives_from_minibatch=True)) for a, b in zip(q, k)
  ]
  np.testing.assert_allclose(all_neg, REF['nce/loss_all_neg'], rtol=1e-5)
  total, (grads_q, grads_k) = jax.value_and_grad(lambda a, b: cut.patch_nce(a, b, 2), (0, 1))(q, k)
  np.testing.assert_allclose(total, REF['nce/total'], rtol=1e-5)
  for i in range(5):
    assert rel_err(grads_q[i], REF[f'nce/grad_q{i}']) < 1e-5, i
    assert not np.any(grads_k[i])  # k is a stop-gradient target, as the reference's detach


def test_nce_gradient_through_f_and_the_encoder(nets):
  """d NCE / d fake image: the fake's taps (G encoder) → F at the input's ids → PatchNCE."""
  (g, pg), (f, pf) = nets['G'], nets['F']
  ids = [REF[f'f/ids{i}'] for i in range(5)]
  k, _ = f.apply(pf, [jnp.asarray(REF[f'g/tap{layer}']) for layer in TAPS], 16, ids)

  def loss(fake):
    q, _ = f.apply(pf, g.apply(pg, fake, TAPS), 16, ids)
    return cut.patch_nce(q, k, 2)

  value, grad = jax.jit(jax.value_and_grad(loss))(jnp.asarray(REF['g/y']))
  np.testing.assert_allclose(value, REF['nce/total'], rtol=1e-4)
  assert rel_err(grad, REF['nce/grad_y']) < 5e-4


#### Patch ids and the interface


def test_patch_ids_come_from_the_key():
  f = cut.PatchSampleF(features=8)
  feats = [jnp.ones((2, 6, 5, 3)), jnp.ones((2, 3, 3, 4))]
  params = f.init(jax.random.key(0), feats, 4, rng=jax.random.key(1))
  _, a = f.apply(params, feats, 4, rng=jax.random.key(7))
  _, b = f.apply(params, feats, 4, rng=jax.random.key(7))
  _, c = f.apply(params, feats, 4, rng=jax.random.key(8))
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert any(not np.array_equal(x, z) for x, z in zip(a, c))
  assert [len(set(np.asarray(x).tolist())) for x in a] == [4, 4]  # distinct positions
  assert all(0 <= int(np.min(x)) and int(np.max(x)) < n for x, n in zip(a, (30, 9)))
  _, many = f.apply(params, feats, 50, rng=jax.random.key(7))  # more than 3×3: every position
  assert sorted(np.asarray(many[1]).tolist()) == list(range(9))
  with pytest.raises(ValueError, match='patch_ids or an rng'):
    f.apply(params, feats, 4)


def test_generator_rejects_bad_layer_lists(nets):
  g, p = nets['G']
  for bad in ((4, 0), (0, 0), (40,)):
    with pytest.raises(ValueError, match='strictly increasing'):
      g.apply(p, REF['g/x2'], bad)


@pytest.mark.parametrize('impl', ['cpu_fast', 'cpu_winograd'])
def test_generator_and_discriminator_under_the_cpu_conv_impls(nets, impl):
  """The trainer's CPU default ('auto' = cpu_winograd) and cpu_fast give the fixture's numbers:
  the same sums in other orders (1e-4 above), plus Winograd F(4×4)'s ~2e-5 relative per conv it
  takes over (≤ 18 convs: 4e-4), so 5e-4 of the largest value."""
  (g, pg), (d, pd) = nets['G'], nets['D']
  g, d = g.clone(conv_impl=impl), d.clone(conv_impl=impl)
  image, feats = jax.jit(lambda p, x: g.apply(p, x, TAPS, with_output=True))(pg, REF['g/x'])
  assert rel_err(image, REF['g/y']) < 5e-4
  for layer, f in zip(TAPS, feats, strict=True):
    assert rel_err(f, REF[f'g/tap{layer}']) < 5e-4, layer
  assert rel_err(jax.jit(d.apply)(pd, REF['d/x1']), REF['d/y1']) < 5e-4


def test_generator_input_gradient(nets):
  """d<G(x), r>/dx: the backward of every layer, blur upsampling included. 36 convs (forward and
  backward) of fan-in ≤ 196: 36·14·u ≈ 3e-5, instance norms' magnification: 2e-4 of the largest."""
  g, p = nets['G']
  grad = jax.jit(jax.grad(lambda x: jnp.sum(g.apply(p, x) * REF['g/r'])))(jnp.asarray(REF['g/x']))
  assert rel_err(grad, REF['g/grad_x']) < 2e-4


def test_l2_normalize_zero_rows_have_zero_gradient():
  """A zero row (a small MLP's dead ReLU layer leaves its zero bias) stays zero with a finite
  gradient, the numerator's 1/1e-7 (the norm's slope taken as 0), instead of NaN; other rows get
  the reference formula's value and gradient."""
  x = jnp.array([[0.0, 0.0, 0.0], [3.0, -4.0, 1.0], [1e-3, 2e-3, 0.0]], jnp.float32)
  w = jnp.array([[0.5, -1.0, 2.0]] * 3, jnp.float32)

  def plain(x):
    return x / (jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True)) + 1e-7)

  y, grad = jax.value_and_grad(lambda x: jnp.sum(cut.l2_normalize(x) * w))(x)
  y_ref, grad_ref = jax.value_and_grad(lambda x: jnp.sum(plain(x[1:]) * w[1:]))(x)
  assert np.all(np.isfinite(grad))
  np.testing.assert_allclose(grad[0], w[0] / np.float32(1e-7), rtol=1e-6)
  assert np.isnan(jax.grad(lambda x: jnp.sum(plain(x) * w))(x)[0]).all()  # what it replaces
  np.testing.assert_array_equal(cut.l2_normalize(x)[1:], plain(x[1:]))
  # the same float32 ops up to the order XLA fuses them in: a few ulp
  np.testing.assert_allclose(grad[1:], grad_ref[1:], rtol=4 * 2**-24 * 8, atol=0)
  assert y == y_ref
