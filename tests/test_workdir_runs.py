"""Real trainers on one workdir (issue #24): a second one refused, a shape change refused, a
`kill -9`'d one's lock taken over, an lr override resumed with a notice.

Subprocesses of `jaxstyle train` on the tiny synthetic CycleGAN run (one CPU device, 4 then 6
steps); two of them compile a train step, so the module is in the slow tier (~2 min on 2 cores).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import TEST_XLA_FLAGS
from helpers import CYCLEGAN_SYNTHETIC as SYNTH
from helpers import ROOT

from jaxstyle import metrics, workdir

pytestmark = pytest.mark.slow

FLAGS = [
  '--config.log_every=1',
  '--config.ckpt.every_steps=2',
  '--config.progress=false',
  '--config.eval_at_end=false',
  '--config.data.synthetic_size=16',
  '--config.sample_every=1000',
]


def _start(workdir_path, *overrides: str) -> subprocess.Popen:
  env = {**os.environ, 'XLA_FLAGS': TEST_XLA_FLAGS}  # one device: the quickest compile
  argv = ['train', '--config', SYNTH + ':runlocal', '--workdir', str(workdir_path)]
  return subprocess.Popen(
    [sys.executable, '-m', 'jaxstyle.cli', *argv, *FLAGS, *overrides],
    cwd=ROOT,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def _finish(proc: subprocess.Popen) -> tuple[int, list[str]]:
  _, err = proc.communicate(timeout=600)
  return proc.returncode, err.splitlines()


def _wait_for(condition, what: str, timeout_s: float = 120) -> None:
  end = time.monotonic() + timeout_s
  while not condition():
    assert time.monotonic() < end, f'timed out waiting for {what}'
    time.sleep(0.02)


def _owner_pid(path) -> int | None:
  try:
    return json.loads((path / workdir.LOCK_FILE).read_text() or 'null')['pid']
  except (FileNotFoundError, TypeError, ValueError):
    return None


def _history_len(path) -> int:
  p = path / workdir.HISTORY_FILE
  return len(p.read_text().splitlines()) if p.exists() else 0


def _tree(path) -> dict:
  return {
    str(p.relative_to(path)): (p.stat().st_mtime_ns, p.read_bytes())
    for p in sorted(path.rglob('*'))
    if p.is_file() and p.name != workdir.LOCK_FILE
  }


def test_one_run_per_workdir_and_config_drift(tmp_path):
  run = tmp_path / 'run'

  # Two trainers, the same command: the second is refused while the first holds the lock.
  first = _start(run, '--config.total_steps=4')
  _wait_for(lambda: _owner_pid(run) == first.pid, 'the first trainer to take the lock')
  rc, err = _finish(_start(run, '--config.total_steps=4'))
  assert rc == 2, err
  assert len(err) == 1 and f'in use by pid {first.pid} on host ' in err[0], err
  rc, err = _finish(first)
  assert rc == 0, err[-20:]
  lines = (run / metrics.METRICS_FILE).read_text().splitlines()
  assert [json.loads(line)['step'] for line in lines] == [1, 2, 3, 4]  # each step once

  # A change that shapes the state: one line naming the field; nothing in the workdir touched.
  before = _tree(run)
  rc, err = _finish(_start(run, '--config.total_steps=4', '--config.model.gen_filters=8'))
  assert rc == 2 and len(err) == 1, err
  assert 'model.gen_filters (run: 4, requested: 8)' in err[0]
  assert _tree(run) == before

  # A run with another learning rate, killed with SIGKILL once it holds the workdir...
  overrides = ('--config.total_steps=6', '--config.optim.lr=1e-3')
  killed = _start(run, *overrides)
  _wait_for(lambda: _history_len(run) == 2, "the killed run's history line")
  os.kill(killed.pid, signal.SIGKILL)
  killed.communicate(timeout=60)
  assert _owner_pid(run) == killed.pid  # its record stays; the kernel dropped its flock

  # ...does not block the same command: it takes the lock over, says what changed, resumes.
  rc, err = _finish(_start(run, *overrides))
  assert rc == 0, err[-20:]
  assert not any('Traceback' in line for line in err), err
  (took,) = [line for line in err if 'Took over' in line]
  assert took.startswith('WARNING jaxstyle.workdir: ') and f'pid {killed.pid} ' in took
  (notice,) = [line for line in err if line.startswith('Resuming ')]
  assert 'optim.lr (run: 0.0005, requested: 0.001)' in notice
  assert 'total_steps (run: 4, requested: 6)' in notice
  assert any(line.startswith('Restored step 4 from workdir') for line in err), err
  history = workdir.read_history(str(run))
  assert [h['event'] for h in history] == ['start', 'resume', 'resume']
  assert history[-1]['changed']['optim.lr'] == [5e-4, 1e-3]
  assert [r['step'] for r in metrics.read_metrics(str(run))] == [1, 2, 3, 4, 5, 6]
  assert _owner_pid(run) is None  # released at the end of the run
