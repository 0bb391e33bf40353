"""`jaxstyle fid` end to end on small folders, and the sharded feature extractor (issue #14).

The Inception weights are seeded random (tests/fixtures/random_weights.py) and handed to the
command through `jaxstyle.fid.weights.load_params`, so nothing is downloaded; the numbers are
checked against features computed here without the extractor (plain `FIDInceptionV3.apply` on
images decoded with PIL) and FID/KID from `jaxstyle.fid.metrics`.
"""

import json

import jax
import numpy as np
import pytest
from PIL import Image
from random_weights import random_state_dict

from jaxstyle import cli, parallel
from jaxstyle.fid import features, metrics
from jaxstyle.fid import weights as fid_weights
from jaxstyle.models import inception

pytestmark = pytest.mark.slow  # compiles the Inception trunk (~10 s per input size on 2 cores)


@pytest.fixture(scope='module')
def params():
  return inception.params_from_state_dict(
    random_state_dict(list(inception.torch_shapes().items()), 7)
  )


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
  """Two folders of 5 images 40x32 (A: smooth, B: noisy), and one with two image sizes."""
  d = tmp_path_factory.mktemp('fid_cli')
  rng = np.random.default_rng(0)
  for name in ('a', 'b', 'mixed'):
    (d / name).mkdir()
  for i in range(5):
    ramp = np.linspace(0, 255, 32)[None, :, None] * rng.uniform(0.3, 1.0, (1, 1, 3))
    Image.fromarray(np.broadcast_to(ramp, (40, 32, 3)).astype(np.uint8)).save(d / 'a' / f'{i}.png')
    Image.fromarray(rng.integers(0, 256, (40, 32, 3), np.uint8)).save(d / 'b' / f'{i}.jpg')
  for i, shape in enumerate([(40, 32, 3), (24, 24, 3), (40, 32, 3)]):
    Image.fromarray(rng.integers(0, 256, shape, np.uint8)).save(d / 'mixed' / f'{i}.png')
  return d


@pytest.fixture(scope='module')
def reference(params, folders):
  """Features without the extractor: one plain jitted apply per folder, PIL decode, /255."""
  apply = jax.jit(inception.FIDInceptionV3().apply)
  out = {}
  for name in ('a', 'b'):
    files = sorted((folders / name).iterdir())
    x = np.stack([np.asarray(Image.open(f).convert('RGB')) for f in files]).astype(np.float32)
    out[name] = np.asarray(apply(params, x / 255.0))
  return out


@pytest.fixture()
def random_weights(monkeypatch, params):
  monkeypatch.setattr(fid_weights, 'load_params', lambda path=None, **_: params)


def _fid(argv, capsys):
  assert cli.main(['fid', *argv]) == 0
  return capsys.readouterr().out


def _lowrank_fid(x, y):
  """FID from features via tr sqrt(Σ1Σ2) = Σ singular values of A1·A2ᵀ / sqrt((n1-1)(n2-1)) (A:
  centred features): exact for any rank, an independent route to the number sqrtm gives."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  a, b = x - x.mean(0), y - y.mean(0)
  tr_cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt((len(x) - 1) * (len(y) - 1))
  tr1, tr2 = (a * a).sum() / (len(x) - 1), (b * b).sum() / (len(y) - 1)
  return float(((x.mean(0) - y.mean(0)) ** 2).sum() + tr1 + tr2 - 2 * tr_cross)


def _in_span(frechet_distance):
  """`frechet_distance` on statistics projected onto an orthonormal basis Q of the span of both
  covariances and the means' difference. Of a few images, the covariances have rank < their count,
  so a few random probes (Σ·G) find that span; on it ‖Δμ‖², the traces and the eigenvalues of Σ1Σ2
  are unchanged. The statistics are checked to lie in Q's span first (so the projection is exact)."""

  def projected(mu1, sigma1, mu2, sigma2):
    probes = np.random.default_rng(0).normal(size=(len(mu1), 8))
    q, _ = np.linalg.qr(np.concatenate([sigma1 @ probes, sigma2 @ probes, (mu1 - mu2)[:, None]], 1))
    for sigma in (sigma1, sigma2):
      np.testing.assert_allclose(
        q @ (q.T @ sigma @ q) @ q.T, sigma, atol=1e-9 * np.abs(sigma).max()
      )
    return frechet_distance(q.T @ mu1, q.T @ sigma1 @ q, q.T @ mu2, q.T @ sigma2 @ q)

  return projected


def test_two_folders_and_stats_round_trip(
  random_weights, folders, reference, tmp_path, capsys, monkeypatch
):
  """Two folders, then a folder against a --save-stats file, whose statistics and features must
  reach FID and KID unchanged. The real `frechet_distance` scores the folders, on their 2048-d
  statistics projected onto the span they lie in (_in_span): the same number without a 2048²
  sqrtm (~1 min on 2 cores). FID's own formula, rank-deficient sets and FID(X, X) = 0 included, is
  tested in test_fid_metrics.py."""
  a, b = str(folders / 'a'), str(folders / 'b')
  monkeypatch.setattr(metrics, 'frechet_distance', _in_span(metrics.frechet_distance))
  out = _fid([a, b, '--kid', '--kid-subsets', '10', '--json', str(tmp_path / 's.json')], capsys)
  scores = json.loads((tmp_path / 's.json').read_text())
  want = _lowrank_fid(reference['a'], reference['b'])
  assert want > 1e-2 and scores['fid'] == pytest.approx(want, rel=1e-4)
  assert f'FID: {scores["fid"]:.4f}' in out and 'KID: ' in out
  kid = metrics.kid_from_features(reference['a'], reference['b'], 10, 1000)
  assert scores['kid_mean'] == pytest.approx(kid['kid_mean'], rel=1e-3, abs=1e-9)
  assert scores['kid_subset_size'] == 5  # capped by the set size, and said so

  stats = str(tmp_path / 'b.npz')
  _fid([b, '--save-stats', stats], capsys)
  with np.load(stats) as f:  # pytorch-fid's layout, plus our features
    assert {'mu', 'sigma', 'features'} <= set(f.files) and f['sigma'].shape == (2048, 2048)
    mu, sigma = metrics.statistics(reference['b'])
    np.testing.assert_allclose(f['mu'], mu, rtol=1e-4, atol=1e-6 * np.abs(mu).max())
    np.testing.assert_allclose(f['sigma'], sigma, rtol=1e-3, atol=1e-5 * np.abs(sigma).max())
    saved = {k: f[k][:] for k in ('mu', 'sigma')}
  seen = []
  monkeypatch.setattr(metrics, 'frechet_distance', lambda *s: seen.append(s) or 0.0)
  _fid([a, stats, '--kid', '--kid-subsets', '10', '--json', str(tmp_path / 's.json')], capsys)
  again = json.loads((tmp_path / 's.json').read_text())
  ((mu_a, sigma_a, mu_b, sigma_b),) = seen
  np.testing.assert_array_equal(mu_b, saved['mu'])
  np.testing.assert_array_equal(sigma_b, saved['sigma'])
  assert again['kid_mean'] == pytest.approx(scores['kid_mean'], rel=1e-9)  # features read back


def test_kid_refuses_statistics_without_features(random_weights, folders, tmp_path, capsys):
  plain = tmp_path / 'pytorch_fid.npz'
  np.savez(plain, mu=np.zeros(2048), sigma=np.eye(2048))
  assert cli.main(['fid', str(folders / 'a'), str(plain), '--kid']) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and 'KID needs the Inception features' in err[0]


def test_eight_devices_equal_one(params, folders):
  """Sharded over 8 devices (padded last batch) = one device; odd counts and mixed sizes."""
  files = sorted(str(p) for p in (folders / 'mixed').iterdir()) + sorted(
    str(p) for p in (folders / 'a').iterdir()
  )
  got = {}
  for n in (8, 1):
    ex = features.FeatureExtractor(params, parallel.make_mesh(jax.devices()[:n]), batch_size=4)
    got[n] = features.files_features(files, ex, progress=False)
  # An array through __call__ with a progress bar, in 2 batches of 4: the same features.
  a = np.stack([np.asarray(Image.open(f)) for f in files[3:]])
  # Error model (here and below): the images sit in other batches or at other places of one, and
  # the kernels may sum in other orders there: pool3 is 47 convs deep (fan-in ≤ 3·3·448), ≤
  # 47·sqrt(4032)·u ≈ 1.8e-4 of the features' scale. A wrong row or padding is off by O(1).
  scale = np.abs(got[1]).max()
  np.testing.assert_allclose(ex(a, desc='a'), got[1][3:], rtol=0, atol=2e-4 * scale)
  arrived = []  # progress counts features that reached the host, chunk by chunk
  ex.features_of_chunks(iter([a[:4], a[4:]]), 5, done=arrived.append)
  assert arrived == [4, 1]
  assert got[8].shape == (8, 2048)
  np.testing.assert_allclose(got[8], got[1], rtol=0, atol=2e-4 * scale)
  assert np.abs(got[8][3:] - got[8][2]).max() > 0  # rows are per image, not a broadcast
