"""Read PyTorch `.pth` state_dicts without torch and without running code from the file.

A `.pth` file is a pickle, and unpickling calls whatever globals the file names, so `torch.load` on
an untrusted download can run arbitrary code. We unpickle with an allow-list: the handful of names a
state_dict needs (`collections.OrderedDict`, the `torch._utils._rebuild_*` functions, storage types,
dtypes) are mapped onto small local stand-ins that only record shapes and offsets; every other
global raises `UnsafeCheckpointError` before anything is called. Tensors are then built with NumPy
from the raw storage bytes after bounds checks, so a hostile file cannot read outside its storage.

Formats: the zip format (torch >= 1.6: `<prefix>/data.pkl`, `<prefix>/data/<key>`,
`<prefix>/byteorder`) and the legacy raw-pickle stream (torch 0.4 - 1.5, or
`_use_new_zipfile_serialization=False`). The pre-0.4 tar format is refused with a clear message.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
from typing import Any

import numpy as np

from jaxstyle.ports.safe_zip import SafeZip
from jaxstyle.ports.torch_pickle import (
  ALLOWED,
  CheckpointFormatError,
  DType,
  SafeUnpickler,
  Storage,
  UnsafeCheckpointError,
  materialise,
  storage_from_pid,
  to_state_dict,
  with_path,
)

__all__ = ['ALLOWED', 'CheckpointFormatError', 'UnsafeCheckpointError', 'load_state_dict']

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


def storage_limit(path: str) -> int:
  """Most bytes the tensors of a file may add up to (tied weights share a storage; see
  `materialise`)."""
  return 4 * os.path.getsize(path) + (1 << 20)


def archive_storages(zf: Any, names: list[str], prefix: str, path: str) -> tuple[str, Any]:
  """(byteorder, fetch(key) -> bytes) of a torch zip archive whose records sit under `prefix`:
  the layout torch.save and torch.jit.save share (`byteorder`, `data/<key>`)."""
  byteorder = 'little'
  if prefix + 'byteorder' in names:
    byteorder = zf.read(prefix + 'byteorder').decode('ascii', 'replace').strip()
    if byteorder not in ('little', 'big'):
      raise CheckpointFormatError(f'{path}: unknown byteorder {byteorder!r}')
  cache: dict[str, bytes] = {}

  def fetch(key: str) -> bytes:
    if key not in cache:
      name = f'{prefix}data/{key}'
      if name not in names:
        raise CheckpointFormatError(f'{path}: storage {name!r} is missing from the archive')
      cache[key] = zf.read(name)
    return cache[key]

  return byteorder, fetch


def _load_zip(path: str) -> Any:
  with SafeZip(path, CheckpointFormatError, 'PyTorch zip checkpoint') as zf:
    names = zf.namelist()
    pkls = [n for n in names if n.endswith('data.pkl') and n.count('/') == 1]
    if len(pkls) != 1:
      raise CheckpointFormatError(
        f"{path}: a zip file but not a torch.save archive (found {len(pkls)} '<dir>/data.pkl')"
      )
    prefix = pkls[0][: -len('data.pkl')]
    byteorder, fetch = archive_storages(zf, names, prefix, path)
    try:
      root = SafeUnpickler(
        io.BytesIO(zf.read(pkls[0])), path, lambda pid: storage_from_pid(pid, path)
      ).load()
      return materialise(root, fetch, byteorder, path, storage_limit(path))
    except UnsafeCheckpointError:
      raise
    except CheckpointFormatError as e:
      raise with_path(e, path) from None
    except (
      pickle.UnpicklingError,
      EOFError,
      ValueError,
      TypeError,
      AttributeError,
      IndexError,
      KeyError,
      OverflowError,
      RecursionError,
    ) as e:
      raise CheckpointFormatError(
        f'{path}: corrupt PyTorch checkpoint ({type(e).__name__}: {e})'
      ) from e


def _load_legacy(path: str) -> Any:
  """torch 0.4-1.5 stream: magic, protocol, sys_info, main pickle, key list, raw storages."""
  storages: dict[str, Storage] = {}

  def persistent(pid: Any) -> Storage:
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] in ('storage', b'storage')):
      raise CheckpointFormatError(f'{path}: unsupported persistent id {pid!r}')
    _, storage_type, key, _, numel, view = pid
    if not isinstance(storage_type, DType) or type(numel) is not int:
      raise CheckpointFormatError(f'{path}: malformed storage reference {pid!r}')
    key = str(key)
    root = storages.setdefault(key, Storage(key, storage_type.np_dtype, 0, numel))
    if view is None:
      return root
    _, offset, size = view
    if type(offset) is not int or type(size) is not int or offset < 0 or size < 0:
      raise CheckpointFormatError(f'{path}: malformed storage view {view!r}')
    return Storage(key, root.np_dtype, offset, size)

  with open(path, 'rb') as file:  # in memory: reads never ask for more than the file holds
    data = file.read()
  with io.BytesIO(data) as f:
    try:
      header = [SafeUnpickler(f, path).load() for _ in range(3)]
      if header[0] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
        raise CheckpointFormatError(
          f'{path}: not a PyTorch checkpoint (no zip archive and no legacy torch.save header)'
        )
      little = header[2].get('little_endian', True) if isinstance(header[2], dict) else True
      root = SafeUnpickler(f, path, persistent).load()
      keys = SafeUnpickler(f, path).load()
      if not isinstance(keys, list):
        raise CheckpointFormatError(f'{path}: malformed storage key list')
      raw: dict[str, memoryview] = {}
      buf = memoryview(data)
      for key in map(str, keys):
        if key not in storages:
          raise CheckpointFormatError(f'{path}: storage {key} is not referenced by the pickle')
        head = f.read(8)
        if len(head) < 8:
          raise CheckpointFormatError(f'{path}: truncated before storage {key}')
        (numel,) = struct.unpack('<q' if little else '>q', head)
        code = storages[key].np_dtype
        nbytes = numel * (2 if code == 'bfloat16' else np.dtype(code).itemsize)
        left = len(data) - f.tell()
        if numel < 0 or nbytes > left:
          raise CheckpointFormatError(
            f'{path}: storage {key} declares {numel} elements ({nbytes} bytes) but only {left} '
            'bytes remain in the file: truncated or damaged'
          )
        raw[key] = buf[f.tell() : f.tell() + nbytes]  # no copy of the storage bytes
        f.seek(nbytes, io.SEEK_CUR)
    except UnsafeCheckpointError:
      raise
    except CheckpointFormatError as e:
      raise with_path(e, path) from None
    except (
      pickle.UnpicklingError,
      EOFError,
      ValueError,
      TypeError,
      AttributeError,
      IndexError,
      KeyError,
      OverflowError,
      RecursionError,
    ) as e:
      raise CheckpointFormatError(
        f'{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})'
      ) from e

  def fetch(key: str) -> memoryview:
    if key not in raw:
      raise CheckpointFormatError(f'{path}: storage {key} has no data in the file')
    return raw[key]

  try:
    return materialise(root, fetch, 'little' if little else 'big', path, storage_limit(path))
  except CheckpointFormatError as e:
    raise with_path(e, path) from None


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Loads a PyTorch `.pth` file as a flat `{name: np.ndarray}` dict, never running file code.

  bfloat16 tensors come back as float32 (NumPy has no bfloat16); other dtypes are kept. Nested
  training checkpoints are flattened (see `to_state_dict`).

  Raises:
    FileNotFoundError: no such file.
    UnsafeCheckpointError: the pickle names a global outside the allow-list (e.g. `os.system`).
    CheckpointFormatError: corrupt, truncated or unsupported (e.g. pre-0.4 tar) file.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such checkpoint file')
  with open(path, 'rb') as f:
    head = f.read(4)
  if not head:
    raise CheckpointFormatError(f'{path}: the file is empty')
  if head.startswith(b'PK'):
    obj = _load_zip(path)
  elif tarfile.is_tarfile(path):
    raise CheckpointFormatError(
      f'{path}: this is the pre-0.4 PyTorch tar format, which jaxstyle does not read. Re-save it '
      'with a current torch: `torch.save(torch.load(src), dst)` (only for a file you trust).'
    )
  elif head[:1] == b'\x80':
    obj = _load_legacy(path)
  else:
    raise CheckpointFormatError(f'{path}: not a PyTorch checkpoint (neither zip nor pickle)')
  return to_state_dict(obj, path)
