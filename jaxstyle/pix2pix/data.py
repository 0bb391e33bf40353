"""pix2pix input: paired sources and a pure (seed, step) batch stream with ONE crop and flip per pair.

Sources (each has `len`, `pair(i) -> (A, B)` uint8 RGB, `name(i)`):
  `AlignedSource`   the reference's `aligned` mode: root/<split>/ holds AB images, A the left half
                    and B the right (split at w // 2, as `aligned_dataset.py`);
  `FolderPairs`     root/<split>A/ and root/<split>B/ whose files match by name (extension aside);
  `SyntheticPairs`  the embedded labels <-> photo pairs (pix2pix/synthetic.py).
Augmentation is the reference's `get_params` + `get_transform` (base_dataset.py): resize both halves
to `load_size` (bicubic), one random crop offset and one flip coin drawn per pair and applied to
both, so A and B stay pixel-aligned (the FAQ's #88 / #156 / #1061). Order: a fresh permutation per
epoch (`serial_batches`: index order), an epoch being n // global batch steps. Every draw comes from
NumPy generators seeded with (seed, purpose, step, item): resume is exact, hosts read disjoint items.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tarfile
import tempfile
from typing import Any

import numpy as np
from PIL import Image

from jaxstyle import image_io
from jaxstyle.cyclegan import data as cyclegan_data
from jaxstyle.errors import BadInputError, UserError
from jaxstyle.pix2pix import presets
from jaxstyle.pix2pix.synthetic import SyntheticPairs

log = logging.getLogger(__name__)
_EPOCH, _AUGMENT = 11, 13  # purposes mixed into the seeds


class PairingError(UserError, ValueError):
  """Paired folders whose files do not match one to one, or an AB image that cannot be split."""


class DatasetMissingError(UserError, FileNotFoundError):
  """A pix2pix data folder that does not exist (the message says how to get it)."""


def _rng(*keys: int) -> np.random.Generator:
  return np.random.default_rng([int(k) % (1 << 32) for k in keys])


def _folder(path: str, what: str) -> cyclegan_data.FolderSource:
  if not os.path.isdir(path):
    raise DatasetMissingError(f'{what} folder not found: {path}')
  return cyclegan_data.FolderSource(path, on_bad_file='error')


class AlignedSource:
  """AB side-by-side images under one folder (recursive, sorted by path)."""

  def __init__(self, folder: str):
    self._src = _folder(folder, 'aligned (AB images)')
    self.paths = self._src.paths

  def __len__(self) -> int:
    return len(self._src)

  def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
    ab = self._src.image(i)
    w2 = ab.shape[1] // 2
    if w2 < 1:
      raise PairingError(f'{self.paths[i]} is {ab.shape[1]} px wide: too narrow to hold A | B')
    return ab[:, :w2], ab[:, w2 : 2 * w2]

  def name(self, i: int) -> str:
    return os.path.basename(self.paths[i])


class FolderPairs:
  """Two folders whose images pair by relative path without extension (a.png <-> a.jpg)."""

  def __init__(self, folder_a: str, folder_b: str):
    a, b = _folder(folder_a, 'paired A'), _folder(folder_b, 'paired B')
    key = lambda root, p: os.path.splitext(os.path.relpath(p, root))[0]
    keys_a = {key(folder_a, p): p for p in a.paths}
    keys_b = {key(folder_b, p): p for p in b.paths}
    for k in sorted(set(keys_a) ^ set(keys_b)):
      path, other = (keys_a[k], folder_b) if k in keys_a else (keys_b[k], folder_a)
      raise PairingError(
        f'{path} has no partner in {other} (pairs match by file name without extension; '
        f'{len(set(keys_a) & set(keys_b))} of {len(keys_a)} A / {len(keys_b)} B files match)'
      )
    self.keys = sorted(keys_a)
    self._a, self._b = keys_a, keys_b

  def __len__(self) -> int:
    return len(self.keys)

  def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
    k = self.keys[i]
    return image_io.load_rgb(self._a[k]), image_io.load_rgb(self._b[k])

  def name(self, i: int) -> str:
    return os.path.basename(self._a[self.keys[i]])


def dataset_root(data_cfg: Any) -> str:
  """`data.root`, or the published dataset in the cache (downloaded here when `data.download`)."""
  if data_cfg.root:
    return data_cfg.root
  from jaxstyle.ports import weight_files  # the cache folder and the checked download

  root = os.path.join(weight_files.cache_dir(), 'datasets', 'pix2pix', data_cfg.name)
  if os.path.isdir(root):
    return root
  if not data_cfg.download:
    raise DatasetMissingError(
      f'no data.root, and pix2pix dataset {data_cfg.name!r} is not in the cache ({root}): pass '
      '--config.data.root=DIR or --config.data.download=True'
    )
  return download(data_cfg.name, root)


def download(name: str, root: str) -> str:
  """Fetches the reference's `<name>.tar.gz` (size-checked, through a temp file), extracts it
  with tarfile's 'data' filter (no absolute paths, links out or devices) and renames the result
  to `root` only when complete: an interrupted download leaves nothing that is later trusted."""
  from jaxstyle.ports import weight_files

  if name == 'cityscapes':
    raise DatasetMissingError(
      'cityscapes cannot be downloaded (license): get gtFine and leftImg8bit from '
      "cityscapes-dataset.com, combine them with the reference's "
      'datasets/prepare_cityscapes_dataset.py and pass --config.data.root=DIR'
    )
  url = presets.DATASET_URL.format(name=name)
  parent = os.path.dirname(root)
  os.makedirs(parent, exist_ok=True)
  hint = weight_files.Hint(network=f'pix2pix dataset {name}', flag='--config.data.root')
  tmp = tempfile.mkdtemp(dir=parent, prefix=f'.{name}.')
  try:
    try:
      archive = weight_files.download(
        url, os.path.join(tmp, f'{name}.tar.gz'), hint, size_range=presets.DATASETS[name][1]
      )
    except weight_files.WeightDownloadError as e:  # its advice names the temp path: replace it
      reason = str(e)
      for cut in (' Download that file by hand', ' Retry, or place'):
        reason = reason.split(cut)[0]
      raise DatasetMissingError(
        f'{reason} Retry, or download {url} by hand, extract it and pass '
        f'--config.data.root=<the extracted {name}/ folder>'
      ) from e
    try:
      with tarfile.open(archive, 'r:gz') as tar:
        tar.extractall(tmp, filter='data')
    except (tarfile.TarError, OSError, EOFError) as e:
      raise BadInputError(f'{url}: not a readable .tar.gz ({e}); nothing was kept') from e
    inner = os.path.join(tmp, name)
    if not os.path.isdir(inner):
      raise BadInputError(f'{url}: the archive has no {name}/ folder; nothing was kept')
    os.replace(inner, root)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  log.info('pix2pix dataset %s is in %s', name, root)
  return root


def make_source(data_cfg: Any, split: str) -> Any:
  """The paired source of `split` ('train', 'val' or 'test'; synthetic has train and test)."""
  if data_cfg.source == 'synthetic':
    res = data_cfg.synthetic_resolution or data_cfg.image_size
    n = data_cfg.synthetic_size if split == 'train' else max(data_cfg.synthetic_size // 4, 1)
    return SyntheticPairs('train' if split == 'train' else 'test', n, res, data_cfg.seed)
  root = dataset_root(data_cfg)
  if data_cfg.source == 'aligned':
    return AlignedSource(os.path.join(root, split))
  if data_cfg.source == 'folders':
    return FolderPairs(os.path.join(root, f'{split}A'), os.path.join(root, f'{split}B'))
  raise ValueError(f'unknown data source {data_cfg.source!r}; expected {presets.SOURCES}')


def steps_per_epoch(n: int, global_batch: int) -> int:
  return max(1, n // global_batch)


@functools.lru_cache(maxsize=8)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  return _rng(seed, _EPOCH, epoch).permutation(n)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
  return cyclegan_data.resize(image_io.as_rgb(img), size, Image.BICUBIC)


def transform_pair(
  data_cfg: Any, a: np.ndarray, b: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
  """One training view of a pair: the same resize, crop offset and flip for both halves."""
  s, mode = data_cfg.image_size, data_cfg.preprocess
  big = data_cfg.load_size if mode == 'resize_and_crop' else s
  a, b = _resize(a, big), _resize(b, big)
  oy, ox = (rng.integers(0, big - s + 1, size=2) if big > s else (0, 0))  # fmt: skip
  a, b = a[oy : oy + s, ox : ox + s], b[oy : oy + s, ox : ox + s]
  flip = bool(rng.random() < 0.5)  # drawn even with no_flip, so the stream does not shift
  if flip and not data_cfg.no_flip:
    a, b = a[:, ::-1], b[:, ::-1]
  return a, b


def eval_pair(data_cfg: Any, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Test-time view: both halves squashed to image_size, no crop, no flip (the reference's
  TestOptions set load_size = crop_size and no_flip)."""
  s = data_cfg.image_size
  return _resize(a, s), _resize(b, s)


def orient(data_cfg: Any, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(input, target) of a pair for `data.direction` (AtoB: A is the input)."""
  return (a, b) if data_cfg.direction == 'AtoB' else (b, a)


def batch_at(
  data_cfg: Any,
  source: Any,
  step: int,
  global_batch: int,
  process_index: int = 0,
  process_count: int = 1,
) -> dict[str, np.ndarray]:
  """This process's slice of step `step`'s batch: {'input', 'target'} float32 in [-1, 1]."""
  if global_batch % process_count:
    raise ValueError(f'global batch {global_batch} is not divisible by {process_count} processes')
  local = global_batch // process_count
  n = len(source)
  per_epoch = steps_per_epoch(n, global_batch) * global_batch
  xs, ys = [], []
  for j in range(process_index * local, (process_index + 1) * local):
    epoch, k = divmod(step * global_batch + j, per_epoch)
    i = k % n if data_cfg.serial_batches else int(_permutation(data_cfg.seed, epoch, n)[k % n])
    a, b = transform_pair(data_cfg, *source.pair(i), _rng(data_cfg.seed, _AUGMENT, step, j))
    x, y = orient(data_cfg, a, b)
    xs.append(x)
    ys.append(y)
  return {'input': image_io.to_float(np.stack(xs)), 'target': image_io.to_float(np.stack(ys))}


def train_stream(
  data_cfg: Any, source: Any, start: int, global_batch: int, pi: int, pc: int
) -> cyclegan_data.TrainStream:
  """CycleGAN's prefetching iterator over this module's `batch_at`."""
  return cyclegan_data.TrainStream(
    data_cfg,
    source,
    start,
    global_batch,
    pi,
    pc,
    data_cfg.prefetch,
    data_cfg.num_workers,
    batch_fn=batch_at,
  )
