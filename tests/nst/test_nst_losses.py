"""NST losses: hand-computed values, large-size normalisers, and the book / Gatys objectives against an
independent NumPy re-implementation of the Keras example (docs/design/nst.md, including its 3-image batch)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from np_vgg_reference import np_vgg, random_vgg_params

from jaxstyle.models import vgg
from jaxstyle.nst import losses as L

STYLE = ('block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1', 'block5_conv1')


def np_gram(f):
  """Keras example: batch_flatten(permute(x, (2, 0, 1))) @ its transpose, for one image (h, w, C)."""
  feats = np.transpose(f, (2, 0, 1)).reshape(f.shape[-1], -1)
  return feats @ feats.T


def ke_objective(params, content, style, comb, content_weight, style_weight, tv_weight):
  """The Keras example's loss, written from the spec: one forward over [content, style, combination]."""
  h, w = comb.shape[1:3]
  feats = np_vgg(np.concatenate([content, style, comb]), params)
  f = feats['block5_conv2']
  loss_c = content_weight * np.sum((f[2] - f[0]) ** 2)
  loss_s = 0.0
  for name in STYLE:
    s, c = np_gram(feats[name][1]), np_gram(feats[name][2])
    loss_s += style_weight / len(STYLE) * np.sum((s - c) ** 2) / (4.0 * 3**2 * (h * w) ** 2)
  x = comb.astype(np.float64)
  a = (x[:, : h - 1, : w - 1, :] - x[:, 1:, : w - 1, :]) ** 2
  b = (x[:, : h - 1, : w - 1, :] - x[:, : h - 1, 1:, :]) ** 2
  loss_tv = tv_weight * np.sum((a + b) ** 1.25)
  return loss_c + loss_s + loss_tv, {
    'loss_content': loss_c,
    'loss_style': loss_s,
    'loss_tv': loss_tv,
  }


@pytest.fixture(scope='module')
def params():
  return random_vgg_params(vgg.expected_shapes(), 0)


@pytest.fixture(scope='module')
def images():
  rng = np.random.default_rng(1)
  img = lambda h, w: rng.uniform(-120, 130, (1, h, w, 3)).astype(np.float32)
  return {'content': img(32, 48), 'style': img(32, 48), 'comb': img(32, 48), 'style2': img(32, 32)}


def rel(a, b):
  return abs(float(a) - float(b)) / abs(float(b))


################################################################################
# Hand-computed values.


def test_gram_hand():
  f = np.array(
    [[[[1, 2], [3, 4]], [[0, 1], [-1, 2]]]], np.float32
  )  # pixels (1,2) (3,4) (0,1) (-1,2)
  want = np.array([[11, 12], [12, 25]], np.float32)
  np.testing.assert_array_equal(L.gram(f), want[None])
  np.testing.assert_array_equal(L.gram(f[0]), want)


def test_tv_hand():
  x = np.array([[1, 2, 4], [0, 3, 3]], np.float32)
  x = np.stack([x, 2 * x], -1)[None]  # (1, 2, 3, 2): per channel a+b = (2, 5) and (8, 20)
  want = 2**1.25 + 5**1.25 + 8**1.25 + 20**1.25
  assert rel(L.tv_loss(x), want) < 1e-6
  assert rel(L.tv_loss(x, exponent=2.0), 4 + 25 + 64 + 400) < 1e-6
  g = jax.grad(L.tv_loss)(jnp.ones((1, 4, 4, 3)))  # (a+b)^1.25 at 0 must not give NaN gradients
  assert np.all(np.isfinite(g)) and float(jnp.abs(g).max()) == 0.0


def test_content_and_style_hand():
  f = np.array([[[[3.0], [4.0]]]], np.float32)  # (1, 1, 2, 1): G = 9 + 16 = 25
  t = np.array([[[[1.0], [6.0]]]], np.float32)
  assert float(L.content_loss(f, t)) == 4 + 4
  assert float(L.content_loss_gatys(f, t)) == 4
  target = np.full((1, 1, 1), 20.0, np.float32)
  assert rel(L.style_loss_book(f, target, 2, 3), 25 / (4 * 9 * 36)) < 1e-6  # input H*W = 6
  assert rel(L.style_loss_gatys(f, target), 25 / (4 * 1 * 2**2)) < 1e-6  # N=1, M=2


def test_large_size_normalisers_do_not_overflow():
  # Book: (H*W)^2 = 2^48 for a 4096^2 input overflows int32 (and any int32 intermediate).
  f = jnp.ones((1, 1, 1, 3))
  got = jax.jit(L.style_loss_book, static_argnums=(2, 3))(f, jnp.zeros((1, 3, 3)), 4096, 4096)
  assert np.isfinite(got) and rel(got, 9 / (36 * 4096.0**4)) < 1e-6
  # Gatys: M = 2^20 so M^2 = 2^40; all-ones features give G = M, E = N^2 M^2 / (4 N^2 M^2) = 1/4.
  f = jnp.ones((1, 1024, 1024, 2))
  got = jax.jit(L.style_loss_gatys)(f, jnp.zeros((1, 2, 2)))
  assert float(got) == 0.25


################################################################################
# Objectives.


@pytest.fixture(scope='module')
def book(params, images):
  with jax.default_matmul_precision('highest'):
    targets, loss_fn = L.make_objective(
      vgg.VGG19(),
      params,
      images['content'],
      [images['style']],
      None,
      content_layers=('relu5_2',),
      style_layers=('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'),
      layer_weights=None,
      content_weight=1.0,
      style_weight=100.0,
      tv_weight=20.0,
      normalisation='book',
    )
  return targets, loss_fn


def test_book_objective_matches_keras_example(params, images, book):
  targets, loss_fn = book
  with jax.default_matmul_precision('highest'):
    total, parts = jax.jit(loss_fn)(images['comb'], targets, params)
  want_total, want = ke_objective(
    params, images['content'], images['style'], images['comb'], 1.0, 100.0, 20.0
  )
  diffs = {k: rel(parts[k], want[k]) for k in want}
  diffs['total'] = rel(total, want_total)
  # Error model: float32 vs the float64 reference: relu5_2 is 14 convs deep (fan-in ≤ 3·3·512),
  # ≤ 14·sqrt(4608)·u ≈ 6e-5 of the features, so of the losses; a wrong layer or weight is O(1).
  assert max(diffs.values()) < 1e-4, diffs
  assert all(float(v) > 0 for v in parts.values())


def test_loss_fn_takes_params_as_argument(params, images, book):
  targets, loss_fn = book
  jaxpr = jax.make_jaxpr(loss_fn)(images['comb'], targets, params)
  assert max([np.size(c) for c in jaxpr.consts] + [0]) < 1000  # no VGG weights baked in
  other = jax.tree.map(lambda p: 0.9 * p, params)
  value_and_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
  with jax.default_matmul_precision('highest'):
    (v0, parts0), g = value_and_grad(images['comb'], targets, params)
    (v1, _), _ = value_and_grad(images['comb'], targets, other)
    (_, parts), _ = value_and_grad(images['content'], targets, params)
  assert float(v0) != float(v1)
  assert g.shape == images['comb'].shape and np.all(np.isfinite(g)) and float(jnp.abs(g).max()) > 0
  # At the content image the content term vanishes (targets were computed once, up front).
  assert float(parts['loss_content']) < 1e-9 * float(parts0['loss_content'])


@pytest.mark.slow  # compiles the full Gatys objective three times
def test_gatys_objective_blend_and_layer_weights(params, images):
  layer_w = {n: 1e3 / vgg.CHANNELS[n] ** 2 for n in STYLE}
  blend = (0.3, 0.9)
  with jax.default_matmul_precision('highest'):
    targets, loss_fn = L.make_objective(
      vgg.VGG19(pool='avg'),
      params,
      images['content'][0],
      [images['style'], images['style2']],
      blend,
      content_layers=('conv4_2',),
      style_layers=STYLE,
      layer_weights=layer_w,
      content_weight=1.0,
      style_weight=2.0,
      tv_weight=0.0,
      normalisation='gatys',
    )
    total, parts = jax.jit(loss_fn)(images['comb'], targets, params)

  f_c = np_vgg(images['content'], params, 'avg')
  f_x = np_vgg(images['comb'], params, 'avg')
  f_s = [np_vgg(images[k], params, 'avg') for k in ('style', 'style2')]
  want_c = 0.5 * np.sum((f_x['block4_conv2'] - f_c['block4_conv2']) ** 2)
  want_s = 0.0
  for n in STYLE:
    a = (0.3 * np_gram(f_s[0][n][0]) + 0.9 * np_gram(f_s[1][n][0])) / 1.2
    # Error model: float32 vs NumPy's float64 through ≤ 13 convs: ≤ 13·sqrt(4608)·u ≈ 5e-5.
    assert np.max(np.abs(targets['style'][n][0] - a)) / np.max(np.abs(a)) < 1e-4, n
    g = np_gram(f_x[n][0])
    m = f_x[n].shape[1] * f_x[n].shape[2]
    want_s += 2.0 * layer_w[n] * np.sum((g - a) ** 2) / (4.0 * vgg.CHANNELS[n] ** 2 * m**2)
  assert rel(parts['loss_content'], want_c) < 1e-4  # as above
  assert rel(parts['loss_style'], want_s) < 1e-4
  assert float(parts['loss_tv']) == 0.0 and rel(total, want_c + want_s) < 1e-4


def test_bad_arguments(params, images):
  for kwargs, match in (
    ({'normalisation': 'mean'}, 'normalisation'),
    ({'layer_weights': (1.0, 2.0)}, 'layer_weights'),
    ({'style_layers': ('relu9_1',)}, 'unknown VGG19 layer'),
  ):
    with pytest.raises(ValueError, match=match):
      L.make_objective(vgg.VGG19(), params, images['content'], images['style'], **kwargs)
  with pytest.raises(ValueError, match='style_blend'):
    L.make_objective(vgg.VGG19(), params, images['content'], images['style'], (1.0, 1.0))
