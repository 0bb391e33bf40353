"""Fast-style input: content images (synthetic, folder, TFDS), style images, a pure batch stream.

Like the CycleGAN stream (and through its `TrainStream` worker pool), batch `s` is a pure
function of (seed, step): item j of step s reads content image perm(seed, epoch)[k] with
(epoch, k) = divmod(s·B + j, #images) and is paired with style (s·B + j) mod n_styles, so a
resumed run sees exactly the batches an uninterrupted one would, and each host computes only
its slice of the global batch. Crops follow pytorch/examples: shorter side resized to the crop
size (bicubic), centre crop. Values stay in [0, 255] (what the Johnson net and VGG take).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
from PIL import Image

from jaxstyle import image_io
from jaxstyle.cyclegan import synthetic
from jaxstyle.cyclegan.data import FolderSource, TfdsSource, TrainStream
from jaxstyle.fast_style.presets import SYNTHETIC_PREFIX, SYNTHETIC_STYLES

__all__ = [
  'TrainStream',
  'batch_at',
  'content_view',
  'load_styles',
  'make_source',
  'style_labels',
  'synthetic_style',
]

_EPOCH = 11  # purpose code mixed into the permutation seed (distinct from CycleGAN's)


class SyntheticContent:
  """The embedded shapes-on-backgrounds images (both CycleGAN domains), held in memory."""

  def __init__(self, split: str, n: int, resolution: int, seed: int = 0):
    half = max(1, n // 2)
    self._parts = [synthetic.SyntheticDomain(d, split, half, resolution, seed) for d in 'AB']

  def __len__(self) -> int:
    return 2 * len(self._parts[0])

  def image(self, i: int) -> np.ndarray:
    return self._parts[i % 2].image(i // 2)


def make_source(data_cfg: Any, split: str) -> Any:
  """The content images of split 'train' or 'test' (held out) as a source with len and image(i)."""
  kind = data_cfg.source
  if kind == 'synthetic':
    n = data_cfg.synthetic_size if split == 'train' else 16
    return SyntheticContent(split, n, data_cfg.image_size, data_cfg.seed)
  if kind == 'folder':
    root = data_cfg.test_root if split == 'test' and data_cfg.test_root else data_cfg.root
    return FolderSource(root, data_cfg.on_bad_file)
  if kind == 'tfds':
    tfds_split = data_cfg.split if split == 'train' else data_cfg.test_split
    return TfdsSource(data_cfg.name, tfds_split, data_cfg.data_dir, data_cfg.tfds_download)
  raise ValueError(f'unknown data source {kind!r}; expected synthetic, folder or tfds')


def content_view(img: np.ndarray, size: int) -> np.ndarray:
  """Shorter side resized to `size` (bicubic), centre crop to size×size: uint8 RGB."""
  img = image_io.as_rgb(img)
  h, w = img.shape[:2]
  if min(h, w) != size:
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    img = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BICUBIC))
    h, w = nh, nw
  top, left = (h - size) // 2, (w - size) // 2
  return img[top : top + size, left : left + size]


@functools.lru_cache(maxsize=8)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  return np.random.default_rng([seed % (1 << 32), _EPOCH, epoch]).permutation(n)


def batch_at(
  data_cfg: Any,
  sources: tuple[Any, int],
  step: int,
  global_batch: int,
  process_index: int = 0,
  process_count: int = 1,
) -> dict[str, np.ndarray]:
  """This process's slice of step `step`: {'content': f32 (n, S, S, 3) in [0, 255], 'style': i32}.

  `sources` is (content source, n_styles); the signature is `cyclegan.data.batch_at`'s so the
  same `TrainStream` runs it ahead of the device.
  """
  source, n_styles = sources
  if global_batch % process_count:
    raise ValueError(f'global batch {global_batch} is not divisible by {process_count} processes')
  local = global_batch // process_count
  n = len(source)
  views, styles = [], []
  for j in range(process_index * local, (process_index + 1) * local):
    item = step * global_batch + j
    epoch, k = divmod(item, n)
    views.append(
      content_view(source.image(int(_permutation(data_cfg.seed, epoch, n)[k])), data_cfg.image_size)
    )
    styles.append(item % n_styles)
  return {'content': np.stack(views).astype(np.float32), 'style': np.asarray(styles, np.int32)}


def make_stream(
  data_cfg: Any,
  source: Any,
  n_styles: int,
  start_step: int,
  global_batch: int,
  process_index: int,
  process_count: int,
) -> TrainStream:
  """`batch_at` for start_step, start_step + 1, ... computed ahead by worker threads."""
  return TrainStream(
    data_cfg,
    (source, n_styles),
    start_step,
    global_batch,
    process_index,
    process_count,
    data_cfg.prefetch,
    data_cfg.num_workers,
    batch_fn=batch_at,
  )


#### Style images


def synthetic_style(name: str, size: int = 256) -> np.ndarray:
  """An embedded style pattern (uint8 size×size RGB): strong colours and a clear texture.

  They let an offline run (and the tests) train and show multi-style behaviour with no file; they
  are not paintings.
  """
  if name not in SYNTHETIC_STYLES:
    raise ValueError(f'unknown embedded style {name!r}; choose from {SYNTHETIC_STYLES}')
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
  if name == 'stripes':  # diagonal orange / navy stripes
    t = (np.sin(2 * np.pi * 9 * (xx + yy)) > 0)[..., None]
    img = np.where(t, [235, 120, 30], [20, 30, 90])
  elif name == 'checks':  # red / cream checkerboard
    t = ((np.floor(xx * 8) + np.floor(yy * 8)) % 2 == 1)[..., None]
    img = np.where(t, [200, 30, 40], [245, 235, 200])
  elif name == 'dots':  # yellow dots on teal
    d = np.hypot((xx * 10) % 1 - 0.5, (yy * 10) % 1 - 0.5)[..., None]
    img = np.where(d < 0.28, [250, 220, 40], [10, 110, 120])
  else:  # waves: purple / green bands
    t = (0.5 + 0.5 * np.sin(2 * np.pi * (6 * yy + 0.8 * np.sin(2 * np.pi * 3 * xx))))[..., None]
    img = t * np.array([120, 40, 160]) + (1 - t) * np.array([60, 200, 110])
  return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def load_styles(styles: Any, style_size: int) -> list[np.ndarray]:
  """The style images (uint8 RGB), each resized so its longest side is `style_size` (0: as is)."""
  out = []
  for spec in styles:
    spec = str(spec)
    if spec.startswith(SYNTHETIC_PREFIX):
      out.append(synthetic_style(spec[len(SYNTHETIC_PREFIX) :], style_size or 256))
      continue
    img = image_io.load_rgb(spec, 'style image')
    h, w = img.shape[:2]
    if style_size and max(h, w) != style_size:
      scale = style_size / max(h, w)
      size = (max(1, round(w * scale)), max(1, round(h * scale)))
      img = np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))
    out.append(img)
  return out


def style_labels(styles: Any) -> list[str]:
  """Short labels for figures: file stems, or the embedded pattern's name."""
  return [
    str(s)[len(SYNTHETIC_PREFIX) :]
    if str(s).startswith(SYNTHETIC_PREFIX)
    else os.path.splitext(os.path.basename(str(s)))[0]
    for s in styles
  ]
