"""A seeded mutation fuzzer for the file readers: every case reproduces from (target, seed, index).

Each target (a function in a test module) returns a `Target`: the valid seed files, optional
format-aware mutators per file, and the readers to feed. `run_target` runs the cases in a child
process (so a crash or a hang in C code - h5py, tensorstore - cannot take pytest down) under an
address-space limit (a declared-huge allocation fails there instead of swapping the machine),
with a per-case alarm and tracemalloc, and returns one record per (case, reader):
'ok' | 'user' (a UserError) | 'escaped' (anything else, with the traceback's last lines).
A case is reproduced with `python tests/fuzzing.py TEST_FILE TARGET SEED N DIR --only I`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickletools
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import traceback
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
Mutator = Callable[[bytes, random.Random], tuple[bytes, str]]
# The file the injected pickles try to create (set in the child before any case runs).
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


@dataclasses.dataclass
class Target:
  files: dict[str, bytes]  # relative path -> valid content
  readers: dict[str, Callable[[Path], object]]  # name -> reads the case directory
  aware: dict[str, list[Mutator]] = dataclasses.field(default_factory=dict)  # per file
  weights: dict[str, float] = dataclasses.field(default_factory=dict)  # file choice, default 1
  # reader -> path prefix: a reader runs only on cases that mutate a file under its prefix.
  scope: dict[str, str] = dataclasses.field(default_factory=dict)
  # Whole-file-set variants made with the format's own writer: (mutated path, description, files).
  variants: list[tuple[str, str, dict[str, bytes]]] = dataclasses.field(default_factory=list)


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
    ('OBJ subprocess.call', b'(csubprocess\ncall\n' + arg + b'o0'),
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


# Running the cases in a child process. ######################################################


class CaseTimeout(BaseException):
  """Raised by the per-case alarm; a BaseException so no reader's `except Exception` eats it."""


def _alarm(signum, frame):
  raise CaseTimeout('case exceeded its time limit')


def case_input(target: Target, seed: int, i: int) -> tuple[dict[str, bytes], str, str]:
  """The files of case `i`: one seed file mutated (generic or format-aware), the others intact."""
  rng = random.Random(f'{seed}:{i}')
  if target.variants and rng.random() < 0.1:
    name, desc, files = rng.choice(target.variants)
    return files, f'{name}: variant: {desc}', name
  names = sorted(target.files)
  name = rng.choices(names, [target.weights.get(n, 1.0) for n in names])[0]
  aware = target.aware.get(name, [])
  fn = rng.choice(aware) if aware and rng.random() < 0.5 else rng.choice(GENERIC)
  data, desc = fn(target.files[name], rng)
  return {**target.files, name: data}, f'{name}: {fn.__name__}: {desc}', name


def _child(module: str, target_name: str, seed: int, n: int, workdir: Path, only: int) -> None:
  global MARKER
  sys.path[:0] = [str(HERE), str(HERE / 'fixtures')]
  MARKER = workdir / 'MARKER-code-ran'
  sys.path.insert(0, os.path.dirname(os.path.abspath(module)))
  name = os.path.splitext(os.path.basename(module))[0]
  target: Target = getattr(__import__(name), target_name)(workdir / 'seed')
  limit_s = float(os.environ.get('FUZZ_CASE_LIMIT_S', '10'))
  signal.signal(signal.SIGALRM, _alarm)
  clean = workdir / 'clean'
  _write(clean, target.files)
  for read in target.readers.values():  # warm up imports and caches; must pass on valid files
    read(clean)
  budget = int(os.environ.get('FUZZ_AS_BUDGET_MB', '1024')) << 20
  with open('/proc/self/statm') as f:
    vm = int(f.read().split()[0]) * os.sysconf('SC_PAGE_SIZE')
  resource.setrlimit(resource.RLIMIT_AS, (vm + budget, resource.RLIM_INFINITY))
  rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  trace = os.environ.get('FUZZ_TRACEMALLOC') == '1'
  for i in range(n) if only < 0 else [only]:
    files, desc, mutated = case_input(target, seed, i)
    case = workdir / f'case{i}'
    _write(case, files)
    size = sum(len(v) for v in files.values())
    for reader, read in target.readers.items():
      if not mutated.startswith(target.scope.get(reader, '')):
        continue
      print(json.dumps({'start': i, 'reader': reader}), flush=True)
      rec = {'case': i, 'reader': reader, 'desc': desc, 'size': size}
      if trace:
        tracemalloc.start()
      t0 = time.perf_counter()
      signal.setitimer(signal.ITIMER_REAL, limit_s)
      try:
        read(case)
        rec['outcome'] = 'ok'
      except BaseException as e:  # noqa: BLE001 -- classifying is the point
        from jaxstyle.errors import UserError

        rec['outcome'] = 'user' if isinstance(e, UserError) else 'escaped'
        rec['error'] = f'{type(e).__name__}: {str(e)[:400]}'
        if rec['outcome'] == 'escaped':
          rec['trace'] = ''.join(traceback.format_exc(limit=-4))[-1500:]
      finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
      rec['secs'] = round(time.perf_counter() - t0, 4)
      if trace:
        rec['peak'] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
      rec['code_ran'] = MARKER.exists()
      print(json.dumps(rec), flush=True)
    if only < 0:
      shutil.rmtree(case, ignore_errors=True)
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  print(json.dumps({'done': n, 'maxrss_growth_kb': rss - rss0}), flush=True)


def _write(folder: Path, files: dict[str, bytes]) -> None:
  for name, data in files.items():
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def run_target(
  module: str, target: str, seed: int, n: int, workdir: Path, timeout_s: float, trace: bool = False
) -> tuple[list[dict], dict]:
  """Runs `n` cases in a child; returns (per-case records, the final summary). A child that hangs
  or dies is reported as a failure naming the case it was in."""
  cmd = [sys.executable, __file__, module, target, str(seed), str(n), str(workdir)]
  env = {**os.environ, 'MALLOC_ARENA_MAX': '2', 'FUZZ_TRACEMALLOC': '1' if trace else '0'}
  try:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    out, err, rc = proc.stdout, proc.stderr, proc.returncode
  except subprocess.TimeoutExpired as e:
    out, err, rc = (e.stdout or b'').decode(), (e.stderr or b'').decode(), 'timeout'
  lines = [json.loads(line) for line in out.splitlines() if line.startswith('{')]
  records = [r for r in lines if 'outcome' in r]
  summary = next((r for r in lines if 'done' in r), None)
  if rc != 0 or summary is None:
    last = next((r for r in reversed(lines) if 'start' in r), None)
    raise AssertionError(
      f'fuzz child {module}.{target} seed {seed} ended with {rc} during {last}; '
      f'stderr tail:\n{err[-3000:]}'
    )
  return records, summary


def describe(records: list[dict]) -> str:
  return '\n'.join(json.dumps(r) for r in records[:5])


if __name__ == '__main__':
  args = sys.argv[1:]
  only = int(args[args.index('--only') + 1]) if '--only' in args else -1
  _child(args[0], args[1], int(args[2]), int(args[3]), Path(args[4]), only)
