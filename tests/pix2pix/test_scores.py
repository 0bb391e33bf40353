"""The synthetic pairs and the pix2pix scores against independent computations."""

import numpy as np
import pytest

from jaxstyle.pix2pix import data, evaluate, presets, synthetic


def test_pairs_are_deterministic_prefix_stable_and_labelled():
  a = synthetic.generate('train', 70, 32, seed=3)
  b = synthetic.generate('train', 5, 32, seed=3)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x[:5], y)
  labels, photos, classes = a
  np.testing.assert_array_equal(synthetic.decode_labels(labels), classes)  # exact palette
  assert set(np.unique(classes)) == {0, 1, 2, 3}
  test = synthetic.generate('test', 5, 32, seed=3)
  assert not np.array_equal(test[1], photos[:5])  # train and test are independent


def test_segmenter_reads_real_photos():
  # The labels -> photo score's ceiling (module docstring: 0.986 at 32 px, 0.994 at 64 px).
  _, photos, classes = synthetic.generate('test', 64, 64)
  s = synthetic.scores(synthetic.confusion(synthetic.segment_photo(photos), classes), '')
  assert s['class_iou'] > 0.98 and s['pixel_acc'] > 0.99


def test_scores_from_a_hand_made_confusion():
  true = np.array([[0, 0, 1, 1], [0, 2, 2, 2]])
  pred = np.array([[0, 1, 1, 1], [0, 2, 2, 0]])
  s = synthetic.scores(synthetic.confusion(pred, true), 'x/')
  # class 0: tp 2, true 3, pred 3 -> IoU 2/4; class 1: tp 2, true 2, pred 3 -> 2/3;
  # class 2: tp 2, true 3, pred 2 -> 2/3; class 3 absent everywhere: left out.
  assert s['x/pixel_acc'] == pytest.approx(6 / 8)
  assert s['x/class_acc'] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
  assert s['x/class_iou'] == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
  assert 'x/iou_triangle' not in s


def test_psnr_and_ssim():
  rng = np.random.default_rng(0)
  a = rng.uniform(0, 1, (2, 16, 16, 3))
  noisy = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
  mse = np.mean((a - noisy) ** 2, axis=(1, 2, 3))
  np.testing.assert_allclose(evaluate.psnr(a, noisy), 10 * np.log10(1 / mse), rtol=1e-12)
  np.testing.assert_allclose(evaluate.ssim(a, a), 1.0, rtol=1e-12)
  # A constant image against another: only the luminance term is left, (2ab + c1)/(a²+b²+c1).
  x, y = np.full((1, 16, 16, 1), 0.2), np.full((1, 16, 16, 1), 0.6)
  c1 = 0.01**2
  np.testing.assert_allclose(evaluate.ssim(x, y), (2 * 0.12 + c1) / (0.04 + 0.36 + c1), rtol=1e-9)
  assert 0 < evaluate.ssim(a, noisy).min() < 1


@pytest.mark.parametrize('direction', ['AtoB', 'BtoA'])
def test_an_oracle_generator_scores_the_ceiling(direction):
  cfg = presets.pix2pix_base().data
  cfg.update(dict(source='synthetic', image_size=32, synthetic_size=64, direction=direction))
  source = data.make_source(cfg, 'test')
  targets = {}
  for i in range(len(source)):
    targets[i] = data.orient(cfg, *data.eval_pair(cfg, *source.pair(i)))[1]
  oracle = lambda x, first: np.stack([targets[first + k] for k in range(len(x))]) / 127.5 - 1
  metrics, kept = evaluate.evaluate_fn(oracle, source, cfg, batch_size=5, keep=3)
  assert metrics['eval/l1'] < 1e-6 and metrics['eval/ssim'] > 0.999999
  assert metrics['eval/n_images'] == len(source) and len(kept) == 3
  if direction == 'BtoA':  # decoded label maps: exact
    assert metrics['eval/fcn_class_iou'] == 1.0
  else:  # the segmenter on real photos
    assert 0.97 < metrics['eval/fcn_class_iou'] < 1.0
  # The identity "generator" (output = input) scores far lower.
  worse, _ = evaluate.evaluate_fn(lambda x, first: x, source, cfg)
  assert worse['eval/fcn_class_iou'] < 0.6 and worse['eval/l1'] > 0.2
