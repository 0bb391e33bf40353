"""VGG19 weights for NST: locate / download / verify the file, load it, and pair it with its preprocessing.

Each weight source was trained on differently prepared input, and feeding one the other's preprocessing
silently degrades NST (nst.md §4), so the loader always returns the preprocessing that matches the weights:
  keras:       RGB -> BGR, minus the Caffe means [103.939, 116.779, 123.68] (B, G, R), 0-255 scale;
  torchvision: RGB, /255, minus (0.485, 0.456, 0.406), divided by (0.229, 0.224, 0.225).
The mean is never folded into conv1_1: zero padding in normalised space is not zero in raw space.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from typing import Any

import jax.numpy as jnp
from tqdm import tqdm

from jaxstyle.ports import keras_h5, torchvision_vgg

KERAS_URL = ('https://storage.googleapis.com/tensorflow/keras-applications/vgg19/'
             'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5')
KERAS_FILE = 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
KERAS_MD5 = '253f8cb515780f3b799900260a226db6'
KERAS_BYTES = 80_134_624
TORCHVISION_URL = 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth'
TORCHVISION_FILE = 'vgg19-dcbb9e9d.pth'
TORCHVISION_SHA256_PREFIX = 'dcbb9e9d'


class WeightDownloadError(RuntimeError):
  """The weight file could not be fetched or failed its checksum."""


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
    raise ValueError(f"unknown VGG19 weight source {source!r}; use 'keras' or 'torchvision'")
  dest = os.path.join(cache_dir(cache), name)
  if os.path.exists(dest):
    return dest
  if not download_missing:
    raise WeightDownloadError(_offline_message(url, dest, 'downloads disabled'))
  return download(url, dest, **checks)


def get_vgg19(source: str = 'keras', path: str | os.PathLike | None = None,
              cache_dir: str | os.PathLike | None = None,
              download: bool = True) -> tuple[dict[str, Any], Preprocessing]:
  """Loads VGG19 conv params for `models.vgg.VGG19` plus the preprocessing those weights expect.

  Args:
    source: 'keras' (the book's Caffe-derived weights, BGR) or 'torchvision' (RGB, mean/std).
    path: an explicit weight file; otherwise the cache (`$JAXSTYLE_CACHE` or ~/.cache/jaxstyle) is used and
      the file is downloaded with a checksum check on first use.
    cache_dir: overrides the cache folder.
    download: allow the first-use download.

  Returns:
    (params, prep): float32 numpy params tree and the matching `Preprocessing`.
  """
  if source not in PREPROCESSING:
    raise ValueError(f"unknown VGG19 weight source {source!r}; use 'keras' or 'torchvision'")
  file = locate(source, path, cache_dir, download)
  loader = keras_h5.load_vgg19 if source == 'keras' else torchvision_vgg.load_vgg19
  return loader(file), PREPROCESSING[source]
