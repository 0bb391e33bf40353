"""VGG19 weights for NST: locate / download / verify the file, load it, and pair it with its preprocessing.

Each weight source was trained on differently prepared input, and feeding one the other's preprocessing
silently degrades NST (nst.md §4), so the loader always returns the preprocessing that matches the weights:
  keras:       RGB -> BGR, minus the Caffe means [103.939, 116.779, 123.68] (B, G, R), 0-255 scale;
  torchvision: RGB, /255, minus (0.485, 0.456, 0.406), divided by (0.229, 0.224, 0.225).
The mean is never folded into conv1_1: zero padding in normalised space is not zero in raw space.

The file's content, not the configured source, decides the format (HDF5 -> Keras, torch.save ->
torchvision) and so the preprocessing. Files under an official name (the cached downloads, or a user's
copy) are checked against the published checksum: size first, then the hash once per file, remembered
in `<file>.verified.json` next to it (size, mtime_ns, digest) so later runs skip the 80-550 MB read.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import urllib.error
import urllib.request
from typing import Any

import jax.numpy as jnp
from tqdm import tqdm

from jaxstyle.errors import ConfigError, UserError
from jaxstyle.models.vgg import WeightFileError
from jaxstyle.ports import keras_h5, torchvision_vgg

log = logging.getLogger(__name__)

KERAS_URL = ('https://storage.googleapis.com/tensorflow/keras-applications/vgg19/'
             'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5')
KERAS_FILE = 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
KERAS_MD5 = '253f8cb515780f3b799900260a226db6'
KERAS_BYTES = 80_134_624
TORCHVISION_URL = 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth'
TORCHVISION_FILE = 'vgg19-dcbb9e9d.pth'
TORCHVISION_SHA256_PREFIX = 'dcbb9e9d'


class WeightDownloadError(UserError, RuntimeError):
  """The weight file could not be fetched or failed its checksum."""


class WeightChecksumError(WeightFileError):
  """A weight file under an official name does not match the published size or hash."""


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """Maps RGB 0-255 NHWC images to the network input the weights expect, and back.

  Attributes:
    source: 'keras' or 'torchvision'.
    channel_order: 'BGR' or 'RGB', the order of the network input channels.
    scale: multiplier applied to 0-255 values before the mean (1.0 or 1/255).
    mean: per-channel mean subtracted, in network channel order, after scaling.
    std: per-channel divisor, in network channel order.
  """
  source: str
  channel_order: str
  scale: float
  mean: tuple[float, float, float]
  std: tuple[float, float, float]

  def preprocess(self, rgb: Any) -> Any:
    """RGB in [0, 255] (float, channels last) -> network input."""
    x = jnp.asarray(rgb, jnp.float32)
    if self.channel_order == 'BGR':
      x = x[..., ::-1]
    return (x * self.scale - jnp.asarray(self.mean, jnp.float32)) / jnp.asarray(self.std, jnp.float32)

  def deprocess(self, x: Any, clip: bool = True) -> Any:
    """Network input -> RGB in [0, 255] float (clipped unless clip=False), as the book's deprocess."""
    x = jnp.asarray(x, jnp.float32)
    x = (x * jnp.asarray(self.std, jnp.float32) + jnp.asarray(self.mean, jnp.float32)) / self.scale
    if self.channel_order == 'BGR':
      x = x[..., ::-1]
    return jnp.clip(x, 0.0, 255.0) if clip else x


PREPROCESSING: dict[str, Preprocessing] = {
    'keras': Preprocessing('keras', 'BGR', 1.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
    'torchvision': Preprocessing(
        'torchvision', 'RGB', 1.0 / 255.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def cache_dir(override: str | os.PathLike | None = None) -> str:
  """`override`, else `$JAXSTYLE_CACHE`, else `~/.cache/jaxstyle`."""
  if override is not None:
    return os.fspath(override)
  return os.environ.get('JAXSTYLE_CACHE') or os.path.join(os.path.expanduser('~'), '.cache', 'jaxstyle')


def _offline_message(url: str, dest: str, reason: Any) -> str:
  return (f'could not download VGG19 weights from {url} ({reason}). Download that file by hand and '
          f'either place it at {dest} or pass its path with --vgg19 PATH.')


def download(url: str, dest: str, *, md5: str | None = None, sha256_prefix: str | None = None,
             progress: bool = True) -> str:
  """Downloads `url` to `dest` through a temp file in the same folder, checking the hash before rename.

  A partial or corrupt download therefore never appears under the final name, and a checksum mismatch
  deletes the temp file.

  Raises:
    WeightDownloadError: offline / HTTP errors (the message gives the URL, `dest` and the --vgg19 flag)
      or a checksum mismatch.
  """
  folder = os.path.dirname(os.path.abspath(dest))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(dest) + '.', suffix='.part')
  hasher = hashlib.md5() if md5 else hashlib.sha256()
  try:
    try:
      with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=60) as resp:
        total = resp.headers.get('Content-Length') if getattr(resp, 'headers', None) else None
        with tqdm(total=int(total) if total else None, unit='B', unit_scale=True,
                  desc=os.path.basename(dest), disable=not progress) as bar:
          while chunk := resp.read(1 << 20):
            out.write(chunk)
            hasher.update(chunk)
            bar.update(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as e:
      raise WeightDownloadError(_offline_message(url, dest, e)) from e
    digest = hasher.hexdigest()
    expected = md5 or sha256_prefix
    if expected and not digest.startswith(expected):
      kind = 'MD5' if md5 else 'SHA-256'
      raise WeightDownloadError(
          f'{kind} mismatch for {url}: got {digest}, expected {expected}; the partial file was deleted. '
          f'Retry, or place a verified copy at {dest} or pass --vgg19 PATH.')
    os.replace(tmp, dest)
    _write_sidecar(dest, hasher.name, digest)  # hashed while downloading: no re-hash on first use
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return dest


def locate(source: str, path: str | os.PathLike | None = None,
           cache: str | os.PathLike | None = None, download_missing: bool = True) -> str:
  """Returns the weight file for `source`: `path` if given, else the cached copy (fetched if absent)."""
  if path is not None:
    return os.fspath(path)
  if source == 'keras':
    url, name, checks = KERAS_URL, KERAS_FILE, {'md5': KERAS_MD5}
  elif source == 'torchvision':
    url, name = TORCHVISION_URL, TORCHVISION_FILE
    checks = {'sha256_prefix': TORCHVISION_SHA256_PREFIX}
  else:
    raise ConfigError(f"unknown VGG19 weight source {source!r}; use 'keras' or 'torchvision'")
  dest = os.path.join(cache_dir(cache), name)
  if os.path.exists(dest):
    return dest
  if not download_missing:
    raise WeightDownloadError(_offline_message(url, dest, 'downloads disabled'))
  return download(url, dest, **checks)


#### Verification: size, then the hash once per file (remembered in a sidecar)

@dataclasses.dataclass(frozen=True)
class Checksum:
  """The published identity of an official weight file; `digest` may be a prefix (torchvision's)."""
  algo: str
  digest: str
  size: int | None
  url: str


def known_checksum(path: str | os.PathLike) -> Checksum | None:
  """The checksum of an official file name (read at call time, so tests can patch the constants)."""
  name = os.path.basename(os.fspath(path))
  if name == KERAS_FILE:
    return Checksum('md5', KERAS_MD5, KERAS_BYTES, KERAS_URL)
  if name == TORCHVISION_FILE:
    return Checksum('sha256', TORCHVISION_SHA256_PREFIX, None, TORCHVISION_URL)
  return None


def sidecar_path(path: str) -> str:
  """Where `verify` remembers a file's hash: next to it, so it travels and is deleted with it."""
  return path + '.verified.json'


def file_digest(path: str, algo: str) -> str:
  """Hex digest of the whole file, read in 1 MiB chunks."""
  h = hashlib.new(algo)
  with open(path, 'rb') as f:
    while chunk := f.read(1 << 20):
      h.update(chunk)
  return h.hexdigest()


def _read_sidecar(path: str) -> dict[str, Any] | None:
  try:
    with open(sidecar_path(path)) as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) else None


def _write_sidecar(path: str, algo: str, digest: str) -> None:
  """Best effort: a read-only folder only means the file is hashed again next time."""
  st = os.stat(path)
  record = {'size': st.st_size, 'mtime_ns': st.st_mtime_ns, 'algo': algo, 'digest': digest}
  side, tmp = sidecar_path(path), None
  try:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(side)),
                               prefix=os.path.basename(side) + '.', suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
      json.dump(record, f)
    os.replace(tmp, side)
  except OSError as e:
    log.info('could not record the checksum of %s in %s (%s); it will be hashed again next run',
             path, side, e)
    if tmp and os.path.exists(tmp):
      os.remove(tmp)


def _mismatch(path: str, what: str, got: Any, want: Any, url: str) -> WeightChecksumError:
  return WeightChecksumError(
      f'{path}: {what} is {got}, expected {want} for the official {os.path.basename(path)}; the '
      f'file is truncated, corrupt or a different file under the official name. Delete it and '
      f're-download (from {url}, or let jaxstyle fetch it by omitting --vgg19), or pass another '
      'VGG19 file with --vgg19 PATH.')


def verify(path: str | os.PathLike) -> bool:
  """Checks a file under an official name against its published size and hash.

  Returns False for other names (not checksum-checked). The size check costs a stat; the hash is
  computed once and recorded in `<file>.verified.json`, valid while size and mtime_ns are unchanged.

  Raises:
    WeightChecksumError: naming the file, the expected and the actual size or digest.
  """
  path = os.fspath(path)
  want = known_checksum(path)
  if want is None:
    return False
  st = os.stat(path)
  if want.size is not None and st.st_size != want.size:
    raise _mismatch(path, 'the size', f'{st.st_size:,} bytes', f'{want.size:,} bytes', want.url)
  record = _read_sidecar(path)
  if (record and record.get('size') == st.st_size and record.get('mtime_ns') == st.st_mtime_ns
      and record.get('algo') == want.algo and str(record.get('digest', '')).startswith(want.digest)):
    return True
  digest = file_digest(path, want.algo)
  if not digest.startswith(want.digest):
    raise _mismatch(path, f'the {want.algo.upper()}', digest, want.digest, want.url)
  _write_sidecar(path, want.algo, digest)
  return True


#### Format: from the file's content

def _check_file(path: str | os.PathLike) -> str:
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise WeightFileError(f'VGG19 weight file {path!r} does not exist (or is not a file); pass an '
                          'existing file with --vgg19 PATH')
  if os.path.getsize(path) == 0:
    raise WeightFileError(f'VGG19 weight file {path!r} is empty; delete it and re-download')
  return path


def detect_format(path: str | os.PathLike) -> str:
  """'keras' for an HDF5 file, 'torchvision' for a torch.save file (zip or legacy pickle).

  Raises:
    WeightFileError: the file is missing, empty, or neither format.
  """
  path = _check_file(path)
  if keras_h5.is_hdf5(path):
    return 'keras'
  if torchvision_vgg.is_torch_checkpoint(path):
    return 'torchvision'
  raise WeightFileError(
      f'{path}: not a VGG19 weight file in an accepted format: expected the Keras notop HDF5 '
      f'({KERAS_FILE}) or a torchvision PyTorch checkpoint ({TORCHVISION_FILE}, zip or legacy '
      'pickle); pass one of those with --vgg19 PATH')


def get_vgg19(source: str = 'keras', path: str | os.PathLike | None = None,
              cache_dir: str | os.PathLike | None = None,
              download: bool = True) -> tuple[dict[str, Any], Preprocessing]:
  """Loads VGG19 conv params for `models.vgg.VGG19` plus the preprocessing those weights expect.

  The file's content decides the loader and the preprocessing; `prep.source` says which was used.
  When it differs from `source` (e.g. a `.pth` given with the default source 'keras'), a warning
  says so: torchvision weights fed Keras preprocessing would silently degrade the result.

  Args:
    source: 'keras' (the book's Caffe-derived weights, BGR) or 'torchvision' (RGB, mean/std); picks
      the file to download when `path` is not given.
    path: an explicit weight file; otherwise the cache (`$JAXSTYLE_CACHE` or ~/.cache/jaxstyle) is used and
      the file is downloaded with a checksum check on first use.
    cache_dir: overrides the cache folder.
    download: allow the first-use download.

  Returns:
    (params, prep): float32 numpy params tree and the matching `Preprocessing`.

  Raises:
    WeightChecksumError: an officially named file fails its size or hash.
    WeightFileError: the file is missing, empty, of neither format, or not VGG19.
  """
  if source not in PREPROCESSING:
    raise ConfigError(f"unknown VGG19 weight source {source!r}; use 'keras' or 'torchvision'")
  file = _check_file(locate(source, path, cache_dir, download))
  verify(file)  # first: a damaged official file gets "delete it and re-download", not "wrong format"
  fmt = detect_format(file)
  if fmt != source:
    log.warning('%s holds %s weights (%s); using the %s loader and preprocessing instead of the '
                'configured vgg.source=%r', file, fmt,
                'HDF5' if fmt == 'keras' else 'PyTorch checkpoint', fmt, source)
  loader = keras_h5.load_vgg19 if fmt == 'keras' else torchvision_vgg.load_vgg19
  return loader(file), PREPROCESSING[fmt]
