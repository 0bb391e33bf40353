"""AdaIN network pieces (issue #27): the AdaIN formula vs NumPy, pinned names and counts, encoders.

The NumPy references run in float64 on the same float32 inputs; ours computes in float32, so an
element differs by a few float32 roundings of the values involved (|x| ~ 1-10 here):
tolerances are 1e-5 relative to the largest |reference|.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.models import adain as A
from jaxstyle.models import vgg


def np_mean_std(f, eps=1e-5):
  """The reference's calc_mean_std in float64, NHWC: unbiased variance + eps, then sqrt."""
  f = f.astype(np.float64).reshape(f.shape[0], -1, f.shape[-1])
  return f.mean(axis=1)[:, None, None], np.sqrt(f.var(axis=1, ddof=1) + eps)[:, None, None]


def rel_err(ours, ref):
  return float(np.max(np.abs(np.asarray(ours, np.float64) - ref)) / np.max(np.abs(ref)))


def test_adain_matches_numpy():
  rng = np.random.default_rng(0)
  content = rng.normal(2.0, 3.0, (2, 5, 7, 6)).astype(np.float32)
  style = rng.gamma(2.0, 1.5, (2, 3, 4, 6)).astype(np.float32)  # other H, W: stats only
  cm, cs = np_mean_std(content)
  sm, ss = np_mean_std(style)
  ref = (content - cm) / cs * ss + sm
  assert rel_err(A.adain(content, style), ref) < 1e-5
  # The output has the style's mean and (eps-free) std, per image and channel.
  out = np.asarray(A.adain(content, style), np.float64)
  om, _ = np_mean_std(out, eps=0.0)
  np.testing.assert_allclose(om, sm, rtol=1e-5, atol=1e-5)
  # A batch-1 style broadcasts over the content batch.
  one = np.asarray(A.adain(content, style[:1]))
  np.testing.assert_allclose(one[1], np.asarray(A.adain(content[1:], style[:1]))[0], rtol=1e-6)


def test_masked_adain_uses_region_statistics():
  """With a content mask, the statistics are those of the masked positions (the Lua reference)."""
  rng = np.random.default_rng(1)
  content = rng.normal(0.0, 2.0, (1, 6, 6, 4)).astype(np.float32)
  style = rng.normal(1.0, 0.5, (1, 8, 8, 4)).astype(np.float32)
  mask = np.zeros((1, 6, 6, 1), np.float32)
  mask[:, 1:4, 2:6] = 1
  region = content[0][mask[0, ..., 0] > 0][None, None]  # (1, 1, n, C)
  cm, cs = np_mean_std(region)
  sm, ss = np_mean_std(style)
  ref = ((content - cm) / cs * ss + sm)[mask[..., 0] > 0]
  ours = np.asarray(A.adain(content, style, content_mask=mask))[mask[..., 0] > 0]
  assert rel_err(ours, ref) < 1e-5


def test_decoder_names_count_and_shape():
  shapes = jax.eval_shape(A.init_decoder, jax.random.key(0))
  names = [name for name, *_ in A.DECODER_LAYERS]
  assert list(shapes) == names == [f'conv_{i}' for i in range(9)]
  count = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes))
  # By hand from net.py: 512->256, 3x 256->256, 256->128, 128->128, 128->64, 64->64, 64->3.
  by_hand = sum(
    9 * i * o + o
    for i, o in [(512, 256), (256, 256), (256, 256), (256, 256), (256, 128), (128, 128),
                 (128, 64), (64, 64), (64, 3)]
  )  # fmt: skip
  assert count == by_hand == A.NUM_DECODER_PARAMS == 3_505_219
  for name, _, cin, cout, *_ in A.DECODER_LAYERS:
    assert shapes[name]['kernel'].shape == (3, 3, cin, cout)
    assert shapes[name]['bias'].shape == (cout,)
  out = jax.eval_shape(
    lambda p, x: A.Decoder().apply({'params': p}, x), shapes, jnp.zeros((1, 3, 5, 512))
  )
  assert out.shape == (1, 24, 40, 3)


def test_input_conv_folds_the_preprocessing():
  """The 1x1 conv equals RGB [0, 1] -> order(255 x) * scale - mean) / std for both orders."""
  x = np.random.default_rng(2).uniform(0, 1, (1, 2, 3, 3)).astype(np.float32)
  cases = [('BGR', 1.0, A.CAFFE_BGR_MEAN, (1.0, 1.0, 1.0)),
           ('RGB', 1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]  # fmt: skip
  for order, scale, mean, std in cases:
    p = A.input_conv_params(order, scale, mean, std)
    ours = np.einsum('nhwi,io->nhwo', x.astype(np.float64), p['kernel'][0, 0]) + p['bias']
    xx = x[..., ::-1] if order == 'BGR' else x
    ref = (xx.astype(np.float64) * 255 * scale - np.asarray(mean)) / np.asarray(std)
    assert rel_err(ours, ref) < 1e-6


def test_encoders_shapes_and_imagenet_is_vgg19():
  x = jax.random.uniform(jax.random.key(3), (1, 19, 17, 3))
  normalised = A.encode(A.random_encoder(0, 'normalised'), x, 'normalised')
  # ceil-mode pools (torch MaxPool2d(ceil_mode=True)): 19 -> 10 -> 5 -> 3.
  assert {k: v.shape[1:3] for k, v in normalised.items()} == {
    'relu1_1': (19, 17), 'relu2_1': (10, 9), 'relu3_1': (5, 5), 'relu4_1': (3, 3)
  }  # fmt: skip
  params = A.random_encoder(0, 'imagenet')
  ours = A.encode(params, x, 'imagenet', outputs=('relu3_1',))['relu3_1']
  pre = A._conv(x, params['input_conv']['kernel'], params['input_conv']['bias'])
  trunk = {k: v for k, v in params.items() if k != 'input_conv'}
  ref = vgg.VGG19(outputs=('block3_conv1',)).apply({'params': trunk}, pre)['block3_conv1']
  np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


def test_maxpool_ceil_matches_numpy():
  x = np.random.default_rng(4).normal(size=(1, 5, 3, 2)).astype(np.float32)
  ref = np.full((1, 3, 2, 2), -np.inf, np.float32)
  for i in range(5):
    for j in range(3):
      ref[0, i // 2, j // 2] = np.maximum(ref[0, i // 2, j // 2], x[0, i, j])
  np.testing.assert_array_equal(np.asarray(A._maxpool_ceil(jnp.asarray(x))), ref)


def test_state_dict_errors_name_the_key():
  sd = {k: np.zeros(s, np.float32) for k, s in A.decoder_torch_shapes().items()}
  params = A.params_from_state_dict(sd, 'decoder')
  assert params['conv_8']['kernel'].shape == (3, 3, 64, 3)
  bad = dict(sd, **{'28.weight': np.zeros((3, 64, 1, 1), np.float32)})
  with pytest.raises(A.AdainWeightError, match=r"'28.weight' has shape"):
    A.params_from_state_dict(bad, 'decoder')
  with pytest.raises(A.AdainWeightError, match='unknown key'):
    A.params_from_state_dict(sd, 'vgg')
