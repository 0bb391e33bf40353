"""Process-0 metrics: `metrics.jsonl` (what the figure scripts read) plus optional TensorBoard.

No external services (docs/design/house_style.md). Each record is one `os.write` of a whole line to
a file opened with O_APPEND, so a killed run loses at most the line being written: `read_metrics`
ignores such a torn last line (and the lines a resume rolled back), and the next writer cuts it
off. A write that fails for lack of space or write access (full disk, quota, read-only) raises
`storage.WriteFailedError`, one line at the CLI; so does a TensorBoard write, which tensorboardX
makes in a background thread (`storage.catch_thread_write_failures`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxstyle import storage
from jaxstyle.errors import check_finite

METRICS_FILE = 'metrics.jsonl'
TB_DIR = 'tb'
RESUME_MARKER = {'event': 'resume'}  # the only kind of line without a 'step'

log = logging.getLogger(__name__)


def _scalar(v: Any) -> int | float:
  """Host scalar from a Python/NumPy/JAX number; ints stay ints so counters read back exactly."""
  a = np.asarray(v)
  if a.size != 1:
    raise ValueError(f'metric values must be scalars, got shape {a.shape}')
  item = a.reshape(()).item()
  if isinstance(item, bool | np.bool_):
    return int(item)
  return item if isinstance(item, int) else float(item)


def write_config(workdir: str, config: Any, runtime: Mapping[str, Any]) -> str:
  """Writes `{workdir}/config.json`: the run's config plus a "runtime" section (what 'auto'
  resolved to, backend, versions), which moves numbers and speed, so the record says it."""
  path = os.path.join(workdir, 'config.json')
  _warn_device_count_change(path, config, runtime)
  with storage.write_failures('config write', path, workdir):
    os.makedirs(workdir, exist_ok=True)
    with open(path, 'w') as f:
      json.dump(
        dict(json.loads(config.to_json()), runtime=dict(runtime)), f, indent=2, sort_keys=True
      )
  return path


def _warn_device_count_change(path: str, config: Any, runtime: Mapping[str, Any]) -> None:
  """One WARNING when a run continues on another device count than it last ran on: its state
  restores (it is replicated), but the global batch, so the data stream, and per-device batch
  statistics are another run's from here on; an exact resume needs the same count."""
  try:
    with open(path) as f:
      before = json.load(f).get('runtime', {}).get('devices')
  except (OSError, ValueError, AttributeError):
    return
  now = runtime.get('devices')
  if before is None or now is None or before == now:
    return
  per_device = config.get('per_device_batch') if hasattr(config, 'get') else None
  batch = (
    f' (global batch {per_device * before} -> {per_device * now})'
    if isinstance(per_device, int)
    else ''
  )
  log.warning(
    '%s last ran on %d devices and now runs on %d%s: the data stream from here on differs from '
    'an uninterrupted run; use the same device count for an exact resume.',
    os.path.dirname(path) or '.',
    before,
    now,
    batch,
  )


class MetricWriter:
  """Appends `{"step": s, **metrics}` lines to `{workdir}/metrics.jsonl` and TensorBoard scalars.

  Construct with `enabled=jax.process_index() == 0`: a disabled writer creates no files at all, so
  every process can call it unconditionally.
  """

  def __init__(self, workdir: str, enabled: bool, tensorboard: bool = True):
    self.enabled = enabled
    self._fd: int | None = None
    self._tb = None
    self._workdir, self._path = workdir, os.path.join(workdir, METRICS_FILE)
    if not enabled:
      return
    with self._writing(self._path):
      os.makedirs(workdir, exist_ok=True)
      _cut_torn_tail(self._path)
      resuming = os.path.exists(self._path) and os.path.getsize(self._path) > 0
      self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    if resuming:
      # Marks where a resumed run starts appending: `read_metrics` drops the rolled-back records.
      self._append(RESUME_MARKER)
    if tensorboard:
      from tensorboardX import SummaryWriter  # lazy: only process 0 with TB pays the import

      storage.catch_thread_write_failures()  # tensorboardX writes in a thread of its own
      with self._writing(os.path.join(workdir, TB_DIR)):
        # A queue longer than one record's scalars: if the writer thread dies (full disk), the
        # next `_tb_call` raises before a put could block on a queue nobody empties.
        self._tb = SummaryWriter(os.path.join(workdir, TB_DIR), max_queue=100)

  def _writing(self, path: str) -> Any:
    """Turns a full-disk / quota / read-only error under `path` into a `WriteFailedError`."""
    return storage.write_failures('metrics write', path, self._workdir)

  def _append(self, record: Mapping[str, Any]) -> None:
    """One whole line in one `os.write` (O_APPEND): concurrent or killed writers never interleave
    or tear a line in the middle of the file."""
    data = (json.dumps(record) + '\n').encode('utf-8')
    with self._writing(self._path):
      written = os.write(self._fd, data)
    if written != len(data):  # a regular file only writes short when the disk is full
      raise storage.WriteFailedError('metrics write', self._path, errno.ENOSPC, self._workdir)

  def _tb_call(self, method: str, *args: Any, **kwargs: Any) -> None:
    """A TensorBoard call; first raises a write failure its writer thread died of (a dead thread
    would leave the next calls blocked on a full queue)."""
    with self._writing(os.path.join(self._workdir, TB_DIR)):
      storage.raise_thread_write_failure()
      getattr(self._tb, method)(*args, **kwargs)

  def write(self, step: int, metrics: Mapping[str, Any]) -> None:
    """Logs one record; values may be Python, NumPy or (already fetched) JAX scalars."""
    if not self.enabled:
      return
    step = int(step)
    record = {'step': step}
    record.update({k: _scalar(v) for k, v in metrics.items()})
    self._append(record)
    if self._tb is not None:
      for k, v in record.items():
        if k != 'step':
          self._tb_call('add_scalar', k, v, step)
      self._tb_call('flush')

  def write_image(self, step: int, tag: str, image: np.ndarray) -> None:
    """TensorBoard image (uint8 HxWxC); sample PNGs are written separately by `samples.py`."""
    if not self.enabled or self._tb is None:
      return
    image = np.asarray(image)
    if image.dtype != np.uint8:
      raise ValueError(f'write_image expects uint8, got {image.dtype}')
    if image.ndim == 2:
      image = image[..., None]
    self._tb_call('add_image', tag, image, int(step), dataformats='HWC')
    self._tb_call('flush')

  def close(self) -> None:
    """Closes the file, then flushes and closes TensorBoard (a full disk: `WriteFailedError`)."""
    if self._fd is not None:
      os.close(self._fd)
      self._fd = None
    if self._tb is not None:
      tb, self._tb = self._tb, None
      with self._writing(os.path.join(self._workdir, TB_DIR)):
        storage.raise_thread_write_failure()
        tb.close()

  def __enter__(self) -> MetricWriter:
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()


def train_record(
  step: int, fetched: Mapping[str, Any], steps: int, wait_s: float, elapsed_s: float
) -> dict[str, float]:
  """A trainer's log record: the fetched step metrics (checked finite) plus throughput.

  `train/data_wait_frac` is the share of wall time the loop waited for data: near 0 when the
  workers keep up, near 1 when input-bound (raise data.num_workers / prefetch). Host clocks only.
  """
  check_finite(step, fetched)
  record = {k: float(v) for k, v in fetched.items()}
  elapsed_s = max(elapsed_s, 1e-9)
  record['train/steps_per_sec'] = steps / elapsed_s
  record['train/data_wait_frac'] = min(wait_s / elapsed_s, 1.0)
  return record


def _cut_torn_tail(path: str) -> None:
  """Truncates a last line without its newline (a write cut short by a kill or a full disk)."""
  if not os.path.exists(path) or os.path.getsize(path) == 0:
    return
  with open(path, 'rb+') as f:
    start = max(f.seek(0, os.SEEK_END) - (1 << 20), 0)  # records are short: the last MiB will do
    f.seek(start)
    tail = f.read()
    cut = tail.rfind(b'\n')
    if tail.endswith(b'\n') or (cut < 0 and start > 0):
      return
    f.truncate(start + cut + 1)  # cut = -1 and start = 0: the whole file is one torn line
    log.debug('%s: removed a torn last line (an interrupted write).', path)


def read_metrics(workdir: str) -> list[dict]:
  """Records of `{workdir}/metrics.jsonl` in order: the history the final state went through.

  A torn last line (a write in flight or cut short) is ignored; other unparseable lines are
  skipped with a warning. A resumed run restarts at its checkpoint, which may be older than the
  last logged step; its writer appends a resume marker, and the records of earlier sessions with
  a step >= the first step logged after the marker are dropped. Records sharing a step within one session (e.g. train and eval) are all kept.
  """
  path = os.path.join(workdir, METRICS_FILE)
  sessions: list[list[dict]] = [[]]
  with open(path, 'rb') as f:
    lines = f.read().split(b'\n')
  for lineno, raw in enumerate(lines, 1):
    line = raw.strip()
    if not line:
      continue
    try:
      rec = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
      if lineno < len(lines):  # the last element has no newline after it: a torn line
        log.warning('%s:%d is not valid JSON (interrupted write?); skipped.', path, lineno)
      continue
    if rec == RESUME_MARKER:
      sessions.append([])
    elif isinstance(rec, dict) and 'step' in rec:
      sessions[-1].append(rec)
  records: list[dict] = []
  for session in sessions:
    if session:
      first = session[0]['step']
      records = [r for r in records if r['step'] < first] + session
  return records


def format_metrics(metrics: Mapping[str, Any], digits: int = 4) -> str:
  """Compact `loss_G=1.234 lr=0.0002` for tqdm postfixes; drops the `train/` style prefixes."""
  parts = []
  for k, v in metrics.items():
    name = k.rsplit('/', 1)[-1]
    val = _scalar(v)
    parts.append(f'{name}={val}' if isinstance(val, int) else f'{name}={val:.{digits}g}')
  return ' '.join(parts)


def log_event(step: int, events: Sequence[str]) -> None:
  """One line for the checkpoint / sample events of `step`: a quiet run still says what it wrote."""
  log.info('Step %d: %s', step, ', '.join(events))


def summary_line(result: Mapping[str, Any]) -> str:
  """`Done at step N: loss_G=... (k steps/s)`: the final train losses; eval scores print as a table."""
  losses = {k: v for k, v in result.items() if k.startswith('train/loss')}
  rate = result.get('train/steps_per_sec')
  tail = f' ({_scalar(rate):.3g} steps/s)' if rate is not None else ''
  return f'Done at step {result.get("step", "?")}: {format_metrics(losses)}{tail}'
