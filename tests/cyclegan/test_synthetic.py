"""The embedded synthetic dataset: determinism, shared content, and the fixed evaluation criterion."""

import time

import numpy as np
import pytest
from scipy import ndimage

from jaxstyle.cyclegan import synthetic


@pytest.fixture(scope='module')
def test_split():
  return {d: synthetic.generate(d, 'test', 500, 32, seed=0) for d in 'AB'}


def _saturation(x):
  x = x.astype(np.float64)
  mx, mn = x.max(-1), x.min(-1)
  return np.where(mx > 0, (mx - mn) / np.where(mx > 0, mx, 1), 0)


def test_deterministic_and_disjoint():
  a1, m1 = synthetic.generate('A', 'train', 20, 24, seed=5)
  a2, m2 = synthetic.generate('A', 'train', 20, 24, seed=5)
  np.testing.assert_array_equal(a1, a2)
  np.testing.assert_array_equal(m1, m2)
  assert a1.shape == (20, 24, 24, 3) and a1.dtype == np.uint8 and m1.dtype == bool
  other_seed, _ = synthetic.generate('A', 'train', 20, 24, seed=6)
  test, _ = synthetic.generate('A', 'test', 200, 24, seed=5)
  assert not np.array_equal(a1, other_seed)
  train_set = {x.tobytes() for x in synthetic.generate('A', 'train', 200, 24, seed=5)[0]}
  assert not train_set & {x.tobytes() for x in test}
  src = synthetic.SyntheticDomain('B', 'test', 7, 16, seed=1)
  assert len(src) == 7 and src.image(3).shape == (16, 16, 3) and src.mask(3).shape == (16, 16)


def test_domains_share_content_and_differ_in_colour(test_split):
  (a, ma), (b, mb) = test_split['A'], test_split['B']
  # Same content distribution: object coverage and background brightness statistics agree.
  assert abs(ma.mean() - mb.mean()) < 0.02
  bg_a = a[~ma].astype(float).mean()
  bg_b = b[~mb].astype(float).mean()
  assert abs(bg_a - bg_b) < 5
  cover = ma.mean((1, 2))
  assert cover.min() > 0.02 and cover.max() < 0.7
  # Appearance differs: red dominates A objects, blue dominates B objects; backgrounds are grey-ish.
  assert (a[ma][:, 0].astype(int) - a[ma][:, 2]).mean() > 100
  assert (b[mb][:, 2].astype(int) - b[mb][:, 0]).mean() > 100
  assert (
    np.quantile(_saturation(a)[~ma], 0.99) < 0.2 and np.quantile(_saturation(b)[mb], 0.01) > 0.5
  )
  # B objects are textured (stripes): a much larger within-object spread of brightness.
  spread = lambda x, m: np.mean([x[i][m[i]].max(-1).std() for i in range(50)])
  assert spread(b, mb) > 1.5 * spread(a, ma)


def test_criterion_accuracy_and_mask_iou(test_split):
  (a, ma), (b, mb) = test_split['A'], test_split['B']
  pa, pb = synthetic.domain_probability(a), synthetic.domain_probability(b)
  acc = ((pa < 0.5).sum() + (pb > 0.5).sum()) / (len(a) + len(b))
  assert acc >= 0.99
  iou = np.concatenate(
    [
      synthetic.mask_iou(synthetic.estimate_mask(a), ma),
      synthetic.mask_iou(synthetic.estimate_mask(b), mb),
    ]
  )
  assert iou.mean() >= 0.95
  # Independent re-implementation of the documented criterion (scipy's 3x3 median) on a few images.
  for img, p in zip(np.concatenate([a[:5], b[:5]]), np.concatenate([pa[:5], pb[:5]])):
    m = (
      ndimage.median_filter(_saturation(img), size=3, mode='nearest')
      > synthetic.SATURATION_THRESHOLD
    )
    np.testing.assert_array_equal(m, synthetic.estimate_mask(img))
    d = ((img[..., 2].astype(float) - img[..., 0]) / 255)[m].mean()
    assert p == pytest.approx(1 / (1 + np.exp(-synthetic.CRITERION_SCALE * d)), rel=1e-5)


def test_criterion_flips_when_colours_are_swapped(test_split):
  (a, _), (b, _) = test_split['A'], test_split['B']
  # Swap red and blue by hand: A objects turn blue-ish, B objects turn yellow/orange-ish.
  assert (synthetic.domain_probability(a[..., ::-1]) > 0.5).mean() >= 0.99
  assert (synthetic.domain_probability(b[..., ::-1]) < 0.5).mean() >= 0.99
  # A washed-out image (no object) belongs to neither domain.
  grey = np.full((2, 8, 8, 3), 128, np.uint8)
  np.testing.assert_allclose(synthetic.domain_probability(grey), 0.5)
  assert not synthetic.estimate_mask(grey).any()
  speckled = grey.copy()
  speckled[0, 3, 4] = (255, 0, 0)  # an isolated saturated pixel is noise, not an object
  assert not synthetic.estimate_mask(speckled).any()
  speckled[0, 2:6, 2:6] = (255, 0, 0)
  assert synthetic.estimate_mask(speckled)[0, 2:6, 2:6].sum() >= 12  # a 4x4 block survives


def test_mask_iou():
  p = np.zeros((2, 4, 4), bool)
  t = np.zeros((2, 4, 4), bool)
  p[0, :2], t[0, 1:3] = True, True
  np.testing.assert_allclose(synthetic.mask_iou(p, t), [4 / 12, 1.0])


def test_generation_is_fast():
  t0 = time.perf_counter()
  synthetic.generate('A', 'train', 1000, 32)
  elapsed = time.perf_counter() - t0
  assert elapsed < 4.0, elapsed  # ~0.3 s on an idle core; slack for a shared CI machine
