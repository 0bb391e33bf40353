"""VGG19 weights for NST: locate / download / verify the file, load it, and pair it with its preprocessing.

Each weight source was trained on differently prepared input, and feeding one the other's preprocessing
silently degrades NST (docs/design/nst.md), so the loader always returns the preprocessing that matches the weights:
  keras:       RGB -> BGR, minus the Caffe means [103.939, 116.779, 123.68] (B, G, R), 0-255 scale;
  torchvision: RGB, /255, minus (0.485, 0.456, 0.406), divided by (0.229, 0.224, 0.225).
The mean is never folded into conv1_1: zero padding in normalised space is not zero in raw space.

The file's content, not the configured source, decides the format (HDF5 -> Keras, torch.save ->
torchvision) and so the preprocessing. Files under an official name (the cached downloads, or a user's
copy) are checked against the published checksum: size first, then the hash once per file, remembered
in `<file>.verified.json` next to it (size, mtime_ns, digest) so later runs skip the 80-550 MB read.
That machinery (cache folder, downloads, sidecars) is `ports.weight_files`, shared with the FID
Inception weights; this module keeps the VGG19 specifics and re-exports its names.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import jax.numpy as jnp

from jaxstyle.errors import ConfigError
from jaxstyle.models.vgg import WeightFileError, init_params
from jaxstyle.ports import keras_h5, torchvision_vgg, weight_files
from jaxstyle.ports.weight_files import Checksum as Checksum
from jaxstyle.ports.weight_files import WeightDownloadError as WeightDownloadError
from jaxstyle.ports.weight_files import cache_dir as cache_dir
from jaxstyle.ports.weight_files import file_digest as file_digest
from jaxstyle.ports.weight_files import sidecar_path as sidecar_path

log = logging.getLogger(__name__)

KERAS_URL = (
  'https://storage.googleapis.com/tensorflow/keras-applications/vgg19/'
  'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
)
KERAS_FILE = 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
KERAS_MD5 = '253f8cb515780f3b799900260a226db6'
KERAS_BYTES = 80_134_624
TORCHVISION_URL = 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth'
TORCHVISION_FILE = 'vgg19-dcbb9e9d.pth'
TORCHVISION_SHA256_PREFIX = 'dcbb9e9d'


class WeightChecksumError(WeightFileError, weight_files.WeightChecksumError):
  """A weight file under an official name does not match the published size or hash."""


HINT = weight_files.Hint('VGG19', '--vgg19', logger=__name__, checksum_error=WeightChecksumError)


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
    return (x * self.scale - jnp.asarray(self.mean, jnp.float32)) / jnp.asarray(
      self.std, jnp.float32
    )

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
    'torchvision', 'RGB', 1.0 / 255.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
  ),
}


def download(
  url: str,
  dest: str,
  *,
  md5: str | None = None,
  sha256_prefix: str | None = None,
  progress: bool = True,
) -> str:
  """`weight_files.download` with the VGG19 messages (they name the --vgg19 flag)."""
  return weight_files.download(
    url, dest, HINT, md5=md5, sha256_prefix=sha256_prefix, progress=progress
  )


def locate(
  source: str,
  path: str | os.PathLike | None = None,
  cache: str | os.PathLike | None = None,
  download_missing: bool = True,
) -> str:
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
  return weight_files.fetch(url, dest, HINT, allow_download=download_missing, **checks)


#### Verification: size, then the hash once per file (remembered in a sidecar)


def known_checksum(path: str | os.PathLike) -> Checksum | None:
  """The checksum of an official file name (read at call time, so tests can patch the constants)."""
  name = os.path.basename(os.fspath(path))
  if name == KERAS_FILE:
    return Checksum('md5', KERAS_MD5, KERAS_BYTES, KERAS_URL)
  if name == TORCHVISION_FILE:
    return Checksum('sha256', TORCHVISION_SHA256_PREFIX, None, TORCHVISION_URL)
  return None


def verify(path: str | os.PathLike) -> bool:
  """Checks a file under an official name against its published size and hash.

  Returns False for other names (not checksum-checked). The size check costs a stat; the hash is
  computed once and recorded in `<file>.verified.json`, valid while size and mtime_ns are unchanged.

  Raises:
    WeightChecksumError: naming the file, the expected and the actual size or digest.
  """
  return weight_files.verify(path, known_checksum(path), HINT, digest=file_digest)


#### Format: from the file's content


def _check_file(path: str | os.PathLike) -> str:
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise WeightFileError(
      f'VGG19 weight file {path!r} does not exist (or is not a file); pass an '
      'existing file with --vgg19 PATH'
    )
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
    'pickle); pass one of those with --vgg19 PATH'
  )


def random_vgg19(seed: int = 0) -> tuple[dict[str, Any], Preprocessing]:
  """Seeded He-initialised VGG19 params with the Keras preprocessing (vgg.source='random').

  For benchmarks and smoke runs where no weight file can be downloaded: the speed and the code paths
  are those of the real network, the pictures mean nothing.
  """
  import jax

  return jax.device_get(init_params(jax.random.PRNGKey(seed))), PREPROCESSING['keras']


def get_vgg19(
  source: str = 'keras',
  path: str | os.PathLike | None = None,
  cache_dir: str | os.PathLike | None = None,
  download: bool = True,
  seed: int = 0,
) -> tuple[dict[str, Any], Preprocessing]:
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
    seed: for source 'random' only (`random_vgg19`: no file is read).

  Returns:
    (params, prep): float32 numpy params tree and the matching `Preprocessing`.

  Raises:
    WeightChecksumError: an officially named file fails its size or hash.
    WeightFileError: the file is missing, empty, of neither format, or not VGG19.
  """
  if source == 'random':
    return random_vgg19(seed)
  if source not in PREPROCESSING:
    raise ConfigError(
      f"unknown VGG19 weight source {source!r}; use 'keras', 'torchvision' or 'random'"
    )
  file = _check_file(locate(source, path, cache_dir, download))
  verify(
    file
  )  # first: a damaged official file gets "delete it and re-download", not "wrong format"
  fmt = detect_format(file)
  loader = keras_h5.load_vgg19 if fmt == 'keras' else torchvision_vgg.load_vgg19
  params = loader(file)  # first: a damaged file is its one error line, without the note below
  if fmt != source:
    log.warning(
      '%s holds %s weights (%s); using the %s loader and preprocessing instead of the '
      'configured vgg.source=%r',
      file,
      fmt,
      'HDF5' if fmt == 'keras' else 'PyTorch checkpoint',
      fmt,
      source,
    )
  return params, PREPROCESSING[fmt]
