"""An embedded, procedurally generated unpaired dataset: the offline default for CycleGAN.

Why it exists: CI and laptops have no network, and a CycleGAN run needs a task whose success can be
*measured* without FID or a human. Both domains draw content from the same distribution (1-2 shapes:
disc, rotated square or triangle, their positions and sizes, and a smooth low-saturation background);
only the objects' appearance differs:

- domain A: red-orange objects (hue -0.04..0.06, saturation 0.75..1) with smooth radial shading;
- domain B: cyan-blue objects (hue 0.50..0.62, saturation 0.75..1) with a low-contrast stripe
  texture (value x1 / x0.8, period 1/6..1/4 of the image side, random orientation).
Backgrounds: a linear value ramp (mean 0.5..0.85, slope up to 0.3 per side) at a random angle, a random
hue at saturation <= 0.08, and Gaussian noise of 0.01. Objects: radius 0.18..0.30 of the side.

Every image has its ground-truth object mask, so a translation can be scored for *transfer*
(`domain_probability`: does the object now look like the target domain?) and for *content
preservation* (`estimate_mask` of the translation vs the input's true mask, IoU).

On real (untranslated) images the criterion is 100% accurate and `estimate_mask` reaches a mean IoU
with the true masks of 0.93 / 0.97 / 0.98 / 0.99 at 16 / 24 / 32 / 48 px (the median filter
rounds corners), so use >= 32 px when IoU matters.

Generation is vectorised NumPy and a pure function of (seed, domain, split, resolution); image i does
not depend on n. 1,000 images at 32x32 take under a second. Train and test use independent streams.
"""

from __future__ import annotations

import numpy as np

DOMAINS = ('A', 'B')
SPLITS = ('train', 'test')
SHAPES = ('disc', 'square', 'triangle')

# A pixel is "object" when its HSV saturation exceeds this. Backgrounds stay below ~0.2 (saturation
# <= 0.12 plus noise) and objects above ~0.6, so the margin is wide on both sides.
SATURATION_THRESHOLD = 0.4
# Scale of the logistic criterion on d = mean(blue - red) over the object, in [0, 1] units. Real
# objects have |d| >= ~0.4, i.e. probabilities below 0.04 or above 0.96.
CRITERION_SCALE = 8.0


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
  """HSV -> RGB in [0, 1] for per-image hue/saturation (n,) and a value map (n, H, W).

  RGB is linear in v for fixed (h, s), so the colour is computed once per image, not per pixel.
  """
  h = np.mod(h, 1.0)
  k = np.mod(np.array([5.0, 3.0, 1.0], np.float32) + h[:, None] * 6.0, 6.0)
  f = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
  colour = (1.0 - s[:, None] * f).astype(np.float32)
  return v[..., None] * colour[:, None, None, :]


def _object_mask(shape_id: np.ndarray, cx, cy, r, theta, xx, yy) -> np.ndarray:
  """Boolean masks (n, H, W) of one shape per image, all three kinds computed in one pass."""
  dx = xx[None] - cx[:, None, None]
  dy = yy[None] - cy[:, None, None]
  c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
  u, w = c * dx + s * dy, -s * dx + c * dy
  rr = r[:, None, None]
  disc = dx * dx + dy * dy <= rr * rr
  # Square with the same area as the disc of radius r: half side = r * sqrt(pi) / 2.
  half = rr * 0.886
  square = (np.abs(u) <= half) & (np.abs(w) <= half)
  # Equilateral triangle inscribed in a circle of radius 1.2 r (similar area to the disc).
  tri = np.ones_like(disc)
  for k in range(3):
    a = 2.0 * np.pi * k / 3.0
    tri &= np.cos(a) * u + np.sin(a) * w <= 0.6 * rr
  sid = shape_id[:, None, None]
  return np.where(sid == 0, disc, np.where(sid == 1, square, tri))


_CHUNK = 64  # images per random stream: image i does not depend on n, and chunks stay in cache


def generate(
  domain: str, split: str, n: int, resolution: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
  """Returns (images uint8 (n, R, R, 3), masks bool (n, R, R)) for one domain and split.

  The content distribution does not depend on `domain`; only the colour/texture of the objects
  does. Different (domain, split) pairs use independent streams, so A and B are unpaired and
  train/test are disjoint. Image i is the same for every n > i (a prefix-stable dataset).
  """
  if domain not in DOMAINS or split not in SPLITS:
    raise ValueError(f'domain must be one of {DOMAINS} and split one of {SPLITS}')
  parts = [
    _generate_chunk(
      np.random.default_rng([seed, SPLITS.index(split), DOMAINS.index(domain), 0x5E7, c]),
      domain,
      _CHUNK,
      resolution,
    )
    for c in range(-(-n // _CHUNK))
  ]
  if not parts:
    return np.zeros((0, resolution, resolution, 3), np.uint8), np.zeros(
      (0, resolution, resolution), bool
    )
  return np.concatenate([p[0] for p in parts])[:n], np.concatenate([p[1] for p in parts])[:n]


def _generate_chunk(
  rng: np.random.Generator, domain: str, n: int, res: int
) -> tuple[np.ndarray, np.ndarray]:
  """Draws n full-size images from `rng` (all draws are n-vectors; image j uses entry j)."""
  coords = (np.arange(res, dtype=np.float32) + 0.5) / res
  xx, yy = np.meshgrid(coords, coords)  # xx varies along width

  # Background: a linear gradient in value at a random angle, low saturation, faint noise.
  angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
  proj = np.cos(angle)[:, None, None] * (xx[None] - 0.5) + np.sin(angle)[:, None, None] * (
    yy[None] - 0.5
  )
  v0 = rng.uniform(0.5, 0.85, n).astype(np.float32)
  dv = rng.uniform(-0.3, 0.3, n).astype(np.float32)
  v_bg = v0[:, None, None] + dv[:, None, None] * proj
  img = _hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0.0, 0.08, n), v_bg)
  mask = np.zeros((n, res, res), bool)

  n_obj = rng.integers(1, 3, n)
  for k in range(2):
    shape_id = rng.integers(0, len(SHAPES), n)
    r = rng.uniform(0.18, 0.30, n).astype(np.float32)
    cx = rng.uniform(r, 1 - r).astype(np.float32)
    cy = rng.uniform(r, 1 - r).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    m = _object_mask(shape_id, cx, cy, r, theta, xx, yy) & (n_obj > k)[:, None, None]
    # Appearance draws happen for both domains so the content streams stay aligned in structure.
    hue_u = rng.uniform(0, 1, n).astype(np.float32)
    sat_u = rng.uniform(0, 1, n).astype(np.float32)
    val = rng.uniform(0.8, 1.0, n).astype(np.float32)
    tex_angle = rng.uniform(0, np.pi, n).astype(np.float32)
    period = rng.uniform(1 / 6, 1 / 4, n).astype(np.float32)
    hx, hy = rng.uniform(-0.5, 0.5, (2, n)).astype(np.float32)
    if domain == 'A':
      hue = -0.04 + 0.10 * hue_u
      sat = 0.75 + 0.25 * sat_u
      # Smooth shading: brightest at an off-centre highlight, darker towards the far edge.
      d = np.sqrt(
        (xx[None] - (cx + hx * r)[:, None, None]) ** 2
        + (yy[None] - (cy + hy * r)[:, None, None]) ** 2
      ) / (2 * r[:, None, None])
      v_obj = val[:, None, None] * (1.0 - 0.35 * np.clip(d, 0, 1))
    else:
      hue = 0.50 + 0.12 * hue_u
      sat = 0.75 + 0.25 * sat_u
      t = np.cos(tex_angle)[:, None, None] * xx[None] + np.sin(tex_angle)[:, None, None] * yy[None]
      stripes = np.sin(2 * np.pi * t / period[:, None, None]) > 0
      v_obj = val[:, None, None] * np.where(stripes, 1.0, 0.8)
    obj = _hsv_to_rgb(hue, sat, v_obj)
    img = np.where(m[..., None], obj, img)
    mask |= m

  img = img + rng.standard_normal(img.shape, np.float32) * 0.01
  img = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
  return img, mask


class SyntheticDomain:
  """One domain of one split, held in memory: a data source with `image(i)` and `mask(i)`."""

  def __init__(self, domain: str, split: str, n: int, resolution: int, seed: int = 0):
    self.domain, self.split = domain, split
    self.images, self.masks = generate(domain, split, n, resolution, seed)

  def __len__(self) -> int:
    return len(self.images)

  def image(self, i: int) -> np.ndarray:
    return self.images[i]

  def mask(self, i: int) -> np.ndarray:
    return self.masks[i]

  def __repr__(self) -> str:
    return f'SyntheticDomain({self.domain!r}, {self.split!r}, n={len(self)})'


def _saturation(images: np.ndarray) -> np.ndarray:
  x = np.asarray(images, np.float32)
  mx, mn = x.max(-1), x.min(-1)
  return np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)


def estimate_mask(images_uint8: np.ndarray) -> np.ndarray:
  """Object mask of (..., H, W, 3) uint8 images: 3x3-median HSV saturation above the threshold.

  Works on any image that follows the synthetic convention (grey-ish background, saturated
  objects), e.g. a generator's translation; used to score content preservation. The median
  ignores isolated speckles that generators produce early in training without moving straight
  edges (it only rounds sharp corners by about a pixel).
  """
  # median > t  <=>  at least 5 of the 9 neighbours are > t (thresholding commutes with median).
  above = (_saturation(images_uint8) > SATURATION_THRESHOLD).astype(np.uint8)
  h, w = above.shape[-2:]
  pad = np.pad(above, [(0, 0)] * (above.ndim - 2) + [(1, 1), (1, 1)], mode='edge')
  votes = sum(pad[..., i : i + h, j : j + w] for i in range(3) for j in range(3))
  return votes >= 5


def domain_probability(images_uint8: np.ndarray) -> np.ndarray:
  """P(domain B) for each of (N, H, W, 3) uint8 images; the fixed synthetic criterion.

  d = mean over the estimated object region of (blue - red), in [0, 1] units; P(B) =
  sigmoid(CRITERION_SCALE * d). Red-orange objects (A) give d << 0, cyan-blue objects (B) d >> 0.
  An image with no saturated pixels gets 0.5: it belongs to neither domain, so it never counts
  as a successful transfer.
  """
  x = np.asarray(images_uint8, np.float32) / 255.0
  if x.ndim == 3:
    x = x[None]
  m = estimate_mask(images_uint8).reshape(x.shape[:3])
  diff = x[..., 2] - x[..., 0]
  count = m.sum((1, 2))
  d = np.where(count > 0, (diff * m).sum((1, 2)) / np.maximum(count, 1), 0.0)
  return 1.0 / (1.0 + np.exp(-CRITERION_SCALE * d))


def mask_iou(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
  """Per-image IoU of boolean masks (N, H, W); two empty masks count as a perfect match."""
  pred, true = np.asarray(pred, bool), np.asarray(true, bool)
  inter = (pred & true).sum((-2, -1))
  union = (pred | true).sum((-2, -1))
  return np.where(union > 0, inter / np.maximum(union, 1), 1.0)
