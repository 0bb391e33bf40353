"""One run per workdir: the trainer's lock, the config-drift check on resume, the config history.

The workdir is a run's identity (re-running the same command resumes), so `jaxstyle train` makes
sure of two things before it builds anything (docs/troubleshooting.md, docs/reproducibility.md):

- **One trainer at a time.** `RunLock` holds an `fcntl.flock` on `{workdir}/jaxstyle.lock` for the
  process lifetime and writes its owner (host, pid, start time, boot id) into the file. The kernel
  (or, on NFSv4, the server) drops the lock when the process dies, so a `kill -9`'d or crashed run
  never blocks the next one: that run finds the old owner's record still there, says so in one
  warning, and takes over. A second live trainer gets one line naming the owner (exit 2). Object
  stores (`gs://...`) and filesystems without `flock` get the owner file alone: the same host
  takes over a record whose pid is gone (or whose boot id changed: the VM restarted); a record
  from another host cannot be checked from here, so the error says which file to delete.
- **The same run.** `check_config` compares the requested config with the `config.json` the
  trainer wrote last (its "runtime" section ignored): fields that shape the checkpointed state or
  the data stream (`config_drift.RULES`, per task) are refused in one line, other changes resume with a notice,
  and every start appends its config to `{workdir}/config_history.jsonl`, one line per write.

No jax here: all of it runs before JAX starts (jaxstyle.main).
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

from jaxstyle.config_drift import FREE, STREAM, config_changes, describe, field_class
from jaxstyle.errors import ConfigError, UserError

LOCK_FILE = 'jaxstyle.lock'
CONFIG_FILE = 'config.json'
HISTORY_FILE = 'config_history.jsonl'

log = logging.getLogger(__name__)


class WorkdirBusyError(UserError, RuntimeError):
  """Another trainer holds the workdir's lock."""


class ConfigDriftError(ConfigError):
  """The requested config changes a field that shapes the workdir's state or data stream."""


def _path(path: str) -> Any:
  """`path` as an etils.epath.Path (local files and object stores alike; no jax)."""
  from etils import epath

  return epath.Path(path)


def _as_dict(config: Any) -> dict:
  return json.loads(config.to_json()) if hasattr(config, 'to_json') else dict(config)


def check_config(workdir: str, config: Any) -> dict[str, tuple] | None:
  """Raises ConfigDriftError if `config` would change what `workdir`'s run is; returns the other
  changes ({} when none), or None when the workdir holds no run yet (no config.json).

  `config` is a ConfigDict (anything with `to_json()`) or a plain dict. Read-only: every process
  of a multi-host run may call it.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  requested = _as_dict(config)
  try:
    recorded = json.loads(_path(path).read_text())
    if not isinstance(recorded, dict):
      raise ValueError('not a JSON object')
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as err:
    raise UserError(f'{path} is unreadable ({err}); restore it or pass a new --workdir') from err
  task = str(requested.get('task', recorded.get('task', 'cyclegan')))
  changes = config_changes(recorded, requested)
  classes = {k: field_class(task, k) for k in changes}
  shaping = {k: v for k, v in changes.items() if classes[k] != FREE}
  if shaping:
    if 'resume' in requested and all(classes[k] == STREAM for k in shaping):
      todo = f'add --config.resume={workdir} to start it from this run'
    else:
      todo = "this run's checkpoints cannot take the change"
    raise ConfigDriftError(
      f'workdir {workdir} holds a run with other values of {describe(shaping)}; these shape '
      f'its checkpointed state or data stream: pass a new --workdir ({todo}), or drop the override'
    )
  return changes


def record_start(workdir: str, config: Any, changes: Mapping[str, tuple] | None) -> str:
  """Appends this start's config to `{workdir}/config_history.jsonl` and says what changed.

  `changes` is `check_config`'s answer (None: a new run). A workdir from before the history file
  first gets its config.json as a "recorded" line, so the file holds every config the run used.
  """
  path = os.path.join(workdir, HISTORY_FILE)
  requested = _as_dict(config)
  lines = []
  if changes is not None and not _path(path).exists():
    recorded = json.loads(_path(os.path.join(workdir, CONFIG_FILE)).read_text())
    lines.append({'event': 'recorded', 'config': recorded})
  lines.append(
    {
      'event': 'start' if changes is None else 'resume',
      **_identity(),
      'changed': {k: list(v) for k, v in (changes or {}).items()},
      'config': requested,
    }
  )
  _append_lines(path, [json.dumps(line, sort_keys=True) for line in lines])
  if changes:
    log.info('Resuming %s with changed %s (history: %s)', workdir, describe(changes), path)
  return path


def read_history(workdir: str) -> list[dict]:
  """The history's records in order; a torn last line (a write cut short) is skipped."""
  text = _path(os.path.join(workdir, HISTORY_FILE)).read_text()
  return [json.loads(x) for x in text.splitlines() if x.strip() and _parse_owner(x) is not None]


def _append_lines(path: str, lines: list[str]) -> None:
  """Each line is one `write` on an O_APPEND descriptor, so concurrent appends never interleave
  within a line. Object stores cannot append: the object is rewritten (we hold the lock)."""
  data = [(line + '\n').encode() for line in lines]
  try:
    if '://' in path:
      p = _path(path)
      p.write_bytes((p.read_bytes() if p.exists() else b'') + b''.join(data))
      return
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
      size = os.fstat(fd).st_size  # a torn last line is ended first, so this one parses
      if size and os.pread(fd, 1, size - 1) != b'\n':
        data[0] = b'\n' + data[0]
      for chunk in data:
        if os.write(fd, chunk) != len(chunk):
          raise OSError(errno.ENOSPC, 'short write', path)
    finally:
      os.close(fd)
  except OSError as err:
    raise UserError(
      f'cannot write {path}: {err.strerror or err}; free space or fix permissions'
    ) from err


#### The lock


def _boot_id() -> str:
  try:
    with open('/proc/sys/kernel/random/boot_id') as f:
      return f.read().strip()
  except OSError:
    return ''


def _identity() -> dict[str, Any]:
  now = datetime.datetime.now(datetime.UTC)
  return dict(host=socket.gethostname(), pid=os.getpid(), since=f'{now:%Y-%m-%dT%H:%M:%SZ}')


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0) if pid > 0 else None  # signal 0: only asks whether it exists
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # another user's process
  return pid > 0


def _owner_text(owner: Mapping[str, Any] | None) -> str:
  if not owner:
    return 'another trainer (its owner record is not written yet)'
  return f'pid {owner.get("pid")} on host {owner.get("host")} since {owner.get("since")}'


def _parse_owner(text: str) -> dict | None:
  try:
    owner = json.loads(text) if text.strip() else None
  except ValueError:
    return None
  return owner if isinstance(owner, dict) else None


def _dead_here(owner: Mapping[str, Any]) -> bool:
  """Whether an owner record is of this host and its process is gone (or the host rebooted)."""
  if owner.get('host') != socket.gethostname():
    return False
  if owner.get('boot_id') and owner.get('boot_id') != _boot_id():
    return True
  pid = owner.get('pid')
  return isinstance(pid, int) and not _pid_alive(pid)


_WAIT = 'wait for it to finish or stop it'


class RunLock:
  """The workdir's trainer lock, held from `acquire` until `release` or the process's end.

  Local paths: an exclusive `flock` on `jaxstyle.lock` plus the owner record in it. The kernel
  drops the flock when the process dies however it dies, so a record found under a free lock is
  a dead run's: taken over with a warning. The record is cleared on release. Where flock is not
  available (object stores, some network filesystems) only the record exists; see the module doc.
  """

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd: int | None = None
    self._marker = False
    self.previous: dict | None = None  # the dead owner taken over, if any

  def acquire(self) -> RunLock:
    """Takes the lock or raises WorkdirBusyError naming its live owner."""
    me = {**_identity(), 'boot_id': _boot_id()}
    if '://' in self.path or not self._try_flock():
      self._acquire_marker(me)
    else:
      os.ftruncate(self._fd, 0)
      os.pwrite(self._fd, json.dumps(me, sort_keys=True).encode() + b'\n', 0)
    if self.previous is not None:
      log.warning(
        'Took over %s from %s, which ended without releasing it (killed or crashed); the run '
        'resumes from its newest checkpoint',
        self.path,
        _owner_text(self.previous),
      )
    self._me = me
    return self

  def _try_flock(self) -> bool:
    """True with the flock held; False where the filesystem has no flock (use the record)."""
    os.makedirs(self.workdir, exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      owner = _parse_owner(os.pread(fd, 4096, 0).decode(errors='replace'))
      os.close(fd)
      if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise self._busy(owner) from None
      return False  # ENOLCK, EOPNOTSUPP...: no working flock here
    self._fd = fd
    self.previous = _parse_owner(os.pread(fd, 4096, 0).decode(errors='replace'))
    return True

  def _acquire_marker(self, me: dict) -> None:
    path = _path(self.path)
    if path.exists():
      owner = _parse_owner(path.read_text())
      if owner is not None and not _dead_here(owner):
        here = owner.get('host') == socket.gethostname()  # else: cannot tell from here
        raise self._busy(owner, _WAIT if here else f'if it is dead, delete {self.path}')
      self.previous = owner or {}
    path.write_text(json.dumps(me, sort_keys=True) + '\n')
    # No atomic create-if-absent here: of two starts racing, the one whose record was
    # overwritten sees it and steps back.
    if _parse_owner(path.read_text()) != me:
      raise self._busy(_parse_owner(path.read_text()))
    self._marker = True

  def _busy(self, owner: dict | None, todo: str = _WAIT) -> WorkdirBusyError:
    return WorkdirBusyError(
      f'workdir {self.workdir} is in use by {_owner_text(owner)} (lock {self.path}): {todo}, '
      'or pass another --workdir'
    )

  def release(self) -> None:
    """Clears the owner record and drops the lock (idempotent)."""
    if self._fd is not None:
      try:
        os.ftruncate(self._fd, 0)
      except OSError:
        pass  # the lock goes with the descriptor anyway
      os.close(self._fd)  # closing drops the flock
      self._fd = None
    if self._marker:
      self._marker = False
      path = _path(self.path)
      try:
        if _parse_owner(path.read_text()) == self._me:
          path.unlink()
      except OSError:
        pass


class Claim:
  """What `jaxstyle train` does with its workdir: lock, drift check, history line, then release.

  One process: all of it on entering, before JAX starts. Several processes share one run's
  workdir, so only process 0 locks, checks and records, once they are connected (`connected`),
  and every process learns whether it may go on: all of them stop together.
  """

  def __init__(self, workdir: str, config: Any, distributed: bool = False):
    self.workdir, self.config, self.distributed = workdir, config, distributed
    self.lock = RunLock(workdir)

  def _start(self) -> None:
    self.lock.acquire()
    record_start(self.workdir, self.config, check_config(self.workdir, self.config))

  def __enter__(self) -> Claim:
    if not self.distributed:
      try:
        self._start()
      except BaseException:
        self.lock.release()
        raise
    return self

  def connected(self, process_index: int, all_ok: Callable[[bool], bool]) -> None:
    """Several processes: process 0 claims the workdir; `all_ok(ok)` is True iff every process
    passed True (a collective every process calls)."""
    if not self.distributed:
      return
    error = None
    if process_index == 0:
      try:
        self._start()
      except Exception as err:  # noqa: BLE001 -- raised below, once every process knows
        error = err
    if not all_ok(error is None):
      raise error or UserError(
        f'process 0 could not start on workdir {self.workdir}; its output says why'
      )

  def __exit__(self, *exc: Any) -> None:
    self.lock.release()
