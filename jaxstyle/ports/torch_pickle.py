"""The restricted unpickler behind `torch_pth`: stand-ins for the few globals a state_dict names.

Unpickling calls whatever globals a file names, so `torch.load` on an untrusted download can run
arbitrary code. `SafeUnpickler` maps the allow-listed names (`collections.OrderedDict`, the
`torch._utils._rebuild_*` functions, storage types, dtypes) onto local stand-ins that only record
shapes and offsets, and raises `UnsafeCheckpointError` for any other global before anything is
called. `materialise` then builds NumPy arrays from raw storage bytes after bounds checks.

Before the C unpickler sees an in-memory pickle, `check_pickle` walks its opcodes with
`pickletools` (pure Python, reading only bytes that exist): CPython's unpickler allocates a
BINBYTES object of the declared length, and a memo of the largest declared index, before it
notices the file is shorter, so a 2 KB file could make it allocate gigabytes.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
from typing import Any

import numpy as np

from jaxstyle.errors import BadInputError

__all__ = [
  'CheckpointFormatError',
  'SafeUnpickler',
  'UnsafeCheckpointError',
  'check_pickle',
  'materialise',
  'to_state_dict',
]


class UnsafeCheckpointError(BadInputError):
  """The file asks the unpickler for a global outside the state_dict allow-list."""


class CheckpointFormatError(BadInputError):
  """The file is not a readable PyTorch state_dict (corrupt, truncated or unsupported)."""


# Storage class name -> NumPy dtype string ('bfloat16' is handled by hand: NumPy has no bfloat16).
_STORAGE_DTYPES = {
  'FloatStorage': 'f4',
  'DoubleStorage': 'f8',
  'HalfStorage': 'f2',
  'BFloat16Storage': 'bfloat16',
  'LongStorage': 'i8',
  'IntStorage': 'i4',
  'ShortStorage': 'i2',
  'CharStorage': 'i1',
  'ByteStorage': 'u1',
  'BoolStorage': 'b1',
  'UntypedStorage': 'u1',
}
# torch dtype object name -> NumPy dtype string (used by `_rebuild_tensor_v3`).
_TORCH_DTYPES = {
  'float32': 'f4',
  'float': 'f4',
  'float64': 'f8',
  'double': 'f8',
  'float16': 'f2',
  'half': 'f2',
  'bfloat16': 'bfloat16',
  'int64': 'i8',
  'long': 'i8',
  'int32': 'i4',
  'int': 'i4',
  'int16': 'i2',
  'short': 'i2',
  'int8': 'i1',
  'uint8': 'u1',
  'uint16': 'u2',
  'uint32': 'u4',
  'uint64': 'u8',
  'bool': 'b1',
}


class _Frozen:
  """Base for the stand-ins: a pickle BUILD op must not be able to change them."""

  __slots__ = ()

  def __setstate__(self, state: Any) -> None:
    raise CheckpointFormatError(f'unexpected pickle state for {type(self).__name__}')


class _StateDict(collections.OrderedDict):
  """OrderedDict stand-in; torch attaches `_metadata` via BUILD, which we drop."""

  def __setstate__(self, state: Any) -> None:
    del state


class DType(_Frozen):
  """A storage class or torch dtype named by the file; only carries the NumPy dtype."""

  __slots__ = ('np_dtype', 'name')

  def __init__(self, name: str, np_dtype: str):
    self.name, self.np_dtype = name, np_dtype


class Storage(_Frozen):
  """A (view of a) flat storage: bytes are fetched from the archive when materialised."""

  __slots__ = ('key', 'np_dtype', 'offset', 'numel')

  def __init__(self, key: str, np_dtype: str, offset: int = 0, numel: int | None = None):
    self.key, self.np_dtype, self.offset, self.numel = key, np_dtype, offset, numel


class _Tensor(_Frozen):
  """A strided view into a `Storage`, turned into a NumPy array after unpickling."""

  __slots__ = ('storage', 'offset', 'size', 'stride', 'np_dtype')

  def __init__(
    self, storage: Any, offset: Any, size: Any, stride: Any, np_dtype: str | None = None
  ):
    if not isinstance(storage, Storage):
      raise CheckpointFormatError('tensor rebuilt from something that is not a storage')
    ints = (
      (offset, *size, *stride) if isinstance(size, tuple) and isinstance(stride, tuple) else None
    )
    if ints is None or len(size) != len(stride) or not all(type(v) is int and v >= 0 for v in ints):
      raise CheckpointFormatError(
        f'bad tensor geometry: offset={offset!r} size={size!r} stride={stride!r}'
      )
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
    self.np_dtype = np_dtype or storage.np_dtype


def _rebuild_tensor(storage, storage_offset, size, stride):
  return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(
  storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None
):
  del requires_grad, backward_hooks, metadata
  return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(
  storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None
):
  del requires_grad, backward_hooks, metadata
  if not isinstance(dtype, DType):
    raise CheckpointFormatError(f'_rebuild_tensor_v3 got dtype {dtype!r}')
  return _Tensor(storage, storage_offset, size, stride, dtype.np_dtype)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
  del requires_grad, backward_hooks, state
  if not isinstance(data, _Tensor):
    raise CheckpointFormatError('parameter rebuilt from something that is not a tensor')
  return data


def _rebuild_from_type_v2(func, new_type, args, state):
  """Tensor (sub)class wrapper: only plain Tensor/Parameter around our own rebuild functions."""
  del state
  if not isinstance(func, _Fn) or new_type is not _TENSOR_TYPE or not isinstance(args, tuple):
    raise CheckpointFormatError('unsupported tensor subclass in checkpoint')
  return func(*args)


class _Fn(_Frozen):
  """Callable handed to the unpickler; unlike a bare function it has no attributes a BUILD op
  could overwrite (e.g. `__defaults__`)."""

  __slots__ = ('fn',)

  def __init__(self, fn: Any):
    self.fn = fn

  def __call__(self, *args: Any) -> Any:
    return self.fn(*args)


_TENSOR_TYPE = DType('Tensor', '')
_REBUILD_FUNCS = {
  ('torch._utils', '_rebuild_tensor'): _Fn(_rebuild_tensor),
  ('torch._utils', '_rebuild_tensor_v2'): _Fn(_rebuild_tensor_v2),
  ('torch._utils', '_rebuild_tensor_v3'): _Fn(_rebuild_tensor_v3),
  ('torch._utils', '_rebuild_parameter'): _Fn(_rebuild_parameter),
  ('torch._utils', '_rebuild_parameter_with_state'): _Fn(_rebuild_parameter),
}


def _allowed_globals() -> dict[tuple[str, str], Any]:
  allowed: dict[tuple[str, str], Any] = {('collections', 'OrderedDict'): _StateDict}
  allowed.update(_REBUILD_FUNCS)
  allowed[('torch._tensor', '_rebuild_from_type_v2')] = _Fn(_rebuild_from_type_v2)
  for mod in ('torch._tensor', 'torch'):
    allowed[(mod, 'Tensor')] = _TENSOR_TYPE
  allowed[('torch.nn.parameter', 'Parameter')] = _TENSOR_TYPE
  for name, np_dtype in _STORAGE_DTYPES.items():
    for mod in ('torch', 'torch.cuda', 'torch.storage'):
      allowed[(mod, name)] = DType(name, np_dtype)
  for name, np_dtype in _TORCH_DTYPES.items():
    allowed[('torch', name)] = DType(name, np_dtype)
  return allowed


ALLOWED = _allowed_globals()


_MEMO_OPS = frozenset({'PUT', 'BINPUT', 'LONG_BINPUT', 'GET', 'BINGET', 'LONG_BINGET'})
# Nesting depth of containers in a state_dict is a handful; deeper (or self-referencing) is damage.
MAX_DEPTH = 64


def check_pickle(file: io.BytesIO, path: str) -> None:
  """Walks the pickle at `file`'s position (then rewinds): every length prefix must fit the data
  and every memo index must be one the pickle could have made; `CheckpointFormatError` if not."""
  start, count = file.tell(), 0
  try:
    for op, arg, _ in pickletools.genops(file):
      count += 1
      if op.name in _MEMO_OPS and (type(arg) is not int or not 0 <= arg <= count):
        raise CheckpointFormatError(f'{path}: damaged pickle (memo index {arg!r} out of range)')
  except ValueError as e:  # pickletools' error for truncation, bad lengths, unknown opcodes
    raise CheckpointFormatError(f'{path}: damaged pickle ({e})') from e
  finally:
    file.seek(start)


class SafeUnpickler(pickle.Unpickler):
  """Unpickler whose only callables are the stand-ins above; an in-memory (BytesIO) pickle is
  checked by `check_pickle` before it is unpickled."""

  def __init__(self, file: Any, path: str, persistent_load: Any = None):
    super().__init__(file)
    self._file, self._path, self._persistent = file, path, persistent_load

  def load(self) -> Any:
    if isinstance(self._file, io.BytesIO):
      check_pickle(self._file, self._path)
    return super().load()

  def find_class(self, module: str, name: str) -> Any:
    obj = ALLOWED.get((module, name))
    if obj is None:
      raise UnsafeCheckpointError(
        f'{self._path}: refusing to load: the pickle asks for the global {module}.{name}, which a '
        'plain weights file never needs (it could run arbitrary code). jaxstyle only reads '
        'state_dicts of tensors. Do not torch.load it unless you trust its origin; if you do, '
        're-save only the tensors: `obj = torch.load(src, weights_only=False)`, then '
        "`torch.save(obj.state_dict() if it is a module else obj['state_dict'], dst)`."
      )
    return obj

  def persistent_load(self, pid: Any) -> Any:
    if self._persistent is None:
      raise CheckpointFormatError(f'{self._path}: unexpected persistent id {pid!r}')
    return self._persistent(pid)


def storage_from_pid(pid: Any, path: str) -> Storage:
  """Zip-format persistent id: ('storage', storage_type, key, location, numel)."""
  if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ('storage', b'storage')):
    raise CheckpointFormatError(f'{path}: unsupported persistent id {pid!r}')
  _, storage_type, key, _, numel = pid
  if not isinstance(storage_type, DType) or not isinstance(key, str) or type(numel) is not int:
    raise CheckpointFormatError(f'{path}: malformed storage reference {pid!r}')
  return Storage(key, storage_type.np_dtype, 0, numel)


def _to_numpy(t: _Tensor, raw: bytes, byteorder: str, path: str) -> np.ndarray:
  """Builds the array for one tensor, after checking it stays inside its storage."""
  bf16 = t.np_dtype == 'bfloat16'
  dtype = np.dtype('u2' if bf16 else t.np_dtype).newbyteorder('<' if byteorder == 'little' else '>')
  st = t.storage
  # Storage offsets/sizes count storage elements (bytes for an UntypedStorage behind
  # `_rebuild_tensor_v3`); the tensor's own offset/strides count tensor elements.
  st_item = 2 if st.np_dtype == 'bfloat16' else np.dtype(st.np_dtype).itemsize
  start = st.offset * st_item
  end = len(raw) if st.numel is None else start + st.numel * st_item
  if end > len(raw):
    raise CheckpointFormatError(f'{path}: storage {st.key} is truncated ({len(raw)} < {end} bytes)')
  flat = np.frombuffer(
    memoryview(raw)[start:end], dtype=dtype, count=(end - start) // dtype.itemsize
  )
  shape = tuple(t.size)
  if math.prod(shape) > max(len(flat), 1):
    # Only overlapping (stride-0) views hold more elements than their storage; a state_dict never
    # does, and copying one out could allocate without bound.
    raise CheckpointFormatError(
      f'{path}: tensor of shape {shape} has more elements than its storage {st.key} ({len(flat)})'
    )
  if 0 in shape:
    out = np.zeros(shape, dtype.newbyteorder('='))
  else:
    last = t.offset + sum((n - 1) * s for n, s in zip(shape, t.stride))
    if last >= len(flat):
      raise CheckpointFormatError(
        f'{path}: tensor view (offset {t.offset}, size {shape}, stride {t.stride}) reads past the '
        f'end of storage {st.key} ({len(flat)} elements)'
      )
    view = np.lib.stride_tricks.as_strided(
      flat[t.offset :], shape=shape, strides=[s * dtype.itemsize for s in t.stride], writeable=False
    )
    out = np.array(view, dtype=dtype.newbyteorder('='), order='C')
  if bf16:
    out = (out.astype(np.uint32) << 16).view(np.float32)
  return out


def materialise(
  obj: Any, fetch: Any, byteorder: str, path: str, limit: int | None = None, _state: Any = None
) -> Any:
  """Replaces every `_Tensor` in nested dicts/lists by a NumPy array.

  `limit` caps the total bytes of the arrays (a few times the file size: tensors sharing one
  storage may each copy it, a hostile file could make thousands do so).
  """
  state = _state or {'depth': 0, 'bytes': 0}
  if isinstance(obj, _Tensor):
    out = _to_numpy(obj, fetch(obj.storage.key), byteorder, path)
    state['bytes'] += out.nbytes
    if limit is not None and state['bytes'] > limit:
      raise CheckpointFormatError(
        f'{path}: the tensors add up to more than {limit} bytes, far more than the file holds '
        '(many views of one storage?)'
      )
    return out
  if not isinstance(obj, (dict, list, tuple)):
    return obj
  if state['depth'] >= MAX_DEPTH:
    raise CheckpointFormatError(f'{path}: containers nested deeper than {MAX_DEPTH} (damaged?)')
  state['depth'] += 1
  if isinstance(obj, dict):
    out = {k: materialise(v, fetch, byteorder, path, limit, state) for k, v in obj.items()}
  else:
    out = [materialise(v, fetch, byteorder, path, limit, state) for v in obj]
  state['depth'] -= 1
  return out


def _flatten(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
  if isinstance(obj, np.ndarray):
    out[prefix] = obj
  elif isinstance(obj, dict):
    for k, v in obj.items():
      _flatten(v, f'{prefix}.{k}' if prefix else str(k), out)
  elif isinstance(obj, list):
    for i, v in enumerate(obj):
      _flatten(v, f'{prefix}.{i}' if prefix else str(i), out)


def _has_arrays(obj: Any) -> bool:
  flat: dict[str, np.ndarray] = {}
  _flatten(obj, '', flat)
  return bool(flat)


def to_state_dict(obj: Any, path: str) -> dict[str, np.ndarray]:
  """Flattens the loaded object into `name -> array`.

  A training checkpoint like `{'state_dict': sd, 'epoch': 3}` or `{'model': sd, 'opt_cfg': ...}` is
  unwrapped to `sd` (the only entry holding tensors); several tensor-holding entries, e.g.
  `{'G_A': sd1, 'G_B': sd2}`, are kept apart with dotted prefixes (`G_A.model.1.weight`).
  Non-tensor leaves (epoch counters, strings) are dropped.
  """
  if not isinstance(obj, dict):
    raise CheckpointFormatError(
      f'{path}: expected a dict of tensors (a state_dict), got {type(obj).__name__}'
    )
  if not any(isinstance(v, np.ndarray) for v in obj.values()):
    holders = [k for k, v in obj.items() if isinstance(v, (dict, list)) and _has_arrays(v)]
    if len(holders) == 1 and isinstance(obj[holders[0]], dict):
      obj = obj[holders[0]]
  out: dict[str, np.ndarray] = {}
  _flatten(obj, '', out)
  if not out:
    raise CheckpointFormatError(f'{path}: the checkpoint holds no tensors')
  return out


def with_path(err: CheckpointFormatError, path: str) -> CheckpointFormatError:
  """The stand-ins raise without knowing the file; every error we surface names it."""
  return err if str(err).startswith(path) else CheckpointFormatError(f'{path}: {err}')
