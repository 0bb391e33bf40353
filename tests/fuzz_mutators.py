"""Seeded mutators for tests/fuzzing.py: generic byte edits and format-aware ones (pickle opcodes,
zip entries and headers, .npy headers, HDF5 dataspaces, JSON values).

A mutator takes (valid bytes, random.Random) and returns (mutated bytes, a description); the
format-aware ones keep the container valid (CRCs, lengths) so the damage reaches the parser
behind it, and plant the "huge declared size" lies that byte flips rarely produce.
"""

from __future__ import annotations

import io
import json
import pickletools
import random
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

Mutator = Callable[[bytes, random.Random], tuple[bytes, str]]
# The file the injected pickles try to create (the fuzz child points it into its directory).
MARKER = Path('/nonexistent/jaxstyle-fuzz-marker')
INTERESTING = (
  0,
  1,
  0x7F,
  0xFF,
  0x7FFF,
  0xFFFF,
  2**31 - 1,
  2**31,
  2**32 - 1,
  2**40,
  2**62,
  2**63 - 1,
)


# Generic byte mutations. ###################################################################


def flip_bits(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  if not data:
    return insert_junk(data, rng)
  out = bytearray(data)
  spots = [rng.randrange(len(out)) for _ in range(rng.randint(1, 8))]
  for i in spots:
    out[i] ^= 1 << rng.randrange(8)
  return bytes(out), f'flip bits at {spots}'


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  if not data:
    return insert_junk(data, rng)
  n = rng.randrange(len(data)) if rng.random() < 0.7 else rng.randrange(min(len(data), 64))
  return data[:n], f'truncate to {n}'


def insert_junk(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  at, junk = rng.randrange(len(data) + 1), rng.randbytes(rng.randint(1, 64))
  return data[:at] + junk + data[at:], f'insert {len(junk)} random bytes at {at}'


def delete_range(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  if not data:
    return insert_junk(data, rng)
  at = rng.randrange(len(data))
  n = rng.randint(1, 64)
  return data[:at] + data[at + n :], f'delete {n} bytes at {at}'


def overwrite_int(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  if not data:
    return insert_junk(data, rng)
  """A huge/boundary integer over whatever field happens to be there (sizes, offsets, counts)."""
  width, order = rng.choice((2, 4, 8)), rng.choice('<>')
  value = rng.choice(INTERESTING) % (1 << (8 * width))
  at = rng.randrange(max(1, len(data) - width))
  raw = struct.pack(order + {2: 'H', 4: 'I', 8: 'Q'}[width], value)
  return data[:at] + raw + data[at + width :], f'write {value:#x} ({order}{width}B) at {at}'


GENERIC: list[Mutator] = [flip_bits, truncate, insert_junk, delete_range, overwrite_int]


# Pickle-aware mutations: edit one opcode, keep the rest of the stream valid. #################


def _ops(data: bytes) -> list[tuple[str, object, int, int]]:
  """(opcode name, arg, start, end) of each op of the first pickle in `data`."""
  ops = list(pickletools.genops(data))
  out = []
  for (op, arg, pos), nxt in zip(ops, [p for _, _, p in ops[1:]] + [None]):
    out.append((op.name, arg, pos, nxt if nxt is not None else pos + 1))
  return out


def _encode_int(v: int) -> bytes:
  if 0 <= v < 2**31:
    return b'J' + struct.pack('<i', v)
  raw = v.to_bytes((v.bit_length() + 8) // 8, 'little', signed=True)
  return b'\x8a' + bytes([len(raw)]) + raw


def pickle_huge_int(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  """An int argument (tensor size, stride, offset, storage numel) set to a huge or negative value."""
  ints = [o for o in _ops(data) if o[0] in ('BININT', 'BININT1', 'BININT2', 'LONG1', 'INT')]
  if not ints:
    return pickle_inject(data, rng)
  name, arg, start, end = rng.choice(ints)
  value = rng.choice([*INTERESTING[5:], -1, -(2**31), 2**64, 10**30])
  return data[:start] + _encode_int(value) + data[end:], f'{name} {arg} at {start} -> {value}'


def pickle_lying_length(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  """A string/bytes length prefix made huge, leaving the data as it was."""
  ops = [o for o in _ops(data) if o[0] in ('BINUNICODE', 'SHORT_BINUNICODE', 'BINBYTES')]
  if not ops:
    return pickle_inject(data, rng)
  name, _, start, _ = rng.choice(ops)
  if name == 'SHORT_BINUNICODE':
    head = b'\x8d' + struct.pack('<Q', rng.choice((2**31, 2**40, 2**63 - 1)))  # BINUNICODE8
    return data[:start] + head + data[start + 2 :], f'{name} at {start} -> BINUNICODE8 huge'
  n = rng.choice((2**31 - 1, 2**32 - 1, 2**24))
  return data[: start + 1] + struct.pack('<I', n) + data[start + 5 :], f'{name} at {start} len {n}'


def pickle_huge_memo(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  """A memo index (BINPUT/BINGET) moved to a huge LONG_BINPUT/LONG_BINGET slot."""
  ops = [o for o in _ops(data) if o[0] in ('BINPUT', 'BINGET', 'LONG_BINPUT')]
  if not ops:
    return pickle_inject(data, rng)
  name, _, start, end = rng.choice(ops)
  code = b'j' if 'GET' in name else b'r'
  n = rng.choice((2**20, 2**28, 2**32 - 1))
  return data[:start] + code + struct.pack('<I', n) + data[end:], f'{name} at {start} -> {n}'


def _payloads() -> list[tuple[str, bytes]]:
  """Pickle snippets, net stack effect zero, that would create MARKER if anything ran them."""
  cmd = f'touch {MARKER}'.encode()
  arg = b'X' + struct.pack('<I', len(cmd)) + cmd
  return [
    ('GLOBAL os.system REDUCE', b'cos\nsystem\n(' + arg + b'tR0'),
    ('GLOBAL posix.system REDUCE', b'cposix\nsystem\n(' + arg + b'tR0'),
    ('STACK_GLOBAL os.system', b'\x8c\x02os\x8c\x06system\x93(' + arg + b'tR0'),
    ('INST os.system', b'(' + arg + b'ios\nsystem\n0'),
    ('OBJ subprocess.getoutput', b'(csubprocess\ngetoutput\n' + arg + b'o0'),
    ('builtins.exec', b'cbuiltins\nexec\n(X' + _exec_src(cmd) + b'tR0'),
    # An allow-listed callable with a hostile BUILD: must not be able to set attributes.
    ('BUILD on a rebuild function', b'ctorch._utils\n_rebuild_tensor_v2\n}Vfn\ncos\nsystem\nsb0'),
  ]


def _exec_src(cmd: bytes) -> bytes:
  src = b'import os; os.system(%r)' % cmd.decode()
  return struct.pack('<I', len(src)) + src


def pickle_inject(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  """A code-running snippet spliced in at an op boundary (or as the whole pickle)."""
  name, snippet = rng.choice(_payloads())
  bounds = [start for _, _, start, _ in _ops(data)][1:]  # after PROTO
  if rng.random() < 0.2:
    return b'\x80\x02' + snippet + b'N.', f'whole pickle: {name}'
  at = rng.choice(bounds)
  return data[:at] + snippet + data[at:], f'inject {name} at {at}'


PICKLE: list[Mutator] = [pickle_huge_int, pickle_lying_length, pickle_huge_memo, pickle_inject]


# Zip containers: rewrite with one entry mutated (valid CRCs), or lie in the headers. ###########


def zip_entry(part: str, mutators: list[Mutator]) -> Mutator:
  """Rewrites the archive with one entry whose name contains `part` mutated; CRCs recomputed,
  so the mutation reaches the parser behind the zip layer."""

  def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    src = zipfile.ZipFile(io.BytesIO(data))
    infos = src.infolist()
    target = rng.choice([i for i in infos if part in i.filename])
    fn = rng.choice(mutators)
    new, desc = fn(src.read(target), rng)
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w') as dst:
      for info in infos:
        body = new if info is target else src.read(info)
        dst.writestr(info.filename, body, compress_type=info.compress_type)
    return out.getvalue(), f'{target.filename}: {desc}'

  mutate.__name__ = f'zip_entry[{part}]'
  return mutate


def zip_lying_sizes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  """A local or central header's compressed/uncompressed size (or offset) set to a huge value."""
  spots = []
  for sig, fields in ((b'PK\x03\x04', (18, 22)), (b'PK\x01\x02', (20, 24, 42))):
    at = data.find(sig)
    while at >= 0:
      spots += [at + f for f in fields]
      at = data.find(sig, at + 4)
  at = rng.choice(spots)
  value = rng.choice((2**31 - 1, 2**32 - 2, 2**32 - 1, len(data) * 2))
  return data[:at] + struct.pack('<I', value) + data[at + 4 :], f'zip field at {at} -> {value}'


def pickle_spans(data: bytes) -> list[tuple[int, int]]:
  """(start, end) of each pickle in a stream of consecutive pickles (torch's legacy format)."""
  spans, at = [], 0
  while at < len(data) and data[at : at + 1] == b'\x80':
    end = at + _ops(data[at:])[-1][3]
    spans.append((at, end))
    at = end
  return spans


def in_pickle(mutators: list[Mutator]) -> Mutator:
  """Applies a pickle mutator to one pickle of a consecutive-pickles stream."""

  def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    start, end = rng.choice(pickle_spans(data))
    fn = rng.choice(mutators)
    new, desc = fn(data[start:end], rng)
    return data[:start] + new + data[end:], f'pickle at {start}: {fn.__name__}: {desc}'

  mutate.__name__ = 'in_pickle'
  return mutate


def legacy_numel(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  """The int64 element count before a legacy storage's raw bytes set to a huge value."""
  at = pickle_spans(data)[-1][1]
  value = rng.choice((2**31, 2**40, 2**62, 2**63 - 1, 2**64 - 1))
  return data[:at] + struct.pack('<Q', value) + data[at + 8 :], f'first numel -> {value}'


def npy_header(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  """A .npy header declaring a huge shape, an odd dtype, or a lying header length."""
  hlen = struct.unpack('<H', data[8:10])[0]
  header = data[10 : 10 + hlen].decode('latin1')
  body = data[10 + hlen :]
  kind = rng.randrange(3)
  if kind == 0:
    shape = rng.choice(['(2**40,)', '(8, 2**31)', '(-1,)', '(2**62, 2**62)', '(1099511627776,)'])
    shape = str(eval(shape)) if '**' in shape else shape  # noqa: S307 -- literal ints
    new = header[: header.index("'shape':")] + f"'shape': {shape}, }}"
  elif kind == 1:
    descr = rng.choice(["'|O'", "'<V2000000000'", "'<c16'", "'>f8'", "'<U10'", "[('a', '<f8')]"])
    new = header.replace("'<f8'", descr, 1)
  else:
    lie = rng.choice((0, 1, 0xFFFF, hlen + 7))
    return data[:8] + struct.pack('<H', lie) + data[10:], f'header length {hlen} -> {lie}'
  text = new.rstrip()
  pad = (64 - (10 + len(text) + 1) % 64) % 64
  raw = (text + ' ' * pad + '\n').encode('latin1')
  return data[:8] + struct.pack('<H', len(raw)) + raw + body, f'header {text!r}'


def h5_dims(dims: list[tuple[int, ...]]) -> Mutator:
  """An HDF5 dataspace dimension (stored as 8-byte little-endian ints, then the max dims) set to a
  huge value: finds the known dataset shapes in the file and edits one, in the dims alone or in
  dims and max dims together (a consistent, huge declared shape)."""

  def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    spots = []
    for shape in dims:
      pattern = struct.pack(f'<{len(shape)}Q', *shape)
      at = data.find(pattern)
      while at >= 0:
        spots.append((at, shape, data[at + len(pattern) :].startswith(pattern)))
        at = data.find(pattern, at + 1)
    at, shape, has_max = rng.choice(spots)
    k, value = rng.randrange(len(shape)), rng.choice((2**20, 2**31, 2**40, 2**63 - 1, 2**64 - 1, 0))
    both = has_max and rng.random() < 0.7
    for slot in (k, k + len(shape)) if both else (k,):
      data = data[: at + 8 * slot] + struct.pack('<Q', value) + data[at + 8 * slot + 8 :]
    return data, f'dim {k} of {shape} -> {value}{" (and max dim)" if both else ""}'

  mutate.__name__ = 'h5_dims'
  return mutate


def json_value(data: bytes, rng: random.Random) -> tuple[bytes, str]:
  """One value of a JSON document (a shape, a size, a name, a whole entry) replaced by a huge
  number, a negative one, a value of another type, or removed."""
  doc = json.loads(data)
  spots: list[tuple[object, object]] = []

  def walk(node: object) -> None:
    items = (
      node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    )
    for k, v in items:
      spots.append((node, k))
      walk(v)

  walk(doc)
  if not spots:
    return flip_bits(data, rng)
  node, key = rng.choice(spots)
  new = rng.choice([2**40, 2**63 - 1, -1, 1e308, 'x' * 9, None, [], {}, [2**31] * 4, 'DELETE'])
  if new == 'DELETE':
    del node[key]  # type: ignore[index]
  else:
    node[key] = new  # type: ignore[index]
  return json.dumps(doc).encode(), f'json {key!r} -> {new!r}'
