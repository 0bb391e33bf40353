"""Inception pool3 features of many images: one jitted program, data-parallel over every device.

The FID Inception is ~5.7 GFLOP per image, so a test split of a few hundred images is already
minutes on a CPU: the forward runs under `shard_map` over the mesh's `data` axis (params
replicated, images split), with the next batch decoded by a thread pool while the devices work.
Any image count works: the last batch is padded to the compiled batch size and the padding's
features are dropped. One program is compiled per input size (images are resized to 299x299
inside it, as pytorch-fid does per batch).

Files are read as pytorch-fid reads them (`Image.open(p).convert('RGB')`, then /255 in float32),
so features of a folder match its `--save-stats` numbers up to float rounding. In clean-fid's mode
(`mode='clean'`, see `fid.resize`) every image is resized to 299x299 on the host by the decode
threads instead, so one program serves every input size.

With `logits=True` the same forward pass also returns the 1008-way unbiased logits (the Inception
Score's input): rows are then 2048 features followed by 1008 logits (`split_outputs`).
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from jaxstyle import image_io, parallel
from jaxstyle.errors import BadInputError, UserError
from jaxstyle.fid import resize
from jaxstyle.models import inception
from jaxstyle.models.inception import FEATURE_DIM, FIDInceptionV3

# pytorch-fid's IMAGE_EXTENSIONS (matched case-insensitively here; pytorch-fid's glob is
# case-sensitive, so it silently skips `.JPG`).
IMAGE_EXTENSIONS = ('bmp', 'jpg', 'jpeg', 'pgm', 'png', 'ppm', 'tif', 'tiff', 'webp')
DEFAULT_BATCH = 50  # pytorch-fid's --batch-size default


class FeatureExtractor:
  """Callable: (N, H, W, 3) uint8 or [0, 1] float images -> (N, 2048) float32 pool3 features.

  Args:
    params: `{'params': ...}` of `FIDInceptionV3` (e.g. from `jaxstyle.fid.weights.load_params`).
    mesh: the devices to shard over (default: every device, `parallel.make_mesh()`).
    batch_size: images per program call over all devices, rounded up to a multiple of the
      device count. Sets smaller than one batch run as one smaller batch (no padding to 50).
    mode: 'pytorch-fid' or 'clean' (`fid.resize`).
    logits: also return the unbiased logits (rows of 2048 + 1008; needs the `fc` params).
  """

  def __init__(
    self,
    params: Any,
    mesh: jax.sharding.Mesh | None = None,
    batch_size: int = DEFAULT_BATCH,
    mode: str = resize.DEFAULT_MODE,
    logits: bool = False,
  ):
    self.mesh = mesh if mesh is not None else parallel.make_mesh()
    self.n_devices = self.mesh.size
    self.batch_size = -(-max(1, batch_size) // self.n_devices) * self.n_devices
    self.mode, self.logits = resize.check_mode(mode), logits
    if logits and not inception.has_logits(params):
      raise UserError(
        'the Inception Score needs the 1008-way classifier (fc) of the Inception weights, '
        'and these weights have none (a port made before it was kept? port the .pth again)'
      )
    self.out_dim = FEATURE_DIM + inception.NUM_CLASSES * logits
    clean = self.mode == 'clean'
    model = FIDInceptionV3(resize_input=not clean, logits=logits)

    def per_device(params: Any, images: jax.Array) -> jax.Array:
      x = images.astype(jnp.float32)
      if clean:
        x = (x - 128.0) / 128.0  # clean-fid: already 299x299 in [0, 255] (`prepare`)
      elif images.dtype == jnp.uint8:
        x = x / 255.0  # torchvision ToTensor
      out = model.apply(params, x)
      return jnp.concatenate(out, axis=-1) if logits else out

    self._forward = jax.jit(
      jax.shard_map(
        per_device,
        mesh=self.mesh,
        in_specs=(P(), P(parallel.DATA_AXIS)),
        out_specs=P(parallel.DATA_AXIS),
        check_vma=False,
      )
    )
    self._images = NamedSharding(self.mesh, P(parallel.DATA_AXIS))
    self.params = parallel.place(
      params, jax.tree.map(lambda _: NamedSharding(self.mesh, P()), params)
    )

  def prepare(self, images: np.ndarray) -> np.ndarray:
    """The host-side part of the mode: clean-fid's resize of [0, 255] images (float [0, 1]
    input is scaled by 255 first); the identity for pytorch-fid, which resizes on the device."""
    if self.mode != 'clean':
      return images
    if images.dtype != np.uint8:
      images = np.asarray(images, np.float32) * 255.0
    return resize.clean_resize_batch(images)

  def batch_for(self, n: int) -> int:
    """The compiled batch for a set of n images: the full batch, or n rounded up to the devices."""
    return min(self.batch_size, -(-n // self.n_devices) * self.n_devices)

  def _run(self, chunk: np.ndarray, batch: int) -> jax.Array:
    if chunk.shape[0] < batch:
      pad = np.zeros((batch - chunk.shape[0], *chunk.shape[1:]), chunk.dtype)
      chunk = np.concatenate([chunk, pad])
    return self._forward(self.params, parallel.place(chunk, self._images))

  def __call__(self, images: np.ndarray, desc: str | None = None) -> np.ndarray:
    """Features of one array of same-sized images (any count; the last batch padded); `desc`
    shows a progress bar."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise BadInputError(f'expected (N, H, W, 3) images, got an array of shape {images.shape}')
    n = len(images)
    with tqdm(total=n, desc=desc, unit='img', disable=desc is None) as bar:
      chunks = (self.prepare(images[i : i + self.batch_size]) for i in range(0, n, self.batch_size))
      return self.features_of_chunks(chunks, n, done=bar.update)

  def features_of_chunks(
    self, chunks: Iterator[np.ndarray], n: int, done: Callable[[int], Any] = lambda k: None
  ) -> np.ndarray:
    """Features of `n` same-sized images arriving in chunks of at most `batch_size`.

    Each chunk is dispatched before the previous result is fetched, so the host prepares the next
    batch while the devices compute; `done(k)` is called as each chunk's k features arrive (a
    progress bar then counts finished images, not dispatched ones).
    """
    batch = self.batch_for(n)
    pending, out = [], []

    def fetch() -> None:
      out.append(_to_host(*pending.pop(0)))
      done(len(out[-1]))

    for chunk in chunks:
      pending.append((self._run(chunk, batch), len(chunk)))
      if len(pending) > 1:
        fetch()
    while pending:
      fetch()
    return np.concatenate(out) if out else np.zeros((0, self.out_dim), np.float32)


def split_outputs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
  """(features (N, 2048), logits (N, 1008) or None) of an extractor's output rows."""
  if rows.shape[-1] == FEATURE_DIM:
    return rows, None
  return rows[:, :FEATURE_DIM], rows[:, FEATURE_DIM:]


def _to_host(features: jax.Array, keep: int) -> np.ndarray:
  """The first `keep` rows (the rest is padding) on this host, from every host's devices."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    features = multihost_utils.process_allgather(features, tiled=True)
  return np.asarray(features)[:keep]


#### Folders


def list_images(folder: str) -> list[str]:
  """The image files directly in `folder` (pytorch-fid's extensions), sorted; one-line errors."""
  if not os.path.isdir(folder):
    raise BadInputError(f'{folder}: not a folder of images (or a .npz of FID statistics)')
  files = sorted(
    os.path.join(folder, name)
    for name in os.listdir(folder)
    if name.rsplit('.', 1)[-1].lower() in IMAGE_EXTENSIONS
    and '.' in name
    and os.path.isfile(os.path.join(folder, name))
  )
  if not files:
    raise BadInputError(
      f'{folder}: no images ({", ".join(IMAGE_EXTENSIONS)}) in this folder; '
      'FID reads the files directly inside it, not in sub-folders'
    )
  return files


def _size(path: str) -> tuple[int, int]:
  try:
    return image_io.upright_size(path, plain=True)
  except ValueError as err:
    raise BadInputError(f'{err} (FID uses every image of the folder: remove or fix it)') from err


def _load(path: str) -> np.ndarray:
  try:
    return image_io.load_rgb(path, plain=True)
  except ValueError as err:
    raise BadInputError(f'{err} (FID uses every image of the folder: remove or fix it)') from err


def read_sizes(files: Sequence[str]) -> list[tuple[int, int]]:
  """(H, W) of every file from its header: unreadable files and too-small sets fail here, in
  seconds, before the weights are loaded or minutes of compute are spent."""
  sizes = [_size(f) for f in files]
  if len(files) < 2:
    raise BadInputError(
      f'FID needs at least 2 images, got {len(files)}' + (f' ({files[0]})' if files else '')
    )
  return sizes


def files_features(
  files: Sequence[str],
  extractor: FeatureExtractor,
  progress: bool = True,
  desc: str = 'Inception features',
  workers: int = 8,
  sizes: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray:
  """Features of image files in the given order; files of one size share a compiled program.

  A file whose pixels fail to decode after a good header (a truncated JPEG) fails naming it
  too: FID of a partial set would mislead.
  """
  sizes = read_sizes(files) if sizes is None else sizes
  if extractor.mode == 'clean':  # resized on the host: one size, one program
    sizes = [resize.SIZE] * len(files)
  groups: dict[tuple[int, int], list[int]] = {}
  for i, size in enumerate(sizes):
    groups.setdefault(size, []).append(i)
  out = np.zeros((len(files), extractor.out_dim), np.float32)

  def load(path: str) -> np.ndarray:
    image = _load(path)
    return resize.clean_resize(image) if extractor.mode == 'clean' else image

  with (
    concurrent.futures.ThreadPoolExecutor(workers) as decode,
    concurrent.futures.ThreadPoolExecutor(1) as prefetch,
    tqdm(total=len(files), desc=desc, unit='img', disable=not progress) as bar,
  ):

    def load_batch(part: list[int]) -> np.ndarray:
      return np.stack(list(decode.map(load, (files[j] for j in part))))

    def chunks(parts: list[list[int]]) -> Iterator[np.ndarray]:
      future = prefetch.submit(load_batch, parts[0])
      for k in range(len(parts)):
        images = future.result()
        if k + 1 < len(parts):  # decode the next batch while this one runs
          future = prefetch.submit(load_batch, parts[k + 1])
        yield images

    for idx in groups.values():
      step = extractor.batch_for(len(idx))
      parts = [idx[i : i + step] for i in range(0, len(idx), step)]
      out[idx] = extractor.features_of_chunks(chunks(parts), len(idx), done=bar.update)
  return out


def folder_features(folder: str, extractor: FeatureExtractor, progress: bool = True) -> np.ndarray:
  """Features of every image directly in `folder` (see `list_images`)."""
  return files_features(
    list_images(folder),
    extractor,
    progress,
    desc=os.path.basename(os.path.normpath(folder)) or folder,
  )
