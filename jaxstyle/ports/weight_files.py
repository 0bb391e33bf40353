"""Published weight files: the cache folder, checksum-checked downloads, and verify-once sidecars.

Shared by the VGG19 (NST) and FID Inception weights; what differs per network (its name, the flag
that takes a path, another way to get it, the logger) comes in a `Hint`, so every message still
tells the user exactly what to do.

- Downloads go through a temp file in the cache folder and are renamed only after the checksum
  matched, so a partial or corrupt download never appears under the final name.
- `JAXSTYLE_OFFLINE=1` refuses every network download (a `file://` URL is a local copy and still
  works), with the same "download it by hand" instructions as a failed download.
- A file under an official name is checked against its published size and hash; the hash is
  computed once and remembered in `<file>.verified.json` (size, mtime_ns, algo, digest) next to it,
  so later runs skip the 80-550 MB read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import logging
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from jaxstyle.errors import UserError

OFFLINE_ENV = 'JAXSTYLE_OFFLINE'


class WeightDownloadError(UserError, RuntimeError):
  """The weight file could not be fetched (offline, HTTP error, disabled) or failed its checksum."""


class WeightChecksumError(UserError, ValueError):
  """A weight file under an official name does not match the published size or hash."""


@dataclasses.dataclass(frozen=True)
class Hint:
  """Who a weight file is for, so the generic messages say what to do about that file.

  Attributes:
    network: the network's name in messages ('VGG19', 'FID InceptionV3').
    flag: the command-line flag that takes a file path instead ('--vgg19').
    alternative: appended to "pass its path with FLAG PATH" (e.g. what else the flag accepts).
    logger: the logger name for notes, so the caller's log settings apply.
    checksum_error: the `WeightChecksumError` subclass raised for a mismatch.
  """

  network: str
  flag: str
  alternative: str = ''
  logger: str = __name__
  checksum_error: type[WeightChecksumError] = WeightChecksumError


@dataclasses.dataclass(frozen=True)
class Checksum:
  """The published identity of an official weight file; `digest` may be a prefix (torchvision's)."""

  algo: str
  digest: str
  size: int | None
  url: str


def cache_dir(override: str | os.PathLike | None = None) -> str:
  """`override`, else `$JAXSTYLE_CACHE`, else `~/.cache/jaxstyle`."""
  if override is not None:
    return os.fspath(override)
  return os.environ.get('JAXSTYLE_CACHE') or os.path.join(
    os.path.expanduser('~'), '.cache', 'jaxstyle'
  )


def offline() -> bool:
  """True when `$JAXSTYLE_OFFLINE` is set to anything but '', '0', 'false' or 'no'."""
  return os.environ.get(OFFLINE_ENV, '').strip().lower() not in ('', '0', 'false', 'no')


def offline_message(url: str, dest: str, reason: Any, hint: Hint) -> str:
  """One line: what failed, and the two ways to provide the file by hand."""
  return (
    f'could not download {hint.network} weights from {url} ({reason}). Download that file by '
    f'hand and either place it at {dest} or pass its path with {hint.flag} PATH'
    f'{hint.alternative}.'
  )


def download(
  url: str,
  dest: str,
  hint: Hint,
  *,
  md5: str | None = None,
  sha256_prefix: str | None = None,
  size_range: tuple[int, int] | None = None,
  progress: bool = True,
) -> str:
  """Downloads `url` to `dest` through a temp file in the same folder, checking the hash before rename.

  A checksum mismatch deletes the temp file; the hash computed on the way is recorded in the
  sidecar, so the first use does not read the file again. A body shorter than the server's
  Content-Length (a connection cut mid-file: urllib returns the short body without an error) and
  a size outside `size_range` (inclusive bytes; for files without a published hash) are refused
  the same way, so a truncated download never reaches `dest`.

  Raises:
    WeightDownloadError: offline / HTTP errors, downloads disabled by `$JAXSTYLE_OFFLINE` (the
      message gives the URL, `dest` and the hint's flag), or a checksum mismatch.
  """
  if offline() and urllib.parse.urlsplit(url).scheme != 'file':
    raise WeightDownloadError(
      offline_message(
        url, dest, f'downloads are disabled by {OFFLINE_ENV}={os.environ[OFFLINE_ENV]}', hint
      )
    )
  folder = os.path.dirname(os.path.abspath(dest))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(dest) + '.', suffix='.part')
  hasher = hashlib.md5() if md5 else hashlib.sha256()
  try:
    try:
      with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=60) as resp:
        total = resp.headers.get('Content-Length') if getattr(resp, 'headers', None) else None
        with tqdm(
          total=int(total) if total else None,
          unit='B',
          unit_scale=True,
          desc=os.path.basename(dest),
          disable=not progress,
        ) as bar:
          got = 0
          while chunk := resp.read(1 << 20):
            out.write(chunk)
            hasher.update(chunk)
            bar.update(len(chunk))
            got += len(chunk)
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as e:
      raise WeightDownloadError(offline_message(url, dest, e, hint)) from e
    if total and got != int(total):
      raise WeightDownloadError(
        offline_message(url, dest, f'truncated: got {got:,} of {int(total):,} bytes', hint)
      )
    if size_range and not size_range[0] <= got <= size_range[1]:
      raise WeightDownloadError(
        f'{url} sent {got:,} bytes, outside the {size_range[0]:,}-{size_range[1]:,} expected for '
        f'{os.path.basename(dest)}; the partial file was deleted. Retry, or place a good copy at '
        f'{dest} or pass {hint.flag} PATH.'
      )
    digest = hasher.hexdigest()
    expected = md5 or sha256_prefix
    if expected and not digest.startswith(expected):
      kind = 'MD5' if md5 else 'SHA-256'
      raise WeightDownloadError(
        f'{kind} mismatch for {url}: got {digest}, expected {expected}; the partial file was deleted. '
        f'Retry, or place a verified copy at {dest} or pass {hint.flag} PATH.'
      )
    os.replace(tmp, dest)
    write_sidecar(dest, hasher.name, digest, hint)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return dest


def fetch(url: str, dest: str, hint: Hint, *, allow_download: bool = True, **checks: Any) -> str:
  """`dest` if it exists, else downloads it (`checks`: md5= or sha256_prefix= for `download`)."""
  if os.path.exists(dest):
    return dest
  if not allow_download:
    raise WeightDownloadError(offline_message(url, dest, 'downloads disabled', hint))
  return download(url, dest, hint, **checks)


#### Verification: size, then the hash once per file (remembered in a sidecar)


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


def read_sidecar(path: str) -> dict[str, Any] | None:
  """The sidecar's record, or None when absent or unreadable (the file is then hashed again)."""
  try:
    with open(sidecar_path(path)) as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) else None


def write_sidecar(path: str, algo: str, digest: str, hint: Hint) -> None:
  """Best effort: a read-only folder only means the file is hashed again next time."""
  st = os.stat(path)
  record = {'size': st.st_size, 'mtime_ns': st.st_mtime_ns, 'algo': algo, 'digest': digest}
  side, tmp = sidecar_path(path), None
  try:
    fd, tmp = tempfile.mkstemp(
      dir=os.path.dirname(os.path.abspath(side)), prefix=os.path.basename(side) + '.', suffix='.tmp'
    )
    with os.fdopen(fd, 'w') as f:
      json.dump(record, f)
    os.replace(tmp, side)
  except OSError as e:
    logging.getLogger(hint.logger).info(
      'could not record the checksum of %s in %s (%s); it will be hashed again next run',
      path,
      side,
      e,
    )
    if tmp and os.path.exists(tmp):
      os.remove(tmp)


def _mismatch(
  path: str, what: str, got: Any, want: Any, url: str, hint: Hint
) -> WeightChecksumError:
  return hint.checksum_error(
    f'{path}: {what} is {got}, expected {want} for the official {os.path.basename(path)}; the '
    f'file is truncated, corrupt or a different file under the official name. Delete it and '
    f're-download (from {url}, or let jaxstyle fetch it by omitting {hint.flag}), or pass another '
    f'{hint.network} file with {hint.flag} PATH.'
  )


def verify(
  path: str | os.PathLike,
  want: Checksum | None,
  hint: Hint,
  digest: Callable[[str, str], str] = file_digest,
) -> bool:
  """Checks a file against its published size and hash (`want`; None: not an official name).

  Returns False when `want` is None. The size check costs a stat; the hash (`digest(path, algo)`)
  is computed once and recorded in `<file>.verified.json`, valid while size and mtime_ns hold.

  Raises:
    WeightChecksumError (`hint.checksum_error`): naming the file, the expected and actual value.
  """
  path = os.fspath(path)
  if want is None:
    return False
  st = os.stat(path)
  if want.size is not None and st.st_size != want.size:
    raise _mismatch(
      path, 'the size', f'{st.st_size:,} bytes', f'{want.size:,} bytes', want.url, hint
    )
  record = read_sidecar(path)
  if (
    record
    and record.get('size') == st.st_size
    and record.get('mtime_ns') == st.st_mtime_ns
    and record.get('algo') == want.algo
    and str(record.get('digest', '')).startswith(want.digest)
  ):
    return True
  got = digest(path, want.algo)
  if not got.startswith(want.digest):
    raise _mismatch(path, f'the {want.algo.upper()}', got, want.digest, want.url, hint)
  write_sidecar(path, want.algo, got, hint)
  return True
