"""An embedded paired dataset, labels <-> photo: the offline pix2pix task, scored as the paper does.

Scenes are CycleGAN's synthetic ones (`cyclegan/synthetic.py`: 1-2 shapes over a smooth,
low-saturation background with faint noise), but every pixel has a class: background, disc,
square or triangle (a later shape covers an earlier one). Each pair is
  A: the label map, one flat palette colour per class (as the facades / Cityscapes label images);
  B: the "photo": each class has its own look, with a random hue inside the class's range and
     random shading: discs red-orange with a radial highlight, squares cyan-blue with stripes,
     triangles violet with a linear shade. The background is CycleGAN's.
So labels -> photo (AtoB) must invent plausible texture and shading (a one-to-many task, where
the GAN term matters), and photo -> labels (BtoA) is a segmentation.

Scores (pix2pix/evaluate.py), as the paper's Table / FCN-score intends:
  photo -> labels: `decode_labels` maps each output pixel to the nearest palette colour, then
    per-pixel accuracy, per-class accuracy and per-class IoU against the true class map;
  labels -> photo: the same three of a fixed "segmenter" run on the generated photo
    (`segment_photo`: saturation for object vs background, hue for the class; on the real photos
    its mean class IoU is 0.986 / 0.994 / 0.9997 at 32 / 64 / 256 px: the ceiling of that score),
    plus L1 / PSNR / SSIM against the real photo.
Generation is vectorised NumPy, a pure function of (seed, split, resolution); image i does not
depend on n (chunks of 64 drawn from their own streams).
"""

from __future__ import annotations

import numpy as np

from jaxstyle.cyclegan import synthetic as scenes

CLASSES = ('background', 'disc', 'square', 'triangle')
# Label-map colours (uint8 RGB), far apart so a blurred output still decodes to the right class.
PALETTE = np.array([[30, 30, 110], [255, 60, 60], [60, 230, 60], [250, 250, 70]], np.uint8)
# Per class of object: (hue low, hue high); the segmenter assigns a saturated pixel to the class
# whose hue centre is nearest on the hue circle.
HUES = {1: (-0.04, 0.06), 2: (0.50, 0.62), 3: (0.76, 0.86)}
SPLITS = ('train', 'test')
_CHUNK = 64


def generate(split: str, n: int, resolution: int, seed: int = 0) -> tuple[np.ndarray, ...]:
  """(labels uint8 (n,R,R,3), photos uint8 (n,R,R,3), classes uint8 (n,R,R)) of one split."""
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
  parts = [
    _chunk(np.random.default_rng([seed, SPLITS.index(split), 0x9A1, c]), _CHUNK, resolution)
    for c in range(-(-n // _CHUNK))
  ]
  if not parts:
    empty = np.zeros((0, resolution, resolution, 3), np.uint8)
    return empty, empty.copy(), np.zeros((0, resolution, resolution), np.uint8)
  return tuple(np.concatenate([p[k] for p in parts])[:n] for k in range(3))


def _chunk(rng: np.random.Generator, n: int, res: int) -> tuple[np.ndarray, ...]:
  coords = (np.arange(res, dtype=np.float32) + 0.5) / res
  xx, yy = np.meshgrid(coords, coords)
  angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
  proj = np.cos(angle)[:, None, None] * (xx - 0.5) + np.sin(angle)[:, None, None] * (yy - 0.5)
  v_bg = rng.uniform(0.5, 0.85, n)[:, None, None] + rng.uniform(-0.3, 0.3, n)[:, None, None] * proj
  photo = scenes._hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0.0, 0.08, n), v_bg)
  classes = np.zeros((n, res, res), np.uint8)
  n_obj = rng.integers(1, 3, n)
  for k in range(2):
    shape_id = rng.integers(0, 3, n)
    r = rng.uniform(0.18, 0.30, n).astype(np.float32)
    cx, cy = rng.uniform(r, 1 - r).astype(np.float32), rng.uniform(r, 1 - r).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    m = scenes._object_mask(shape_id, cx, cy, r, theta, xx, yy) & (n_obj > k)[:, None, None]
    hue_u, sat = rng.uniform(0, 1, n), rng.uniform(0.75, 1.0, n)
    val = rng.uniform(0.8, 1.0, n)[:, None, None]
    period = rng.uniform(1 / 6, 1 / 4, n)[:, None, None]
    t_angle = rng.uniform(0, np.pi, n)[:, None, None]
    # The three looks, each computed for every image; the shape's class picks one.
    d = np.sqrt((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2) / (
      2 * r[:, None, None]
    )
    radial = val * (1.0 - 0.35 * np.clip(d, 0, 1))
    t = np.cos(t_angle) * xx + np.sin(t_angle) * yy
    stripes = val * np.where(np.sin(2 * np.pi * t / period) > 0, 1.0, 0.8)
    linear = val * (0.75 + 0.25 * np.clip(0.5 + (t - t.mean((1, 2), keepdims=True)) * 2.0, 0, 1))
    sid = shape_id[:, None, None]
    v_obj = np.where(sid == 0, radial, np.where(sid == 1, stripes, linear)).astype(np.float32)
    lo = np.array([HUES[c + 1][0] for c in range(3)])[shape_id]
    hi = np.array([HUES[c + 1][1] for c in range(3)])[shape_id]
    obj = scenes._hsv_to_rgb(lo + (hi - lo) * hue_u, sat, v_obj)
    photo = np.where(m[..., None], obj, photo)
    classes = np.where(m, (shape_id + 1)[:, None, None].astype(np.uint8), classes)
  photo = photo + rng.standard_normal(photo.shape, np.float32) * 0.01
  photo = np.clip(np.rint(photo * 255.0), 0, 255).astype(np.uint8)
  return PALETTE[classes], photo, classes


def decode_labels(images_uint8: np.ndarray) -> np.ndarray:
  """Class map (..., H, W) of label images: the nearest palette colour of each pixel."""
  x = np.asarray(images_uint8, np.float32)[..., None, :]
  return np.argmin(np.sum(np.square(x - PALETTE.astype(np.float32)), -1), -1).astype(np.uint8)


def segment_photo(images_uint8: np.ndarray) -> np.ndarray:
  """The fixed segmenter of the labels -> photo score: object pixels by saturation (CycleGAN's
  median-filtered `estimate_mask`), their class by the nearest class hue centre."""
  x = np.asarray(images_uint8, np.float32) / 255.0
  mx, mn = x.max(-1), x.min(-1)
  delta = np.maximum(mx - mn, 1e-6)
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  hue = np.where(
    mx == r,
    ((g - b) / delta) % 6.0,
    np.where(mx == g, (b - r) / delta + 2.0, (r - g) / delta + 4.0),
  )
  hue = hue / 6.0
  centres = np.array([(lo + hi) / 2 for lo, hi in HUES.values()], np.float32)
  dist = np.abs(hue[..., None] - centres)
  dist = np.minimum(dist, 1.0 - dist)
  cls = (np.argmin(dist, -1) + 1).astype(np.uint8)
  return np.where(scenes.estimate_mask(images_uint8), cls, 0).astype(np.uint8)


def confusion(pred: np.ndarray, true: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
  """(n_classes, n_classes) pixel counts, rows = true class, columns = predicted."""
  idx = np.asarray(true, np.int64).ravel() * n_classes + np.asarray(pred, np.int64).ravel()
  return np.bincount(idx, minlength=n_classes**2).reshape(n_classes, n_classes)


def scores(conf: np.ndarray, prefix: str) -> dict[str, float]:
  """The paper's three FCN-score columns from a confusion matrix (pix2pix Table 1 / 2):
  per-pixel accuracy, mean per-class accuracy, mean class IoU; plus each class's IoU. A class
  absent from both truth and prediction is left out of the means (as the Cityscapes script)."""
  conf = conf.astype(np.float64)
  tp, true_n, pred_n = np.diag(conf), conf.sum(1), conf.sum(0)
  present = true_n > 0
  union = true_n + pred_n - tp
  iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
  out = {
    f'{prefix}pixel_acc': float(tp.sum() / max(conf.sum(), 1)),
    f'{prefix}class_acc': float(np.mean(tp[present] / true_n[present])),
    f'{prefix}class_iou': float(np.nanmean(iou)),
  }
  for c, name in enumerate(CLASSES):
    if not np.isnan(iou[c]):
      out[f'{prefix}iou_{name}'] = float(iou[c])
  return out


class SyntheticPairs:
  """One split in memory: `pair(i)` -> (A labels, B photo) uint8, `classes(i)`, `name(i)`."""

  def __init__(self, split: str, n: int, resolution: int, seed: int = 0):
    self.split = split
    self.labels, self.photos, self.class_maps = generate(split, n, resolution, seed)

  def __len__(self) -> int:
    return len(self.labels)

  def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
    return self.labels[i], self.photos[i]

  def classes(self, i: int) -> np.ndarray:
    return self.class_maps[i]

  def name(self, i: int) -> str:
    return f'{self.split}_{i:05d}.png'
