"""Process-0 metrics: `metrics.jsonl` (what the figure scripts read) plus optional TensorBoard.

No external services (docs/design/house_style.md). Every line is flushed as it is written, so a killed run
loses at most the line being written; `read_metrics` skips such a fragment and the lines a resume
rolled back.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, 'config.json')
  with open(path, 'w') as f:
    json.dump(
      dict(json.loads(config.to_json()), runtime=dict(runtime)), f, indent=2, sort_keys=True
    )
  return path


class MetricWriter:
  """Appends `{"step": s, **metrics}` lines to `{workdir}/metrics.jsonl` and TensorBoard scalars.

  Construct with `enabled=jax.process_index() == 0`: a disabled writer creates no files at all, so
  every process can call it unconditionally.
  """

  def __init__(self, workdir: str, enabled: bool, tensorboard: bool = True):
    self.enabled = enabled
    self._file = None
    self._tb = None
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, METRICS_FILE)
    # A run killed mid-line leaves a fragment; start a fresh line so the next record parses.
    needs_newline = False
    if os.path.exists(path) and os.path.getsize(path) > 0:
      with open(path, 'rb') as f:
        f.seek(-1, os.SEEK_END)
        needs_newline = f.read(1) != b'\n'
    resuming = os.path.exists(path) and os.path.getsize(path) > 0
    self._file = open(path, 'a', encoding='utf-8')  # noqa: SIM115 -- lives as long as the writer
    if needs_newline:
      self._file.write('\n')
    if resuming:
      # Marks where a resumed run starts appending: `read_metrics` drops the rolled-back records.
      self._file.write(json.dumps(RESUME_MARKER) + '\n')
      self._file.flush()
    if tensorboard:
      from tensorboardX import SummaryWriter  # lazy: only process 0 with TB pays the import

      self._tb = SummaryWriter(os.path.join(workdir, TB_DIR))

  def write(self, step: int, metrics: Mapping[str, Any]) -> None:
    """Logs one record; values may be Python, NumPy or (already fetched) JAX scalars."""
    if not self.enabled:
      return
    step = int(step)
    record = {'step': step}
    record.update({k: _scalar(v) for k, v in metrics.items()})
    self._file.write(json.dumps(record) + '\n')
    self._file.flush()
    if self._tb is not None:
      for k, v in record.items():
        if k != 'step':
          self._tb.add_scalar(k, v, step)
      self._tb.flush()

  def write_image(self, step: int, tag: str, image: np.ndarray) -> None:
    """TensorBoard image (uint8 HxWxC); sample PNGs are written separately by `samples.py`."""
    if not self.enabled or self._tb is None:
      return
    image = np.asarray(image)
    if image.dtype != np.uint8:
      raise ValueError(f'write_image expects uint8, got {image.dtype}')
    if image.ndim == 2:
      image = image[..., None]
    self._tb.add_image(tag, image, int(step), dataformats='HWC')
    self._tb.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None

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


def read_metrics(workdir: str) -> list[dict]:
  """Records of `{workdir}/metrics.jsonl` in order: the history the final state went through.

  Unparseable lines (a fragment left by a kill) are skipped. A resumed run restarts at its
  checkpoint, which may be older than the last logged step; its writer appends a resume marker, and
  the records of earlier sessions with a step >= the first step logged after the marker are
  dropped. Records sharing a step within one session (e.g. train and eval) are all kept.
  """
  path = os.path.join(workdir, METRICS_FILE)
  sessions: list[list[dict]] = [[]]
  with open(path, encoding='utf-8') as f:
    for lineno, line in enumerate(f, 1):
      line = line.strip()
      if not line:
        continue
      try:
        rec = json.loads(line)
      except json.JSONDecodeError:
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
