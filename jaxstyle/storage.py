"""A run's files on disk, the side that needs no Orbax: layout, partial saves, write failures.

Layout of a training run:

  {workdir}/config.json          written by the trainer (process 0)
  {workdir}/metrics.jsonl, tb/   metrics (`jaxstyle.metrics`), process 0
  {workdir}/ckpt/{step}/state    the whole train state (StandardSave: params, opt, pools, rng, step)
  {workdir}/ckpt/{step}/extra    optional JSON metadata (data position, model config, ...)

Atomicity: Orbax writes each step into `{step}.orbax-checkpoint-tmp*` and renames it once every
process has finished (on gs:// it writes `commit_success.txt` instead), so a save killed with -9
leaves only a tmp directory that Orbax does not list and the next manager deletes; a save that
failed for lack of space has its tmp directory removed at once (`remove_partial_saves`). A step
that exists but does not restore is renamed to `{step}.corrupt-{YYYYmmdd-HHMMSS}` (`move_aside`).

A long run that cannot write its checkpoint or its metrics must stop at once and say so in one
line (the error boundary in `jaxstyle.cli`): what failed, where, how much space is left there,
and which checkpoint remains the newest good one, so the user frees space and re-runs the same
command (docs/troubleshooting.md, "A full disk"). Orbax's own writes fail inside tensorstore
(`RESOURCE_EXHAUSTED ... [os_error_code='28']`) or inside Python threads (`OSError`), so the
errno is looked for in both shapes. No Orbax import here (`checkpoint.py` is the only importer);
the checkpoint layout it reads (`{step}` directories, `*.orbax-checkpoint-tmp*` partial saves) is
the one `checkpoint.py` documents.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import shutil
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from jaxstyle.errors import UserError

# The errnos that mean "this location cannot take more data", not "jaxstyle has a bug".
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
COMMIT_FILE = 'commit_success.txt'
PARTIAL_SAVE_MARK = '.orbax-checkpoint-tmp'  # Orbax's name for a save that has not committed
_TENSORSTORE_ERRNO = re.compile(r"os_error_code='?(\d+)")


def cfg_get(config: Any, dotted: str, default: Any) -> Any:
  """Reads `a.b` from a ConfigDict, a plain dict or None, so tests need not build full configs."""
  node = config
  for key in dotted.split('.'):
    if node is None:
      return default
    node = node.get(key) if isinstance(node, Mapping) else getattr(node, key, None)
  return default if node is None else node


def is_local(path: Any) -> bool:
  return '://' not in os.fspath(path)


def write_errno(err: BaseException) -> int | None:
  """The write errno (ENOSPC, EDQUOT, EROFS, EFBIG) behind `err` or its causes, else None."""
  seen: set[int] = set()
  node: BaseException | None = err
  while node is not None and id(node) not in seen:
    seen.add(id(node))
    if isinstance(node, OSError) and node.errno in WRITE_ERRNOS:
      return node.errno
    match = _TENSORSTORE_ERRNO.search(str(node))
    if match and int(match.group(1)) in WRITE_ERRNOS:
      return int(match.group(1))
    node = node.__cause__ or node.__context__
  return None


def free_space(path: Any) -> str:
  """Free bytes on the filesystem holding `path` (its nearest existing parent), e.g. '0 B'."""
  if not is_local(path):
    return 'unknown'
  probe = os.path.abspath(os.fspath(path))
  while not os.path.exists(probe) and os.path.dirname(probe) != probe:
    probe = os.path.dirname(probe)
  try:
    free = float(shutil.disk_usage(probe).free)
  except OSError:
    return 'unknown'
  for unit in ('B', 'KB', 'MB', 'GB'):
    if free < 1024 or unit == 'GB':
      return f'{free:.0f} {unit}' if unit == 'B' else f'{free:.1f} {unit}'
    free /= 1024
  raise AssertionError('unreachable')


def committed_steps(ckpt_dir: Any) -> list[int]:
  """The steps of the `{step}` directories under a local `ckpt_dir` ([] for gs://)."""
  if not is_local(ckpt_dir) or not os.path.isdir(ckpt_dir):
    return []
  names = [n for n in os.listdir(ckpt_dir) if n.isdigit()]
  return sorted(int(n) for n in names if os.path.isdir(os.path.join(ckpt_dir, n)))


def check_committed(step_dir: Any) -> None:
  """Raises if the `epath.Path` `step_dir` exists without `commit_success.txt`: Orbax 0.12 writes
  that marker in both its rename and its commit-file modes, so a step without it is damage."""
  if step_dir.exists() and not (step_dir / COMMIT_FILE).exists():
    raise FileNotFoundError(f'{step_dir} has no {COMMIT_FILE} (interrupted or damaged save)')


def remove_partial_saves(ckpt_dir: Any) -> list[int]:
  """Deletes the `{step}.orbax-checkpoint-tmp*` directories of failed saves; returns their steps.

  Local paths only (an object store keeps no partial directory: Orbax commits with a marker
  file there). Only process 0 deletes; call it after every process has stopped writing.
  """
  if not is_local(ckpt_dir) or not os.path.isdir(ckpt_dir):
    return []
  steps = []
  for name in sorted(os.listdir(ckpt_dir)):
    head, mark, _ = name.partition(PARTIAL_SAVE_MARK)
    if mark and head.isdigit():
      shutil.rmtree(os.path.join(ckpt_dir, name), ignore_errors=True)
      steps.append(int(head))
  return steps


def move_aside(ckpt_dir: str, steps: list[int]) -> list[tuple[int, str, str]]:
  """Renames each local `{step}` dir to `{step}.corrupt-{time}` (a name Orbax does not list);
  returns (step, old path, new path) for each one moved. Renaming, not deleting: the files may
  be worth inspecting."""
  stamp, moved = time.strftime('%Y%m%d-%H%M%S'), []
  for step in steps:
    src = os.path.join(ckpt_dir, str(step))
    if not os.path.exists(src):
      continue
    dst, n = f'{src}.corrupt-{stamp}', 1
    while os.path.exists(dst):
      dst, n = f'{src}.corrupt-{stamp}-{n}', n + 1
    os.rename(src, dst)
    moved.append((step, src, dst))
  return moved


def brief(error: BaseException) -> str:
  """`Type: message`, cut short: tensorstore errors embed a whole JSON spec."""
  text = ' '.join(str(error).split())
  return f'{type(error).__name__}: {text[:300]}{"..." if len(text) > 300 else ""}'


class RunNotFoundError(UserError, FileNotFoundError):
  """The directory is not a training run (no config.json, or no checkpoint yet)."""


class UnreadableCheckpointError(UserError, RuntimeError):
  """Checkpoints exist but none restores (damaged, or written for another config)."""


def read_run_config(workdir: Any) -> dict:
  """`{workdir}/config.json` (`workdir` an `epath.Path`, local or gs://) as a dict; a missing or
  damaged one is a `RunNotFoundError` naming it."""
  config_file = workdir / 'config.json'
  if not config_file.exists():
    raise RunNotFoundError(
      f'{workdir} is not a training run: it has no config.json (pass the --workdir given to '
      '`jaxstyle train`)'
    )
  try:  # a run's config.json damaged by hand or cut short: one line naming it (issue #24)
    config = json.loads(config_file.read_text())
  except (OSError, ValueError) as err:
    raise RunNotFoundError(f'{config_file} cannot be read as a run config ({err})') from err
  if not isinstance(config, dict):
    raise RunNotFoundError(f'{config_file} is not a run config (a JSON object)')
  return config


def first_readable(steps: list[int], read: Any, where: Any, log: logging.Logger) -> tuple:
  """(read(step), step) for the first of `steps` (newest first) that reads; each failure is a
  WARNING on `log` and the previous step is tried; none: `UnreadableCheckpointError`."""
  last_error: Exception | None = None
  for step in steps:
    try:
      value = read(step)
    except Exception as e:  # noqa: BLE001 -- any failure of one step means "try the previous"
      log.warning(
        'Checkpoint step %d in %s failed to restore (%s); trying the previous step.',
        step,
        where,
        brief(e),
      )
      last_error = e
      continue
    if last_error is not None:
      log.warning('Read step %d of %s: the newer checkpoint(s) are unreadable.', step, where)
    return value, step
  raise UnreadableCheckpointError(
    f'None of the checkpoints {steps} in {where} could be restored; last error: {brief(last_error)}'
  ) from last_error


def check_declared(tree: Any, where: Any) -> None:
  """Refuses arrays whose declared sizes add up to more than this machine's memory, before Orbax
  allocates them: with no target shape to compare against, a damaged array metadata (a shape of
  2**40) makes tensorstore abort the process (std::bad_alloc). The file size is no bound here:
  zstd chunks of zeros expand ~30000:1 and chunks equal to the fill value are not stored."""
  import jax  # only restores need it; this module is imported by the CLI at start-up

  declared = sum(  # a chunk is decoded whole, so a huge declared chunk counts too
    max(math.prod(leaf.shape), math.prod(getattr(leaf.storage, 'chunk_shape', None) or ()))
    * np.dtype(leaf.dtype).itemsize
    for leaf in jax.tree.leaves(tree)
    if getattr(leaf, 'shape', None) is not None and getattr(leaf, 'dtype', None) is not None
  )
  memory = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
  if declared > memory:
    raise UnreadableCheckpointError(
      f'{where} declares {declared} bytes of arrays, more than this machine has ({memory}): '
      'its metadata is damaged'
    )


class WriteFailedError(UserError, OSError):
  """A checkpoint, metrics or sample write failed for lack of space or write access.

  The message is built when printed (after the trainer has closed its checkpoint manager), so
  "the newest good checkpoint" is what is on disk when the user reads it.
  """

  def __init__(self, what: str, path: Any, code: int, workdir: Any | None = None):
    super().__init__(code, os.strerror(code))
    self.what, self.path, self.workdir = what, os.fspath(path), workdir
    self.free = free_space(path)

  def __str__(self) -> str:
    text = (
      f'{self.what} failed: {self.strerror} ({self.path}); {self.free} free there. '
      f'{newest_checkpoint_note(self.workdir)}'
    )
    return text

  def __reduce__(self) -> tuple:  # picklable (the message is rebuilt from the fields)
    return type(self), (self.what, self.path, self.errno, self.workdir)


def newest_checkpoint_note(workdir: Any | None) -> str:
  """'The newest good checkpoint is step N (...); free space and re-run ...' for `workdir`."""
  advice = 'free space (or move the run to a larger disk) and re-run the same command'
  if workdir is None:
    return advice[0].upper() + advice[1:] + '.'
  ckpt_dir = os.path.join(os.fspath(workdir), 'ckpt')
  steps = committed_steps(ckpt_dir)
  if not steps:
    return f'No checkpoint was saved yet; {advice} to start again.'
  newest = os.path.join(ckpt_dir, str(steps[-1]))
  return f'The newest good checkpoint is step {steps[-1]} ({newest}); {advice} to resume from it.'


def as_write_failure(err: BaseException, what: str, path: Any, workdir: Any | None) -> Exception:
  """`err` as a `WriteFailedError` when it is a full disk / quota / read-only error, else `err`."""
  if isinstance(err, WriteFailedError):
    return err
  code = write_errno(err)
  if code is None:
    return err  # not a storage condition: a bug keeps its traceback
  return WriteFailedError(what, path, code, workdir)


@contextmanager
def write_failures(what: str, path: Any, workdir: Any | None) -> Iterator[None]:
  """Re-raises a full-disk / quota / read-only `OSError` inside as a `WriteFailedError`."""
  try:
    yield
  except OSError as err:
    failure = as_write_failure(err, what, path, workdir)
    if failure is err:
      raise
    raise failure from err


_THREAD_FAILURES: list[BaseException] = []


def catch_thread_write_failures() -> None:
  """Installs (once) a `threading.excepthook` that keeps a background writer's full-disk error
  for `raise_thread_write_failure` instead of printing its traceback (`--debug` prints it too)."""
  previous = threading.excepthook
  if getattr(previous, 'jaxstyle_write_failures', False):
    return

  def hook(args: Any) -> None:
    if args.exc_value is not None and write_errno(args.exc_value) is not None:
      _THREAD_FAILURES.append(args.exc_value)
      if not _debug():
        return
    previous(args)

  hook.jaxstyle_write_failures = True  # type: ignore[attr-defined]
  threading.excepthook = hook


def raise_thread_write_failure() -> None:
  """Raises, on the calling thread, a write failure a background thread died of (its OSError)."""
  if _THREAD_FAILURES:
    raise _THREAD_FAILURES.pop(0)


def _debug() -> bool:
  return os.environ.get('JAXSTYLE_DEBUG', '').strip().lower() in ('1', 'true', 'yes', 'on')


def save_failure(err: Exception, ckpt_dir: str, is_main: bool) -> Exception:
  """A failed checkpoint save as `WriteFailedError` (full disk, quota, read-only), after process 0
  removed the save's partial `{step}.orbax-checkpoint-tmp` directory; other errors as they are."""
  failure = as_write_failure(err, 'checkpoint save', ckpt_dir, os.path.dirname(ckpt_dir))
  if failure is not err and not _debug():  # the failed save abandons its other array writes
    warnings.filterwarnings('ignore', r"coroutine '.*' was never awaited", RuntimeWarning)
  if failure is not err and is_main:
    steps = remove_partial_saves(ckpt_dir)
    if steps:
      failure.what = f'checkpoint save of step {steps[-1]}'
  return failure


class _QuietOrbaxThreads(logging.Filter):
  """Drops the tracebacks of Orbax's threads and tasks unless debugging: a save that fails for lack
  of space logs one per thread and per array (hundreds, through absl and asyncio), while the
  error itself reaches the main thread and is reported there as one line. `--debug` /
  `JAXSTYLE_DEBUG=1` keeps them."""

  def filter(self, record: logging.LogRecord) -> bool:
    if not record.exc_info or _debug():
      return True
    if record.exc_info[1] is not None and write_errno(record.exc_info[1]) is not None:
      return False  # e.g. asyncio's "Future exception was never retrieved" of a tensorstore write
    where = [record.pathname, record.getMessage()]
    where += [frame.filename for frame in traceback.extract_tb(record.exc_info[2])]
    return not any(_ORBAX in text for text in where)


_ORBAX = f'{os.sep}orbax{os.sep}'
QUIET_ORBAX_THREADS = _QuietOrbaxThreads()


def quiet_orbax_noise() -> None:
  """Installs (once) the filters that keep Orbax's failure noise from the terminal: its logged
  tracebacks (absl, asyncio) and the "Event loop is closed" errors of tensorstore's callbacks
  when a failed save's event loop is gone (`sys.unraisablehook`, printed without a header)."""
  for name in ('absl', 'asyncio'):
    logging.getLogger(name).addFilter(QUIET_ORBAX_THREADS)
  previous = sys.unraisablehook
  if getattr(previous, 'jaxstyle_quiet', False):
    return

  def hook(unraisable: Any) -> None:
    value = unraisable.exc_value
    if isinstance(value, RuntimeError) and str(value) == 'Event loop is closed' and not _debug():
      return
    previous(unraisable)

  hook.jaxstyle_quiet = True  # type: ignore[attr-defined]
  sys.unraisablehook = hook


def to_json(obj: Any) -> Any:
  """Round-trips through json so numpy scalars / ConfigDicts convert (or fail) at save time."""

  def default(o: Any) -> Any:
    if isinstance(o, np.generic):
      return o.item()
    if isinstance(o, np.ndarray):
      return o.tolist()
    if hasattr(o, 'to_dict'):
      return o.to_dict()
    raise TypeError(f'not JSON-serialisable: {type(o).__name__}')

  return json.loads(json.dumps(obj, default=default))
