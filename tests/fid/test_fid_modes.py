"""Issue #28 end to end: `jaxstyle fid --mode clean --isc --prc` on small folders with seeded
random Inception weights (1008-way fc included), against features computed here without the
extractor: each image resized by `resize.clean_resize` (tested against PIL in
test_fid_quality.py), (x - 128) / 128, one plain `FIDInceptionV3(logits=True)` apply."""

import json

import jax
import numpy as np
import pytest
from PIL import Image
from random_weights import random_state_dict

from jaxstyle import cli
from jaxstyle.errors import UserError
from jaxstyle.fid import features, metrics, quality, resize
from jaxstyle.fid import weights as fid_weights
from jaxstyle.models import inception

pytestmark = pytest.mark.slow  # compiles the Inception trunk twice (~20 s on 2 cores)


@pytest.fixture(scope='module')
def params():
  layout = [*inception.torch_shapes().items(), *inception.FC_SHAPES.items()]
  return inception.params_from_state_dict(random_state_dict(layout, 11))


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
  """Two folders of 12 images of two sizes (clean mode resizes on the host: one program)."""
  d = tmp_path_factory.mktemp('fid_modes')
  rng = np.random.default_rng(5)
  for name in ('fake', 'real'):
    (d / name).mkdir()
    for i in range(12):
      shape = (40, 32, 3) if i % 2 else (24, 30, 3)
      image = rng.integers(0, 256, shape, np.uint8)
      if name == 'fake':
        image = (image // 2 + 60).astype(np.uint8)
      Image.fromarray(image).save(d / name / f'{i:02d}.png')
  return d


@pytest.fixture(scope='module')
def reference(params, folders):
  apply = jax.jit(inception.FIDInceptionV3(resize_input=False, logits=True).apply)
  out = {}
  for name in ('fake', 'real'):
    files = sorted((folders / name).iterdir())
    x = np.stack([resize.clean_resize(np.asarray(Image.open(f).convert('RGB'))) for f in files])
    feats, logits = apply(params, (x - 128.0) / 128.0)
    out[name] = np.asarray(feats), np.asarray(logits)
  return out


def test_clean_mode_isc_prc_from_one_pass(
  params, folders, reference, tmp_path, capsys, monkeypatch
):
  monkeypatch.setattr(fid_weights, 'load_params', lambda path=None, **kw: params)
  seen = []
  monkeypatch.setattr(metrics, 'frechet_distance', lambda *s: seen.append(s) or 1.5)
  calls = []
  real_apply = features.FeatureExtractor._run
  monkeypatch.setattr(
    features.FeatureExtractor,
    '_run',
    lambda self, c, b: calls.append(len(c)) or real_apply(self, c, b),
  )
  out_json = tmp_path / 's.json'
  argv = ['fid', str(folders / 'fake'), str(folders / 'real'), '--mode', 'clean', '--isc']
  argv += ['--isc-splits', '3', '--prc', '--batch-size', '16', '--json', str(out_json)]
  assert cli.main(argv) == 0
  out, err = capsys.readouterr()
  assert calls == [12, 12]  # one forward per folder feeds FID, KID, IS and precision/recall
  scores = json.loads(out_json.read_text())
  assert 'FID: 1.5000 (n = 12 vs 12, clean mode)' in out and 'KID: ' in out
  assert 'IS: ' in out and 'precision: ' in out and 'n = 12 < 2048' in err
  ((mu_f, _, mu_r, _),) = seen
  feats_f, logits_f = reference['fake']
  # Error model: the same program but another batch layout; pool3 is 47 convs deep (fan-in ≤
  # 4032), ≤ 47·sqrt(4032)·u ≈ 1.8e-4 of the features' scale; a wrong resize or normalisation
  # is off by O(1).
  scale = np.abs(feats_f).max()
  np.testing.assert_allclose(mu_f, feats_f.mean(0), rtol=0, atol=2e-4 * scale)
  np.testing.assert_allclose(mu_r, reference['real'][0].mean(0), rtol=0, atol=2e-4 * scale)
  want_is = quality.inception_score(logits_f, 3)
  # IS is smooth in the logits (fc of 2048 terms on the features above): 1e-3 relative.
  assert scores['is_mean'] == pytest.approx(want_is['is_mean'], rel=1e-3)
  want_prc = quality.precision_recall(feats_f, reference['real'][0], 3)
  # Counts of 12: a sample within 2e-4 of a k-NN radius could flip one way; allow that one.
  assert abs(scores['precision'] - want_prc['precision']) <= 1 / 12 + 1e-12
  assert abs(scores['recall'] - want_prc['recall']) <= 1 / 12 + 1e-12
  assert scores['mode'] == 'clean' and scores['n'] == [12, 12]


def test_logits_need_the_fc(folders):
  no_fc = inception.params_from_state_dict(
    random_state_dict(list(inception.torch_shapes().items()), 3)
  )
  with pytest.raises(UserError, match='classifier'):
    features.FeatureExtractor(no_fc, logits=True)


def test_clean_mode_on_arrays_as_evaluate_calls_it(params, folders, reference):
  """`FeatureExtractor.__call__` (what `jaxstyle evaluate` uses on translated uint8 arrays) does
  clean-fid's resize on the host too: same features as the files path's reference; float [0, 1]
  input is scaled by 255 first."""
  files = sorted((folders / 'fake').iterdir())[1::2]  # the 40x32 images
  images = np.stack([np.asarray(Image.open(f).convert('RGB')) for f in files])
  ex = features.FeatureExtractor(params, batch_size=4, mode='clean', logits=True)
  feats, logits = features.split_outputs(ex(images))
  want_f, want_l = reference['fake'][0][1::2], reference['fake'][1][1::2]
  # Error model as above (another batch layout of the same program): 2e-4 of the scale.
  np.testing.assert_allclose(feats, want_f, rtol=0, atol=2e-4 * np.abs(want_f).max())
  np.testing.assert_allclose(logits, want_l, rtol=0, atol=2e-4 * np.abs(want_l).max())
  as_float = features.split_outputs(ex(images.astype(np.float32) / 255.0))[0]
  # x/255*255 in float32 is within an ulp of x: the same features to rounding.
  np.testing.assert_allclose(as_float, feats, rtol=0, atol=2e-4 * np.abs(want_f).max())
