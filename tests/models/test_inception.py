"""FID InceptionV3 parity with a plain-torch twin of pytorch-fid's net (random weights, float64 ref).

The fixture (tests/fixtures/make_inception_fixture.py) stores the torch key->shape layout, a seed
and reference pool3 features; the ~22M weights are regenerated here by the same NumPy code.
"Relative difference" below is max|ours - ref| / max|ref|, per image.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import FIXTURES
from random_weights import random_images, random_state_dict

from jaxstyle.models import inception

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def ref():
  data = np.load(FIXTURES / 'inception_fid_ref.npz')
  meta = json.loads(str(data['meta']))
  layout = [(k, tuple(s)) for k, s in meta['layout']]
  feats = [data[f'feat{j}'] for j in range(len(meta['images']))]
  return meta, random_state_dict(layout, meta['seed']), feats


@pytest.fixture(scope='module')
def features(ref):
  """Our pool3 features for every fixture image: resize per size, one compiled trunk for all."""
  meta, sd, _ = ref
  params = inception.params_from_state_dict(sd)
  batch = [
    jax.jit(inception.preprocess)(jnp.asarray(random_images(tuple(shape), seed)))
    for shape, seed in meta['images']
  ]
  trunk = jax.jit(inception.FIDInceptionV3(resize_input=False).apply)
  out = np.asarray(trunk(params, jnp.concatenate(batch)))
  sizes = np.cumsum([0] + [b.shape[0] for b in batch])
  return [out[a:b] for a, b in zip(sizes[:-1], sizes[1:])], params


def test_pool3_matches_torch(ref, features):
  meta, _, want = ref
  got, _ = features
  for (shape, _), g, w in zip(meta['images'], got, want):
    assert g.shape == w.shape == (shape[0], inception.FEATURE_DIM)
    rel = np.abs(g - w).max() / np.abs(w).max()
    print(f'{shape}: max relative diff {rel:.2e}')
    # Error model: float32 vs the float64 reference: pool3 is 47 convs deep (fan-in ≤ 3·3·448),
    # ≤ 47·sqrt(4032)·u ≈ 1.8e-4 of the features' scale; a wrong layer is off by O(1).
    assert rel <= 2e-4, f'image {shape}: max relative diff {rel:.2e}'


def test_param_count_matches_torch(ref, features):
  meta, _, _ = ref
  params = dict(features[1]['params'])
  fc = params.pop('fc')  # the 1008-way classifier (Inception Score), beyond pool3
  counts = inception.count_params({'params': params})
  assert counts == {'parameters': meta['torch_parameters'], 'buffers': meta['torch_buffers']}
  assert inception.count_params(fc)['parameters'] == 2048 * 1008 + 1008


def test_full_module_takes_any_size(features):
  """The default module resizes inside (traced only: the trunk's numerics are checked above)."""
  x = jax.ShapeDtypeStruct((2, 64, 80, 3), jnp.float32)
  out = jax.eval_shape(inception.FIDInceptionV3().apply, features[1], x)
  assert out.shape == (2, inception.FEATURE_DIM) and out.dtype == jnp.float32


def test_resize_matches_torch_bilinear_rule():
  """Half-pixel, clamped, no antialias: 4->2 picks pixel pairs' means, not a wider low-pass."""
  x = jnp.arange(4.0).reshape(1, 4, 1, 1)
  np.testing.assert_allclose(
    np.asarray(inception.resize_bilinear(x, (2, 1)))[0, :, 0, 0], [0.5, 2.5]
  )
  # 2 -> 4: src = (i + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (upper clamped).
  y = jnp.array([0.0, 4.0]).reshape(1, 2, 1, 1)
  np.testing.assert_allclose(
    np.asarray(inception.resize_bilinear(y, (4, 1)))[0, :, 0, 0], [0.0, 1.0, 3.0, 4.0]
  )


def test_state_dict_errors_name_the_key(ref):
  _, sd, _ = ref
  bad = dict(sd)
  bad['Mixed_6b.branch7x7_2.conv.weight'] = np.zeros((128, 128, 7, 1), np.float32)
  with pytest.raises(inception.InceptionWeightError, match=r'Mixed_6b\.branch7x7_2\.conv\.weight'):
    inception.params_from_state_dict(bad)
  missing = {k: v for k, v in sd.items() if k != 'Mixed_7c.branch_pool.bn.running_var'}
  with pytest.raises(inception.InceptionWeightError, match=r"missing key 'Mixed_7c\.branch_pool"):
    inception.params_from_state_dict(missing)
  with pytest.raises(inception.InceptionWeightError, match=r"unknown key 'AuxLogits\.fc\.weight'"):
    inception.params_from_state_dict({**sd, 'AuxLogits.fc.weight': np.zeros((1000, 768))})
  # BN step counters are part of the .pth but not of the network: accepted and skipped. The fc
  # (the Inception Score's classifier) is kept when present, and must then be whole and 1008-way.
  extra = {**sd, 'Conv2d_1a_3x3.bn.num_batches_tracked': np.zeros(())}
  assert inception.has_logits(inception.params_from_state_dict(extra))
  pool3_only = {k: v for k, v in extra.items() if not k.startswith('fc.')}
  assert not inception.has_logits(inception.params_from_state_dict(pool3_only))
  with pytest.raises(inception.InceptionWeightError, match=r"missing key 'fc\.bias'"):
    inception.params_from_state_dict({**pool3_only, 'fc.weight': sd['fc.weight']})
  with pytest.raises(inception.InceptionWeightError, match=r"'fc\.weight' has shape"):
    inception.params_from_state_dict({**sd, 'fc.weight': np.zeros((1000, 2048), np.float32)})
