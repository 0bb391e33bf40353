"""CycleGAN input pipeline: unpaired sources (synthetic, TFDS, image folders) and a pure batch stream.

The stream is a pure function of (seed, step): `batch_at(cfg, sources, step, ...)` derives every
random choice (A's per-epoch permutation, B's random index, crop offsets, flips) from NumPy
generators seeded with `[seed, purpose, step, item, domain]`, never from history. Resume is exact
by construction, and each host computes only its slice of the global batch: process p takes items
[p * local, (p + 1) * local). `TrainStream` runs `batch_at` ahead of the device in worker threads
(PIL decoding and resizing release the GIL).

Order (junyanz `unaligned_dataset.py`): an epoch is max(#A, #B) // batch steps (`epoch_rule='max'`;
the book uses min); A is visited in a fresh permutation each epoch, B is a uniformly random index
per item unless `serial_batches` (then both are index % size).

Augmentation: `reference` = bicubic resize to `load_size` (286 for 256 crops), random crop
`image_size`, random h-flip, with independent draws for A and B; `book` = bilinear resize to
`image_size` (scipy's `imresize` default, which the book's loader used) + h-flip, one coin per
domain unless `book_exact_flip` (the book's shared coin); `none` = bicubic resize only.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import logging
import os
from typing import Any

import numpy as np
from PIL import Image

from jaxstyle import image_io
from jaxstyle.cyclegan import synthetic
from jaxstyle.errors import BadInputError, UserError

log = logging.getLogger(__name__)

# Purposes mixed into the seed so the random streams never collide.
_EPOCH, _INDEX, _AUGMENT = 1, 2, 3
_SHARED_FLIP = 2  # "domain" code of the single coin used by `book_exact_flip`


def _rng(*keys: int) -> np.random.Generator:
  return np.random.default_rng([int(k) % (1 << 32) for k in keys])


#### Sources


class FolderNotFoundError(UserError, FileNotFoundError):
  """An image folder the config names does not exist."""


class DatasetUnavailableError(UserError, RuntimeError):
  """A TFDS dataset that is not prepared where the config says (the message says how to)."""


class FolderSource:
  """Image files under one folder (recursive, sorted), decoded lazily with Pillow.

  Decoding is `image_io.load_rgb` (EXIF orientation, grey, palette, 16-bit; alpha dropped as the
  reference does). Files with a non-image extension are ignored. Files whose header Pillow cannot
  parse are found at construction; a file that fails later, while decoding, is found at read
  time. Either way, `on_bad_file='error'` raises naming the path and 'skip' logs the path and
  drops it (at read time it deterministically substitutes the next file, so the stream stays a
  function of step).
  """

  def __init__(self, folder: str, on_bad_file: str = 'skip'):
    if on_bad_file not in ('skip', 'error'):
      raise ValueError(f"on_bad_file must be 'skip' or 'error', got {on_bad_file!r}")
    if not os.path.isdir(folder):
      raise FolderNotFoundError(
        f"image folder not found: {folder} (data.source='folder' needs "
        'data.root with trainA/ trainB/ testA/ testB/)'
      )
    self.folder, self.on_bad_file = folder, on_bad_file
    exts = {e.lower() for e in Image.registered_extensions()}
    paths = []
    for d, dirs, files in os.walk(folder):
      dirs[:] = sorted(x for x in dirs if not x.startswith('.'))
      paths += [
        os.path.join(d, f)
        for f in files
        if not f.startswith('.') and os.path.splitext(f)[1].lower() in exts
      ]
    self.paths = []
    for p in sorted(paths):
      try:
        with Image.open(p) as im:
          im.size  # noqa: B018 -- forces the header parse
      except Exception as e:  # noqa: BLE001 -- any failure means "unreadable"
        self._bad(p, e)
        continue
      self.paths.append(p)
    if not self.paths:
      raise BadInputError(f'no readable images in {folder}')

  def _bad(self, path: str, err: Exception) -> None:
    msg = f'unreadable image file {path}: {type(err).__name__}: {err}'
    if self.on_bad_file == 'error':
      raise BadInputError(
        f"{msg} (data.on_bad_file='error'; set it to 'skip' to train without such files)"
      ) from err
    log.warning("%s (skipped; on_bad_file='skip')", msg)

  def __len__(self) -> int:
    return len(self.paths)

  def image(self, i: int) -> np.ndarray:
    for k in range(len(self.paths)):
      path = self.paths[(i + k) % len(self.paths)]
      try:
        return image_io.load_rgb(path)
      except Exception as e:  # noqa: BLE001
        self._bad(path, e)
    raise BadInputError(f'no decodable image in {self.folder}')


class TfdsSource:
  """One split of TFDS `cycle_gan/<name>` (or any dataset with an 'image' feature) via `tfds.data_source` (random access, no TensorFlow).

  `tfds.data_source` needs the dataset prepared in the ArrayRecord format; a TFRecord build or a
  missing build raises a RuntimeError that says how to prepare it.
  """

  def __init__(self, name: str, split: str, data_dir: str = '', download: bool = False):
    import tensorflow_datasets as tfds  # imported here: ~1 s, and only TFDS runs need it

    # "apple2orange" -> cycle_gan/apple2orange; a full name ("coco/2017") is used as it is.
    full = name if '/' in name else f'cycle_gan/{name}'
    kwargs: dict[str, Any] = dict(split=split, data_dir=data_dir or None, download=download)
    if download:
      kwargs['builder_kwargs'] = {'file_format': 'array_record'}
    try:
      self._ds = tfds.data_source(full, **kwargs)
    except Exception as e:  # noqa: BLE001 -- re-raised with instructions
      raise DatasetUnavailableError(
        f'TFDS dataset {full} (split {split}) is not available for random access in '
        f'data_dir={data_dir or "<TFDS default>"}: {type(e).__name__}: {e}\n'
        f'Prepare it once with network access, in ArrayRecord format:\n'
        f'  tfds build {full} --file_format=array_record [--data_dir DIR]\n'
        f'or copy a prepared copy here and pass --config.data.data_dir=DIR, or set '
        f"--config.data.tfds_download=True, or use source='folder' with trainA/ trainB/ "
        f'testA/ testB/.'
      ) from e
    self.name, self.split = full, split

  def __len__(self) -> int:
    return len(self._ds)

  def image(self, i: int) -> np.ndarray:
    return image_io.as_rgb(self._ds[int(i)]['image'])


def make_sources(data_cfg: Any, split: str) -> dict[str, Any]:
  """{'A': source, 'B': source} for split 'train' or 'test'."""
  if split not in ('train', 'test'):
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")
  kind = data_cfg.source
  if kind == 'synthetic':
    res = data_cfg.synthetic_resolution or data_cfg.image_size
    return {
      d: synthetic.SyntheticDomain(d, split, data_cfg.synthetic_size, res, data_cfg.seed)
      for d in ('A', 'B')
    }
  if kind == 'tfds':
    return {
      d: TfdsSource(data_cfg.name, f'{split}{d}', data_cfg.data_dir, data_cfg.tfds_download)
      for d in ('A', 'B')
    }
  if kind == 'folder':
    return {
      d: FolderSource(os.path.join(data_cfg.root, f'{split}{d}'), data_cfg.on_bad_file)
      for d in ('A', 'B')
    }
  raise ValueError(f'unknown data source {kind!r}; expected synthetic, tfds or folder')


#### Order: which A and B image each item of each step reads


def steps_per_epoch(data_cfg: Any, sources: dict[str, Any], global_batch: int) -> int:
  """Steps in one epoch: max(#A, #B) // batch (reference) or min(...) // batch (book), >= 1."""
  sizes = (len(sources['A']), len(sources['B']))
  rule = data_cfg.epoch_rule
  if rule not in ('max', 'min'):
    raise ValueError(f"epoch_rule must be 'max' or 'min', got {rule!r}")
  n = max(sizes) if rule == 'max' else min(sizes)
  return max(1, n // global_batch)


@functools.lru_cache(maxsize=8)
def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  return _rng(seed, _EPOCH, epoch).permutation(n)


def item_indices(
  data_cfg: Any, sources: dict[str, Any], step: int, global_batch: int, items: range
) -> tuple[list[int], list[int]]:
  """(A indices, B indices) read by `items` (positions within the global batch) at `step`."""
  n_a, n_b = len(sources['A']), len(sources['B'])
  per_epoch = steps_per_epoch(data_cfg, sources, global_batch) * global_batch
  idx_a, idx_b = [], []
  for j in items:
    epoch, k = divmod(step * global_batch + j, per_epoch)
    if data_cfg.serial_batches:
      idx_a.append(k % n_a)
      idx_b.append(k % n_b)
      continue
    # A permutation over max(#A, epoch items): each A image once per epoch when the epoch is
    # shorter than A (book), index % #A when it is longer (reference, as `unaligned_dataset`).
    idx_a.append(int(_epoch_permutation(data_cfg.seed, epoch, max(n_a, per_epoch))[k]) % n_a)
    idx_b.append(int(_rng(data_cfg.seed, _INDEX, step, j).integers(n_b)))
  return idx_a, idx_b


#### Augmentation


def load_size(data_cfg: Any) -> int:
  """The reference pre-crop size: `load_size`, or 286/256 of the crop when 0."""
  return data_cfg.load_size or int(round(data_cfg.image_size * 286 / 256))


def resize(img: np.ndarray, size: int, resample: int = Image.BICUBIC) -> np.ndarray:
  """Square resize with Pillow (a no-op when the size already matches)."""
  if img.shape[0] == size and img.shape[1] == size:
    return img
  return np.asarray(Image.fromarray(img).resize((size, size), resample))


def augment(
  data_cfg: Any, img: np.ndarray, rng: np.random.Generator, flip: bool | None = None
) -> np.ndarray:
  """One training view of `img` (uint8 HxWx3) -> uint8 SxSx3; `flip` overrides the own coin."""
  mode, s = data_cfg.augment, data_cfg.image_size
  if mode == 'reference':
    big = load_size(data_cfg)
    img = resize(img, big, Image.BICUBIC)
    oy, ox = rng.integers(0, big - s + 1, size=2)
    img = img[oy : oy + s, ox : ox + s]
  elif mode == 'book':
    img = resize(img, s, Image.BILINEAR)
  elif mode == 'none':
    return resize(img, s, Image.BICUBIC)
  else:
    raise ValueError(f"augment must be 'book', 'reference' or 'none', got {mode!r}")
  coin = bool(rng.random() < 0.5)  # drawn even when overridden, so the stream does not shift
  if coin if flip is None else flip:
    img = img[:, ::-1]
  return img


def eval_image(data_cfg: Any, img: np.ndarray) -> np.ndarray:
  """Test-time view: squashed to image_size (bicubic), as the reference test loader does."""
  return resize(image_io.as_rgb(img), data_cfg.image_size, Image.BICUBIC)


def batch_at(
  data_cfg: Any,
  sources: dict[str, Any],
  step: int,
  global_batch: int,
  process_index: int = 0,
  process_count: int = 1,
) -> dict[str, np.ndarray]:
  """This process's slice of the global batch of `step`: {'A', 'B'} float32 in [-1, 1]."""
  if global_batch % process_count:
    raise ValueError(f'global batch {global_batch} is not divisible by {process_count} processes')
  local = global_batch // process_count
  items = range(process_index * local, (process_index + 1) * local)
  idx = dict(zip('AB', item_indices(data_cfg, sources, step, global_batch, items)))
  out = {}
  for code, d in enumerate('AB'):
    views = []
    for j, i in zip(items, idx[d]):
      flip = None
      if data_cfg.book_exact_flip:
        flip = bool(_rng(data_cfg.seed, _AUGMENT, step, j, _SHARED_FLIP).random() < 0.5)
      views.append(
        augment(data_cfg, sources[d].image(i), _rng(data_cfg.seed, _AUGMENT, step, j, code), flip)
      )
    out[d] = image_io.to_float(np.stack(views))
  return out


#### Prefetching iterator


class TrainStream:
  """Iterator over `batch_at(step)` for step = start_step, start_step + 1, ...

  Up to `prefetch` future batches are computed by a thread pool while the device trains, in
  step order. Exceptions in workers surface on `next()`. Use as a context manager or call
  `close()`; `step` is the step of the batch the next `next()` returns.
  """

  def __init__(
    self,
    data_cfg: Any,
    sources: Any,
    start_step: int,
    global_batch: int,
    process_index: int = 0,
    process_count: int = 1,
    prefetch: int = 2,
    num_workers: int | None = None,
    batch_fn: Any = None,
  ):
    # `batch_fn(data_cfg, sources, step, global_batch, process_index, process_count)`: this
    # module's `batch_at` by default; the fast-style task passes its own.
    self._fn = batch_fn or batch_at
    self._args = (data_cfg, sources)
    self._batch = (global_batch, process_index, process_count)
    self.step = int(start_step)
    self._next_submit = int(start_step)
    self._prefetch = max(0, int(prefetch))
    workers = num_workers or data_cfg.get('num_workers', 0) or max(1, self._prefetch)
    self._pool = concurrent.futures.ThreadPoolExecutor(
      max_workers=workers, thread_name_prefix='jaxstyle-data'
    )
    self._pending: collections.deque = collections.deque()
    self._closed = False
    for _ in range(self._prefetch):
      self._submit()

  def _submit(self) -> None:
    gb, pi, pc = self._batch
    fut = self._pool.submit(self._fn, *self._args, self._next_submit, gb, pi, pc)
    self._pending.append(fut)
    self._next_submit += 1

  def __iter__(self) -> TrainStream:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._closed:
      raise StopIteration
    if not self._pending:
      self._submit()
    fut = self._pending.popleft()
    if self._prefetch:
      self._submit()  # keep the queue full while we wait
    batch = fut.result()
    self.step += 1
    return batch

  def close(self) -> None:
    """Stops the workers; pending batches are cancelled (running ones finish and are dropped)."""
    if self._closed:
      return
    self._closed = True
    for fut in self._pending:
      fut.cancel()
    self._pending.clear()
    self._pool.shutdown(wait=True, cancel_futures=True)

  def __enter__(self) -> TrainStream:
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()

  def __del__(self) -> None:
    try:
      self.close()
    except Exception:  # noqa: BLE001 -- interpreter shutdown
      pass
