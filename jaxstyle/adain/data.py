"""AdaIN input: content images, style images, and a batch stream that is a pure function of step.

Content sources are the fast-style task's (embedded synthetic scenes, a folder, TFDS); styles
are a folder or the embedded patterns (`fast_style.data.synthetic_style`), each variant
recoloured and zoomed so a few patterns make many styles; the held-out split draws other
variants. Item j of step s reads content perm(seed, epoch)[k] with (epoch, k) =
divmod(s·B + j, #content) and style perm'(seed, epoch')[k'] likewise, so a resumed run sees the
batches an uninterrupted one would and each host computes only its slice. Training views follow
the reference (`transforms.Resize((512, 512))`, `RandomCrop(256)`): squashed to load_size²
(bilinear), a random crop whose offsets are drawn from (seed, step, j); held-out views are the
fast-style ones (shorter side to image_size, centre crop). Values are float32 in [0, 255].
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from PIL import Image

from jaxstyle import image_io
from jaxstyle.cyclegan.data import FolderSource, TrainStream
from jaxstyle.fast_style.data import content_view, make_source, synthetic_style
from jaxstyle.fast_style.presets import SYNTHETIC_STYLES

__all__ = ['batch_at', 'held_out', 'make_source', 'make_stream', 'make_style_source']

# Purpose codes mixed into the seeds (distinct from the other tasks' streams).
_CONTENT, _STYLE, _CROP, _PATTERN = 21, 22, 23, 24


def _rng(*keys: int) -> np.random.Generator:
  return np.random.default_rng([int(k) % (1 << 32) for k in keys])


class SyntheticStyles:
  """Variants of the embedded patterns: channels permuted, maybe inverted, zoomed into.

  Variant i of a split is a pure function of (seed, split, i); 'train' and 'test' draw from
  separate streams, so held-out styles are patterns the decoder never saw in those colours and
  scales.
  """

  def __init__(self, split: str, n: int, size: int, seed: int = 0):
    self._split, self._n, self._size, self._seed = ('train', 'test').index(split), n, size, seed

  def __len__(self) -> int:
    return self._n

  def image(self, i: int) -> np.ndarray:
    rng = _rng(self._seed, _PATTERN, self._split, i)
    zoom = rng.uniform(1.0, 3.0)  # the pattern drawn at zoom × size, a size² window of it
    big = synthetic_style(SYNTHETIC_STYLES[i % len(SYNTHETIC_STYLES)], round(self._size * zoom))
    top, left = rng.integers(0, big.shape[0] - self._size + 1, size=2)
    img = big[top : top + self._size, left : left + self._size][..., rng.permutation(3)]
    return 255 - img if rng.random() < 0.5 else img


def make_style_source(config: Any, split: str) -> Any:
  """The style images of split 'train' or 'test' (held out): len() and image(i)."""
  s = config.style
  if s.source == 'synthetic':
    n = s.synthetic_size if split == 'train' else max(config.num_sample_styles, 1)
    return SyntheticStyles(split, n, config.data.load_size, config.data.seed)
  if s.source == 'folder':
    root = s.test_root if split == 'test' and s.test_root else s.root
    return FolderSource(root, config.data.on_bad_file)
  raise ValueError(f'unknown style source {s.source!r}; expected synthetic or folder')


def train_view(img: np.ndarray, load_size: int, size: int, rng: np.random.Generator) -> np.ndarray:
  """Squashed to load_size² (bilinear, as torchvision's Resize), a random size² crop: uint8."""
  img = image_io.as_rgb(img)
  if img.shape[:2] != (load_size, load_size):
    img = np.asarray(Image.fromarray(img).resize((load_size, load_size), Image.BILINEAR))
  top, left = rng.integers(0, load_size - size + 1, size=2)
  return img[top : top + size, left : left + size]


@functools.lru_cache(maxsize=16)
def _permutation(seed: int, purpose: int, epoch: int, n: int) -> np.ndarray:
  return _rng(seed, purpose, epoch).permutation(n)


def batch_at(
  config: Any,
  sources: tuple[Any, Any],
  step: int,
  global_batch: int,
  process_index: int = 0,
  process_count: int = 1,
) -> dict[str, np.ndarray]:
  """This process's slice of step `step`: {'content', 'style'}, f32 (n, S, S, 3) in [0, 255].

  `sources` is (content source, style source); the signature is `cyclegan.data.batch_at`'s so
  the same `TrainStream` runs it ahead of the device.
  """
  if global_batch % process_count:
    raise ValueError(f'global batch {global_batch} is not divisible by {process_count} processes')
  d, local = config.data, global_batch // process_count
  out: dict[str, list] = {'content': [], 'style': []}
  for j in range(process_index * local, (process_index + 1) * local):
    item = step * global_batch + j
    for code, (key, source) in enumerate(zip(out, sources)):
      epoch, k = divmod(item, len(source))
      index = int(_permutation(d.seed, (_CONTENT, _STYLE)[code], epoch, len(source))[k])
      rng = _rng(d.seed, _CROP, step, j, code)
      out[key].append(train_view(source.image(index), d.load_size, d.image_size, rng))
  return {k: np.stack(v).astype(np.float32) for k, v in out.items()}


def make_stream(
  config: Any,
  sources: tuple[Any, Any],
  start_step: int,
  global_batch: int,
  process_index: int,
  process_count: int,
) -> TrainStream:
  """`batch_at` for start_step, start_step + 1, ... computed ahead by worker threads."""
  return TrainStream(
    config,
    sources,
    start_step,
    global_batch,
    process_index,
    process_count,
    config.data.prefetch,
    config.data.num_workers,
    batch_fn=batch_at,
  )


def held_out(source: Any, n: int, size: int) -> np.ndarray:
  """The first `n` images of a held-out source as size² centre views (float32 [0, 255])."""
  n = min(max(n, 1), len(source))
  return np.stack([content_view(source.image(i), size) for i in range(n)]).astype(np.float32)
