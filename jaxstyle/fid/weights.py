"""The FID Inception weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`, found or fetched.

FID is only comparable with published numbers when the features come from exactly these weights (the
2015-12-05 TF graph as pytorch-fid ports it), so there is no fallback network. Sources, in order:
  `path` (`--inception PATH`): the .pth, or a directory from
      `jaxstyle port-weights pt_inception-2015-12-05-6726825d.pth -o DIR --kind inception-fid`;
  the cache: `$JAXSTYLE_CACHE/pt_inception-2015-12-05-6726825d.pth` (default ~/.cache/jaxstyle),
      downloaded on first use from INCEPTION_URL unless offline (`JAXSTYLE_OFFLINE=1`).
A file under the official name is checked against the SHA-256 prefix in its name (hashed once,
remembered in `<file>.verified.json`, as the VGG19 files), and read by the torch-free restricted
unpickler (`ports.inception_fid`).

`--mode clean` defaults to clean-fid's own file instead: NVIDIA's TorchScript
`inception-2015-12-05.pt` (CLEAN_URL, checked against its full SHA-256), read tensor by tensor
without running its code (`ports.inception_cleanfid`). Any `--inception PATH` that is a
TorchScript archive is read that way, in either mode.
"""

from __future__ import annotations

import json
import os
from typing import Any

from jaxstyle import errors
from jaxstyle.errors import UserError
from jaxstyle.ports import inception_cleanfid, inception_fid, torchscript, weight_files
from jaxstyle.ports.weight_files import WeightChecksumError as WeightChecksumError
from jaxstyle.ports.weight_files import WeightDownloadError

INCEPTION_URL = (
  'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
  'pt_inception-2015-12-05-6726825d.pth'
)
INCEPTION_FILE = 'pt_inception-2015-12-05-6726825d.pth'
INCEPTION_SHA256_PREFIX = '6726825d'
PORT_KIND = 'inception-fid'
CLEAN_URL = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt'
CLEAN_FILE = 'inception-2015-12-05.pt'
# The SHA-256 that k-diffusion and other evaluators pin for this file (95,607,719 bytes); not
# re-measured here (no network where this was written).
CLEAN_SHA256 = 'f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4'
CLEAN_HINT = weight_files.Hint(
  "clean-fid's InceptionV3", '--inception', logger=__name__, alternative=' (the .pt itself)'
)

HINT = weight_files.Hint(
  'FID InceptionV3',
  '--inception',
  logger=__name__,
  alternative=(
    f' (the .pth itself, or the directory `jaxstyle port-weights {INCEPTION_FILE} -o DIR '
    f'--kind {PORT_KIND}` makes from it)'
  ),
)

# Raised when the weights are neither given, cached nor downloadable; its message says how to get
# them offline (the URL, the cache path, --inception PATH and `jaxstyle port-weights`).
InceptionWeightsUnavailable = WeightDownloadError


def _cached_path(cache: str | os.PathLike | None) -> str:
  return os.path.join(weight_files.cache_dir(cache), INCEPTION_FILE)


def find_cached(cache: str | os.PathLike | None = None) -> str | None:
  """The cached .pth if present (never downloads): lets callers say up front whether FID will fetch."""
  path = _cached_path(cache)
  return path if os.path.isfile(path) else None


def locate(
  path: str | os.PathLike | None = None,
  cache: str | os.PathLike | None = None,
  download: bool = True,
  mode: str = 'pytorch-fid',
) -> str:
  """`path` if given, else the cached .pth, downloaded (SHA-256 prefix checked) if absent.

  Raises:
    InceptionWeightsUnavailable: offline, disabled (`download=False`, `JAXSTYLE_OFFLINE=1`) or a
      failed download; the message says how to provide the file by hand.
  """
  if path is not None:
    return os.fspath(path)
  if mode == 'clean':
    return weight_files.fetch(
      CLEAN_URL,
      os.path.join(weight_files.cache_dir(cache), CLEAN_FILE),
      CLEAN_HINT,
      allow_download=download,
      sha256_prefix=CLEAN_SHA256,
    )
  return weight_files.fetch(
    INCEPTION_URL,
    _cached_path(cache),
    HINT,
    allow_download=download,
    sha256_prefix=INCEPTION_SHA256_PREFIX,
  )


def known_checksum(path: str | os.PathLike) -> weight_files.Checksum | None:
  """The published checksum for the official name (constants read at call time: tests patch them)."""
  name = os.path.basename(os.fspath(path))
  if name == CLEAN_FILE:
    return weight_files.Checksum('sha256', CLEAN_SHA256, None, CLEAN_URL)
  if name != INCEPTION_FILE:
    return None
  return weight_files.Checksum('sha256', INCEPTION_SHA256_PREFIX, None, INCEPTION_URL)


def _load_ported(path: str) -> dict[str, Any]:
  from jaxstyle import checkpoint  # orbax: only for a ported directory

  how = (
    f'pass the .pth or a directory made by `jaxstyle port-weights {INCEPTION_FILE} -o DIR '
    f'--kind {PORT_KIND}` with --inception PATH'
  )
  try:
    params, meta = checkpoint.load_params(path)
  except FileNotFoundError:
    raise UserError(
      f'Inception weights {path!r} is a directory but not a jaxstyle port-weights '
      f'output (no jaxstyle.json); {how}'
    ) from None
  kind = meta.get('kind') if isinstance(meta, dict) else None
  if kind != PORT_KIND:
    raise UserError(
      f'Inception weights {path!r} hold port-weights kind {kind!r}, not {PORT_KIND!r}; {how}'
    )
  inception_fid.check_params(params, path)
  return {'params': params}


def load_params(
  path: str | os.PathLike | None = None,
  cache: str | os.PathLike | None = None,
  download: bool = True,
  mode: str = 'pytorch-fid',
) -> dict[str, Any]:
  """`{'params': ...}` for `models.inception.FIDInceptionV3.apply`, from `locate(path, cache,
  download, mode)`: pytorch-fid's .pth (or a port of it), or clean-fid's TorchScript archive.

  Raises:
    InceptionWeightsUnavailable: no file given or cached and the download is impossible or off.
    WeightChecksumError: a file under the official name fails its SHA-256 prefix.
    UserError: a missing/empty file, an unsafe or unreadable .pth, a directory that is not an
      `inception-fid` port, or keys / shapes that are not pytorch-fid's Inception.
  """
  file = locate(path, cache, download, mode)
  if os.path.isdir(file):
    return _load_ported(file)
  errors.readable_file(file, 'Inception weights (--inception)')
  if torchscript.is_torchscript(file):
    weight_files.verify(file, known_checksum(file), CLEAN_HINT)
    return inception_cleanfid.load_inception_cleanfid(file)
  weight_files.verify(file, known_checksum(file), HINT)
  return inception_fid.load_inception_fid(file)


def unofficial_note(path: str | os.PathLike | None, mode: str = 'pytorch-fid') -> str | None:
  """A warning when `path` is not the mode's official file (or a port of pytorch-fid's), else None.

  Only those weights give FID/KID comparable with published numbers; other weights (a re-export,
  the tests' random ones) still rank runs against each other, and a results page must say so.
  """
  if path is None:
    return None  # the cache holds the official file, verified on load
  path = os.fspath(path)
  source = path
  if os.path.isdir(path):
    try:
      with open(os.path.join(path, 'jaxstyle.json')) as f:
        source = str(json.load(f).get('source', ''))
    except (OSError, ValueError, AttributeError):
      source = ''
  name = os.path.basename(source)
  own = CLEAN_FILE if mode == 'clean' else INCEPTION_FILE
  if name == own:
    return None
  if name in (INCEPTION_FILE, CLEAN_FILE):
    return (
      f'{mode} mode with {name}, not {own}: the same 2015-12-05 graph converted twice; the '
      f"reference tool's numbers come from {own} (docs/fid.md)"
    )
  return (
    f"Inception weights from {path}, not {mode}'s {own}: FID/KID rank runs "
    'scored with the same weights but are not comparable with published numbers'
  )
