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
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import fuzz_mutators
from fuzz_mutators import GENERIC, Mutator

HERE = Path(__file__).resolve().parent


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
  sys.path[:0] = [str(HERE), str(HERE / 'fixtures')]
  marker = fuzz_mutators.MARKER = workdir / 'MARKER-code-ran'
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
          rec['trace'] = traceback.format_exc()[-2500:]
      finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
      rec['secs'] = round(time.perf_counter() - t0, 4)
      if trace:
        rec['peak'] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
      rec['code_ran'] = marker.exists()
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
