"""Issue #28: clean-fid's resize vs PIL called directly (exact), the Inception Score vs an
independent entropy formula (<= 1e-6), precision/recall vs a brute-force pairwise loop, and the
statistics files clean-fid reads and writes (round trip)."""

import json

import numpy as np
import pytest
from PIL import Image
from scipy import special, stats

from jaxstyle import cli
from jaxstyle.errors import BadInputError
from jaxstyle.fid import cli as fid_cli
from jaxstyle.fid import metrics, quality, resize


@pytest.mark.parametrize('shape', [(40, 32, 3), (600, 500, 3), (299, 299, 3)])
def test_clean_resize_is_pil_bicubic_per_float_channel(shape):
  """Built through PIL's raw 'F' decoder (frombytes), not fromarray: the same PIL filter reached
  another way, so the comparison is exact (both are PIL's own float32 arithmetic)."""
  x = np.random.default_rng(1).integers(0, 256, shape, np.uint8)
  got = resize.clean_resize(x)
  want = np.empty((299, 299, 3), np.float32)
  for c in range(3):
    plane = np.ascontiguousarray(x[:, :, c]).astype('<f4')
    im = Image.frombytes('F', (shape[1], shape[0]), plane.tobytes())
    want[:, :, c] = np.asarray(im.resize((299, 299), Image.Resampling.BICUBIC))
  want = np.clip(want, 0, 255)
  assert got.dtype == np.float32 and got.shape == (299, 299, 3)
  np.testing.assert_array_equal(got, want)
  if shape[:2] != (299, 299):  # no re-quantisation: fractional values survive
    assert np.any(got != np.round(got))
  else:
    np.testing.assert_array_equal(got, x.astype(np.float32))


def test_clean_resize_refuses_bad_shapes():
  with pytest.raises(BadInputError):
    resize.clean_resize(np.zeros((4, 4), np.uint8))
  with pytest.raises(BadInputError):
    resize.check_mode('tf')


def _ref_inception_score(logits, splits, seed=2020):
  """IS = exp(H(mean p) - mean H(p)) per split (KL averaged = entropy difference), via SciPy's
  softmax and entropy: another route to torch-fidelity's number."""
  x = np.asarray(logits, np.float64)[np.random.RandomState(seed).permutation(len(logits))]
  p = special.softmax(x, axis=1)
  n, out = len(x), []
  for i in range(splits):
    part = p[i * n // splits : (i + 1) * n // splits]
    out.append(np.exp(stats.entropy(part.mean(0)) - stats.entropy(part, axis=1).mean()))
  return np.mean(out), np.std(out)


@pytest.mark.parametrize('n, splits', [(103, 10), (40, 4)])
def test_inception_score_matches_the_entropy_formula(n, splits):
  logits = np.random.default_rng(n).normal(0, 3, (n, 1008)).astype(np.float32)
  got = quality.inception_score(logits, splits)
  mean, std = _ref_inception_score(logits, splits)
  assert got['is_splits'] == splits
  # float64 throughout; log-sum-exp vs SciPy's softmax + entropy: ~1e-14 relative apart
  np.testing.assert_allclose(got['is_mean'], mean, rtol=1e-6)
  np.testing.assert_allclose(got['is_std'], std, rtol=1e-6, atol=1e-9)


def test_inception_score_limits():
  """Identical logits: p(y|x) = p(y), IS = 1. Confident and spread over k classes: IS -> k."""
  assert quality.inception_score(np.zeros((20, 1008)), 2)['is_mean'] == pytest.approx(1, abs=1e-12)
  k = 8
  logits = np.full((80, 1008), -100.0)
  logits[np.arange(80), np.arange(80) % k] = 100.0
  got = quality.inception_score(logits, 1)
  assert got['is_mean'] == pytest.approx(k, rel=1e-9) and got['is_std'] == 0
  with pytest.raises(BadInputError):
    quality.inception_score(np.zeros((5, 10)), 10)


def _ref_prc(fake, real, k):
  """Brute force: every pairwise distance by np.linalg.norm, radii by sorting."""

  def radius(x):
    return np.array([np.sort([np.linalg.norm(a - b) for b in x])[k] for a in x])

  def covered(x, y, r):
    return np.mean([any(np.linalg.norm(a - b) <= rb for b, rb in zip(y, r)) for a in x])

  return covered(fake, real, radius(real)), covered(real, fake, radius(fake))


@pytest.mark.parametrize('k', [3, 1])
def test_precision_recall_matches_brute_force(k):
  rng = np.random.default_rng(k)
  real = rng.normal(size=(60, 8))
  fake = np.concatenate([rng.normal(size=(30, 8)), rng.normal(2.5, 0.3, size=(25, 8))])
  got = quality.precision_recall(fake, real, k)
  p, r = _ref_prc(fake, real, k)
  # Distinct random points: no distance within float rounding of a radius, so the fractions
  # must agree exactly (both are counts / n).
  assert (got['precision'], got['recall']) == (p, r)
  assert 0 < got['precision'] < 1 and 0 < got['recall'] <= 1
  assert got['f_score'] == pytest.approx(2 * p * r / (p + r))


def test_precision_recall_needs_k_plus_one_images():
  with pytest.raises(BadInputError):
    quality.precision_recall(np.zeros((3, 4)), np.ones((10, 4)), 3)


def test_clean_statistics_round_trip(tmp_path, capsys):
  """Ours in clean mode -> read as clean-fid reads (mu, sigma; KID 'feats'); clean-fid's files
  (np.savez_compressed(mu=, sigma=) and (feats=)) -> read by ours."""
  feats = np.random.default_rng(3).normal(size=(30, 6)).astype(np.float32)
  out = tmp_path / 'sub' / 'clean.npz'
  fid_cli.save_stats('imgs', feats, str(out), 'clean')
  assert 'clean statistics of n = 30' in capsys.readouterr().out
  with np.load(out) as f:  # clean-fid: stats['mu'], stats['sigma'] and feats from 'feats'
    np.testing.assert_array_equal(f['mu'], np.mean(feats.astype(np.float64), axis=0))
    np.testing.assert_array_equal(f['sigma'], np.cov(feats.astype(np.float64), rowvar=False))
    np.testing.assert_array_equal(f['feats'], feats)
  assert fid_cli.stats_mode(str(out)) == 'clean'
  np.testing.assert_array_equal(fid_cli.load_features(str(out)), feats)
  mu, sigma = np.mean(feats, axis=0), np.cov(feats, rowvar=False)
  theirs, theirs_kid = tmp_path / 'x_clean_custom_na.npz', tmp_path / 'x_clean_custom_na_kid.npz'
  np.savez_compressed(theirs, mu=mu, sigma=sigma)
  np.savez_compressed(theirs_kid, feats=feats)
  got_mu, got_sigma = metrics.load_statistics(str(theirs))
  np.testing.assert_array_equal(got_mu, mu)
  np.testing.assert_array_equal(got_sigma, sigma)
  assert fid_cli.load_features(str(theirs)) is None and fid_cli.stats_mode(str(theirs)) is None
  np.testing.assert_array_equal(fid_cli.load_features(str(theirs_kid)), feats)


def test_statistics_of_another_mode_are_refused(tmp_path):
  out = tmp_path / 'pf.npz'
  fid_cli.save_stats('imgs', np.eye(4, dtype=np.float32), str(out), 'pytorch-fid')
  fid_cli._check_mode(str(out), 'pytorch-fid')
  with pytest.raises(BadInputError, match='--mode pytorch-fid'):
    fid_cli._check_mode(str(out), 'clean')


def test_small_sets_print_n_and_the_bias_warning(capsys):
  scores = {'mode': 'clean', 'fid': 12.5, 'n': [500, None], 'kid_mean': 0.01, 'kid_std': 0.001}
  scores.update(kid_subsets=100, kid_subset_size=500)
  fid_cli.print_scores(scores)
  out, err = capsys.readouterr()
  assert 'FID: 12.5000 (n = 500 vs ?, clean mode)' in out and 'KID: 0.010000' in out
  assert len(err.strip().splitlines()) == 1 and 'n = 500 < 2048' in err and 'KID' in err
  fid_cli.print_scores({**scores, 'n': [2048, 5000]})
  assert capsys.readouterr().err == ''


@pytest.mark.parametrize('n1, n2, d', [(30, 25, 16), (6, 9, 40)])
def test_fid_lowrank_is_pytorch_fids_number(n1, n2, d):
  """The SVD route FID tracking uses vs pytorch-fid's sqrtm route, full rank and rank-deficient
  (n < d: sqrtm of a singular product, pytorch-fid's eps retry may apply)."""
  rng = np.random.default_rng(n1)
  x, y = rng.normal(size=(n1, d)), rng.normal(0.3, 1.2, size=(n2, d))
  want = metrics.fid_from_features(x, y)
  # float64 both ways; sqrtm of a near-singular product loses ~sqrt(u) on the zero eigenvalues,
  # which shows at ~1e-7 relative of FID here (the eps retry adds 1e-6 to the diagonals).
  np.testing.assert_allclose(metrics.fid_lowrank(x, y), want, rtol=1e-5)
  assert metrics.fid_lowrank(x, x) == pytest.approx(0, abs=1e-9)


def test_one_folder_with_isc_scores_only_the_inception_score(monkeypatch, tmp_path, capsys):
  """`jaxstyle fid FOLDER --isc`: the CLI's one-PATH branch, with the Inception pass replaced by
  fixed logits (the pass itself is tested in test_fid_modes.py)."""
  logits = np.random.default_rng(2).normal(0, 2, (20, 1008))
  (tmp_path / 'imgs').mkdir()

  def load(self, path):
    self.logits[path] = logits
    return np.zeros((20, 2048)), None

  monkeypatch.setattr(fid_cli._Sets, 'check', lambda self, paths: None)
  monkeypatch.setattr(fid_cli._Sets, 'load', load)
  out_json = tmp_path / 'is.json'
  argv = ['fid', str(tmp_path / 'imgs'), '--isc', '--isc-splits', '4', '--json', str(out_json)]
  assert cli.main(argv) == 0
  out = capsys.readouterr().out
  want = quality.inception_score(logits, 4)
  assert f'IS: {want["is_mean"]:.4f} ± {want["is_std"]:.4f} (4 splits of n = 20)' in out
  assert 'FID' not in out
  scores = json.loads(out_json.read_text())
  assert scores['is_mean'] == want['is_mean'] and 'fid' not in scores
  assert cli.main(['fid', str(tmp_path / 'imgs'), '--isc', '--kid']) == 2  # KID needs two sets
  assert '--kid and --prc compare two sets' in capsys.readouterr().err
