"""FID and KID against independent NumPy implementations of the formulas (issue #14 acceptance:
≤ 1e-6 relative), on fixed random features; and the statistics file layout of pytorch-fid."""

import numpy as np
import pytest

from jaxstyle.errors import BadInputError
from jaxstyle.fid import metrics


def _features(seed, n, d=16, shift=0.0):
  rng = np.random.default_rng(seed)
  mix = rng.normal(size=(d, d)) / np.sqrt(d)
  return rng.normal(size=(n, d)) @ mix + shift


def _ref_fid(x, y):
  """FID with tr(sqrt(Σ1Σ2)) from the eigenvalues of the symmetric sqrt(Σ1)·Σ2·sqrt(Σ1) (no sqrtm)."""

  def stats(a):
    mu = a.sum(0) / len(a)
    c = a - mu
    return mu, c.T @ c / (len(a) - 1)

  (m1, s1), (m2, s2) = stats(x), stats(y)
  w, v = np.linalg.eigh(s1)
  root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  lam = np.linalg.eigvalsh(root1 @ s2 @ root1)
  return float(
    np.sum((m1 - m2) ** 2)
    + np.trace(s1)
    + np.trace(s2)
    - 2 * np.sum(np.sqrt(np.clip(lam, 0, None)))
  )


def _ref_kid(x, y, subsets, size, seed):
  """Unbiased MMD² with an explicit pairwise kernel and off-diagonal masks, torch-fidelity's draws."""
  rng = np.random.RandomState(seed)
  d = x.shape[1]
  k = lambda a, b: (np.einsum('id,jd->ij', a, b) / d + 1) ** 3
  off = lambda m: ~np.eye(m, dtype=bool)
  out = []
  for _ in range(subsets):
    a = x[rng.choice(len(x), size, replace=False)]
    b = y[rng.choice(len(y), size, replace=False)]
    out.append(k(a, a)[off(size)].mean() + k(b, b)[off(size)].mean() - 2 * k(a, b).mean())
  return np.mean(out), np.std(out)


@pytest.mark.parametrize('n1, n2, shift', [(200, 300, 0.0), (120, 80, 0.5), (64, 64, 2.0)])
def test_fid_matches_the_formula(n1, n2, shift):
  x, y = _features(1, n1), _features(2, n2, shift=shift)
  want = _ref_fid(x, y)
  got = metrics.fid_from_features(x, y)
  assert abs(got - want) <= 1e-6 * abs(want)


def test_fid_of_fewer_images_than_dimensions():
  """5 images against 5 in 64 dimensions (as `jaxstyle fid` on two small folders): singular
  covariances, and scipy's sqrtm still gives the exact FID, here against tr sqrt(Σ1Σ2) = Σ singular
  values of A1·A2ᵀ / sqrt((n1-1)(n2-1)) (A: centred features), a route without any sqrtm."""
  rng = np.random.default_rng(6)
  x, y = np.abs(rng.normal(size=(5, 64))), np.abs(rng.normal(size=(5, 64)) + 0.3)
  a, b = x - x.mean(0), y - y.mean(0)
  tr_cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / 4
  want = float(
    ((x.mean(0) - y.mean(0)) ** 2).sum() + (a * a).sum() / 4 + (b * b).sum() / 4 - 2 * tr_cross
  )
  assert metrics.fid_from_features(x, y) == pytest.approx(want, rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero():
  x = _features(3, 100)
  assert abs(metrics.fid_from_features(x, x)) < 1e-8
  assert metrics.fid_from_features(x, x + 1.0) == pytest.approx(16.0, rel=1e-9)  # ‖Δμ‖² only


def test_singular_product_takes_the_epsilon_fallback(monkeypatch, caplog):
  x, y = _features(4, 50), _features(5, 50)
  calls = []
  real = metrics.linalg.sqrtm

  def sqrtm(a):
    calls.append(a)
    if len(calls) == 1:  # as if Σ1Σ2 were singular
      return np.full_like(a, np.nan)
    return real(a)

  monkeypatch.setattr(metrics.linalg, 'sqrtm', sqrtm)
  got = metrics.fid_from_features(x, y)
  m1, s1 = metrics.statistics(x)
  m2, s2 = metrics.statistics(y)
  eye = np.eye(16) * metrics.FID_EPS
  np.testing.assert_array_equal(calls[1], (s1 + eye) @ (s2 + eye))
  assert got == pytest.approx(_ref_fid(x, y), rel=1e-4) and 'singular' in caplog.text


@pytest.mark.parametrize('n1, n2, size', [(150, 120, 50), (40, 60, 1000)])
def test_kid_matches_the_formula(n1, n2, size):
  x, y = _features(6, n1), _features(7, n2, shift=0.3)
  got = metrics.kid_from_features(x, y, subsets=20, subset_size=size, seed=2020)
  capped = min(size, n1, n2)
  want_mean, want_std = _ref_kid(x, y, 20, capped, 2020)
  assert got['kid_subset_size'] == capped and got['kid_subsets'] == 20
  assert abs(got['kid_mean'] - want_mean) <= 1e-6 * abs(want_mean)
  assert abs(got['kid_std'] - want_std) <= 1e-6 * abs(want_std)


def test_kid_defaults_are_torch_fidelitys():
  x, same, shifted = _features(8, 60), _features(9, 40), _features(9, 40, shift=1.0)
  got = metrics.kid_from_features(x, same)
  assert (got['kid_subsets'], got['kid_subset_size']) == (100, 40)
  far = metrics.kid_from_features(x, shifted)['kid_mean']
  assert abs(got['kid_mean']) < 0.1 * far  # one distribution: MMD² near 0, a shifted one far off


def test_too_few_images_is_one_clear_error():
  with pytest.raises(BadInputError, match='at least 2'):
    metrics.statistics(_features(9, 1))
  with pytest.raises(BadInputError, match='at least 2'):
    metrics.kid_from_features(_features(9, 1), _features(9, 5))
  with pytest.raises(BadInputError, match='different sizes'):
    metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_statistics_file_round_trip_and_bad_files(tmp_path):
  mu, sigma = metrics.statistics(_features(10, 40))
  path = str(tmp_path / 'stats.npz')
  metrics.save_statistics(path, mu, sigma)
  with np.load(path) as f:
    assert sorted(f.files) == ['mu', 'sigma']  # pytorch-fid's --save-stats layout
  got_mu, got_sigma = metrics.load_statistics(path)
  np.testing.assert_array_equal(got_mu, mu)
  np.testing.assert_array_equal(got_sigma, sigma)
  np.savez(tmp_path / 'wrong.npz', m=mu, s=sigma)
  with pytest.raises(BadInputError, match="'mu' and 'sigma'"):
    metrics.load_statistics(str(tmp_path / 'wrong.npz'))
  np.savez(tmp_path / 'shapes.npz', mu=mu, sigma=sigma[:3])
  with pytest.raises(BadInputError, match='do not fit'):
    metrics.load_statistics(str(tmp_path / 'shapes.npz'))
  np.savez(tmp_path / 'pickled.npz', mu=np.array([object()]), sigma=sigma)
  with pytest.raises(BadInputError, match='not a readable'):
    metrics.load_statistics(str(tmp_path / 'pickled.npz'))
  (tmp_path / 'junk.npz').write_text('junk')
  with pytest.raises(BadInputError, match='not a readable'):
    metrics.load_statistics(str(tmp_path / 'junk.npz'))
