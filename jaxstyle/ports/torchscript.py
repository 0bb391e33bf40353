"""Tensors of a TorchScript archive (`torch.jit.save`), read without torch and without its code.

clean-fid's Inception is NVIDIA's `inception-2015-12-05.pt`, a TorchScript archive: a zip with
`<dir>/data.pkl` (the module tree: `__torch__.*` objects whose attributes are tensors and child
modules), `<dir>/data/<key>` (raw storages), `<dir>/constants.pkl` and `<dir>/code/` (the
TorchScript program). Only `data.pkl` and the storages are read. The unpickler is `torch_pickle`'s
allow-list plus one stand-in for every `__torch__.*` class: an inert record of the attributes the
archive stores (`__setstate__` keeps a dict of strings to values and runs nothing). The code and
constants are never opened, so nothing in the archive executes; any other global is refused as for
a `.pth`.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from typing import Any

import numpy as np

from jaxstyle.ports import torch_pth
from jaxstyle.ports.safe_zip import ZIP_ERRORS, SafeZip
from jaxstyle.ports.torch_pickle import (  # _Tensor: the unpickler's inert tensor record
  CheckpointFormatError,
  SafeUnpickler,
  UnsafeCheckpointError,
  _Tensor,
  materialise,
  storage_from_pid,
  with_path,
)

_MAX_DEPTH = 64  # module nesting; Inception's is 4


class ScriptObject:
  """Stand-in for an instance of a `__torch__.*` class: its pickled attributes, nothing else."""

  __slots__ = ('attrs',)

  def __new__(cls, *args: Any) -> ScriptObject:
    if args:
      raise CheckpointFormatError('a TorchScript object rebuilt with arguments')
    obj = super().__new__(cls)
    obj.attrs = {}
    return obj

  def __setstate__(self, state: Any) -> None:
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
      raise CheckpointFormatError('a TorchScript object whose state is not a dict of attributes')
    self.attrs = dict(state)


def _list_of(kind: type) -> Any:
  """`torch.jit._pickle.build_*list` stand-ins: typed lists, checked, nothing called."""

  def build(items: Any) -> list:
    if not isinstance(items, list) or not all(type(v) is kind for v in items):
      raise CheckpointFormatError(f'malformed TorchScript {kind.__name__} list')
    return list(items)

  return build


def _restore_type_tag(value: Any, type_str: Any) -> Any:
  del type_str
  return value


class ScriptUnpickler(SafeUnpickler):
  """`SafeUnpickler` that also maps `__torch__.*` classes and the list builders onto stand-ins."""

  _EXTRA = {
    ('torch.jit._pickle', 'build_intlist'): _list_of(int),
    ('torch.jit._pickle', 'build_doublelist'): _list_of(float),
    ('torch.jit._pickle', 'build_boollist'): _list_of(bool),
    ('torch.jit._pickle', 'restore_type_tag'): _restore_type_tag,
  }

  def find_class(self, module: str, name: str) -> Any:
    if module == '__torch__' or module.startswith('__torch__.'):
      return ScriptObject
    extra = self._EXTRA.get((module, name))
    return extra if extra is not None else super().find_class(module, name)


def _tree(obj: Any, depth: int = 0) -> Any:
  """ScriptObjects -> nested dicts of their tensor and module attributes (other values dropped)."""
  if depth > _MAX_DEPTH:
    raise CheckpointFormatError(f'TorchScript modules nested deeper than {_MAX_DEPTH}')
  if isinstance(obj, ScriptObject):
    out = {}
    for key, value in obj.attrs.items():
      sub = _tree(value, depth + 1)
      if sub is not None:
        out[key] = sub
    return out
  if isinstance(obj, _Tensor):
    return obj
  return None


def _flatten(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
  for key, value in obj.items():
    name = f'{prefix}.{key}' if prefix else key
    if isinstance(value, dict):
      _flatten(value, name, out)
    elif isinstance(value, np.ndarray):
      out[name] = value


def is_torchscript(path: str | os.PathLike) -> bool:
  """Whether `path` is a zip holding `<dir>/code/`: a TorchScript archive, not a `torch.save` file."""
  try:  # names only: nothing is read or decompressed
    with zipfile.ZipFile(path) as zf:
      return any(n.count('/') >= 2 and n.split('/')[1] == 'code' for n in zf.namelist())
  except ZIP_ERRORS:
    return False


def load_tensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """`{dotted attribute name: array}` of every tensor attribute in the archive's module tree
  (e.g. `layers.conv.weight`), as its `state_dict()` would name them.

  Raises:
    UnsafeCheckpointError: `data.pkl` names a global outside the allow-list.
    CheckpointFormatError: not a readable TorchScript archive.
  """
  path = os.fspath(path)
  with SafeZip(path, CheckpointFormatError, 'TorchScript archive') as zf:  # sizes checked first
    names = set(zf.namelist())
    pkls = [n for n in names if n.endswith('/data.pkl') and n.count('/') == 1]
    if len(pkls) != 1:
      raise CheckpointFormatError(f'{path}: not a TorchScript archive (no single <dir>/data.pkl)')
    prefix = pkls[0][: -len('data.pkl')]
    byteorder, fetch = torch_pth.archive_storages(zf, names, prefix, path)

    try:
      root = ScriptUnpickler(
        io.BytesIO(zf.read(pkls[0])), path, lambda pid: storage_from_pid(pid, path)
      ).load()
      if not isinstance(root, ScriptObject):
        raise CheckpointFormatError('its data.pkl holds no TorchScript module')
      tree = materialise(_tree(root), fetch, byteorder, path, torch_pth.storage_limit(path))
    except UnsafeCheckpointError:
      raise
    except CheckpointFormatError as e:
      raise with_path(e, path) from None
    except (
      pickle.UnpicklingError,
      EOFError,
      *ZIP_ERRORS,
      ValueError,
      TypeError,
      AttributeError,
      IndexError,
      KeyError,
      MemoryError,
      OverflowError,
      RecursionError,
    ) as e:
      raise CheckpointFormatError(
        f'{path}: corrupt TorchScript archive ({type(e).__name__}: {e})'
      ) from e
  out: dict[str, np.ndarray] = {}
  _flatten(tree, '', out)
  if not out:
    raise CheckpointFormatError(f'{path}: the TorchScript archive holds no tensors')
  return out
