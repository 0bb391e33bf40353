"""Reading zip archives from untrusted files (`.pth`, `.npz`) with every declared size checked first.

`zipfile` trusts the headers: a stored entry whose central-directory size says 4 GB makes
`ZipFile.read` ask the OS file for 4 GB (CPython's buffered reader allocates the whole request
up front), and damaged headers surface as half a dozen exception types (BadZipFile, zlib.error,
NotImplementedError, UnicodeDecodeError, ...). `SafeZip` checks each entry against the file's
real size when the archive is opened, so no read can allocate more than the file holds (times
deflate's maximum ratio for compressed entries), and turns every failure into the caller's
`UserError` subclass with a message naming the file.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from typing import Any

__all__ = ['SafeZip', 'ZIP_ERRORS']

# Deflate cannot expand more than ~1032:1 (a 258-byte match per 2-bit code); a larger declared
# ratio is a lie, whatever the data.
MAX_DEFLATE_RATIO = 1032
_LOCAL_HEADER = 30  # fixed part of a local file header
# What zipfile raises on damaged archives (UnicodeDecodeError, a ValueError, for bad names).
ZIP_ERRORS = (
  zipfile.BadZipFile,
  zlib.error,
  struct.error,
  EOFError,
  OSError,
  ValueError,
  NotImplementedError,
  OverflowError,
  IndexError,
  KeyError,
)


class SafeZip:
  """A read-only zip archive whose entries were size-checked on open; errors are `error(msg)`."""

  def __init__(self, path: str, error: type[Exception], what: str = 'zip archive'):
    self.path, self._error, self._what = path, error, what
    size = os.path.getsize(path)
    try:
      self._zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as e:
      raise error(f'{path}: not a readable {what} ({type(e).__name__}: {e})') from e
    try:
      for info in self._zf.infolist():
        self._check(info, size)
    except BaseException:
      self._zf.close()
      raise

  def _check(self, info: zipfile.ZipInfo, size: int) -> None:
    name = info.filename
    if info.flag_bits & 0x1:
      self._fail(f'entry {name!r} is encrypted')
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
      self._fail(
        f'entry {name!r} uses compression method {info.compress_type} (not stored/deflate)'
      )
    end = info.header_offset + _LOCAL_HEADER + info.compress_size
    if end > size:
      self._fail(
        f'entry {name!r} declares {info.compress_size} bytes at offset {info.header_offset}, past '
        f'the end of the file ({size} bytes): truncated or damaged'
      )
    stored = info.compress_type == zipfile.ZIP_STORED
    if (stored and info.file_size != info.compress_size) or (
      info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 64
    ):
      self._fail(
        f'entry {name!r} declares {info.file_size} bytes from {info.compress_size} stored '
        'bytes, which no zip writer produces: damaged header'
      )

  def _fail(self, message: str) -> None:
    raise self._error(f'{self.path}: damaged {self._what}: {message}')

  def namelist(self) -> list[str]:
    return self._zf.namelist()

  def read(self, name: str) -> bytes:
    """The entry's bytes (CRC-checked by zipfile); a missing or damaged entry is `error`."""
    try:
      return self._zf.read(name)
    except ZIP_ERRORS as e:
      raise self._error(
        f'{self.path}: cannot read entry {name!r} of the {self._what} ({type(e).__name__}: {e})'
      ) from e

  def close(self) -> None:
    self._zf.close()

  def __enter__(self) -> SafeZip:
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()
