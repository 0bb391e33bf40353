"""A full disk (or quota, or read-only workdir) is one line, exit 2, with the newest good checkpoint
intact and restorable, and the re-run completes (issue #24).

The end-to-end test runs `jaxstyle train` with its workdir on a small tmpfs where the test can
mount one (a private mount namespace: `unshare -rm`), and with an injected ENOSPC in Orbax's
background writer otherwise (and always): both are the failure a full disk gives. The other
tests check the pieces in this process: metrics lines, the async-save error surfacing on the
main thread, Orbax's logged tracebacks kept from the user.
"""

import errno
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TEST_XLA_FLAGS
from helpers import CYCLEGAN_SYNTHETIC, ROOT, assert_trees_equal

from jaxstyle import checkpoint, metrics, storage

TOTAL = 6
ARGS = [
  '--config',
  CYCLEGAN_SYNTHETIC + ':runlocal',
  f'--config.total_steps={TOTAL}',
  '--config.ckpt.every_steps=2',
  '--config.ckpt.keep=5',
  '--config.progress=false',
  '--config.eval_at_end=false',
  '--config.data.synthetic_size=16',
  '--config.sample_every=1000',
  '--config.log_every=1',
]
# Orbax writes each array's metadata with this coroutine from its background threads; failing it
# for step 4 is what ENOSPC does there (the 60 MB-disk run of the issue failed in this call).
INJECT = textwrap.dedent(
  """
  import errno, sys
  from orbax.checkpoint._src.path import async_path
  real = async_path.write_text
  async def full(path, text):
    if '/4.orbax-checkpoint-tmp' in str(path):
      raise OSError(errno.ENOSPC, 'No space left on device', str(path))
    return await real(path, text)
  async_path.write_text = full
  from jaxstyle import cli
  sys.exit(cli.main(sys.argv[1:]))
  """
)
MOUNT = textwrap.dedent(
  """
  set -e
  mount -t tmpfs -o size=1200k tmpfs "$DISK" || exit 99
  set +e
  "$@"
  echo $? > "$RC"
  cp -a "$DISK/run" "$COPY"
  """
)


def _env():
  return dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS=TEST_XLA_FLAGS)  # 1 device


def _train(workdir, prefix=()):
  cmd = [*prefix, 'train', '--workdir', str(workdir), *ARGS]  # prefix: `jaxstyle` itself
  return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)


def _full_disk_run(how, tmp_path):
  """(exit code, stderr, workdir as the failed run left it) of a run whose disk fills up."""
  run = tmp_path / 'run'
  if how == 'injected':
    proc = _train(run, [sys.executable, '-c', INJECT])
    return proc.returncode, proc.stderr, run
  if shutil.which('unshare') is None:
    pytest.skip('no unshare: cannot mount a small tmpfs here')
  disk, rc = tmp_path / 'disk', tmp_path / 'rc'
  disk.mkdir()
  env = dict(_env(), DISK=str(disk), RC=str(rc), COPY=str(run))
  cmd = ['unshare', '-rm', 'bash', '-c', MOUNT, 'mount', sys.executable, '-m', 'jaxstyle.main']
  cmd += ['--workdir', str(disk / 'run'), *ARGS]
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  if not rc.exists():
    pytest.skip(f'cannot mount a tmpfs here (not root, no user namespaces): {proc.stderr[-300:]}')
  return int(rc.read_text()), proc.stderr, run


@pytest.mark.slow  # two or three 6-step trainer subprocesses (~15 s each on 2 idle cores)
@pytest.mark.parametrize('how', ['tmpfs', 'injected'])
def test_full_disk_is_one_line_and_the_rerun_completes(how, tmp_path):
  code, err, run = _full_disk_run(how, tmp_path)
  lines = err.strip().splitlines()
  assert code == 2, err
  assert 'Traceback' not in err and 'Event loop is closed' not in err, err
  # Injected: the step-2 save fits, step 4's fails. On the 1.2 MB tmpfs the disk fills at the
  # step-4 or the step-6 save (how much each save takes differs between machines: AVX2 hosts
  # filled at 4, AVX-512 ones at 6), or the metrics line after it hits the full disk first;
  # either way the one line says what failed and which checkpoint is the newest good one.
  what = r'(checkpoint save of step (\d+)|metrics write)'
  pattern = (
    rf'jaxstyle train: error: {what} failed: No space left on device \(\S+\); [\d.]+ [KMG]?B '
    rf'free there\. The newest good checkpoint is step (\d+) '
    rf'\({run if how == "injected" else ".*"}/ckpt/(\d+)\); free space \(or move the run to a '
    r'larger disk\) and re-run the same command to resume from it\.'
  )
  match = re.fullmatch(pattern, lines[-1])
  assert match, err
  good = int(match.group(3))
  assert good == int(match.group(4)) and good in ((2,) if how == 'injected' else (2, 4)), err
  if match.group(2):
    assert int(match.group(2)) == good + 2, err  # the save after the newest good one failed
  # Before it: the run's plan and events (and, on a loaded machine, Orbax's warning that a save
  # waited for the previous one); no error of Orbax's threads or tasks.
  assert not [line for line in lines[:-1] if 'ERROR' in line or 'Error' in line], err
  names = os.listdir(run / 'ckpt')
  want = [str(s) for s in range(2, good + 1, 2)]
  assert sorted(names, key=int) == want, names  # the failed save's partial tmp dir was removed
  assert checkpoint.load_run_with_step(str(run))[2] == good  # the newest good one restores
  rerun = _train(run, [sys.executable, '-m', 'jaxstyle.cli'])  # the same command, space freed
  assert rerun.returncode == 0, rerun.stderr
  assert checkpoint.load_run_with_step(str(run))[2] == TOTAL
  assert sorted({r['step'] for r in metrics.read_metrics(str(run))}) == list(range(1, TOTAL + 1))
  with open(run / 'metrics.jsonl') as f:
    records = [json.loads(line) for line in f]
  assert records[records.index({'event': 'resume'}) + 1]['step'] == good + 1  # resumed there


def _state(value):
  return {'step': jnp.int32(value), 'w': jnp.full((4, 3), value, jnp.float32)}


@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_async_save_failure_surfaces_at_the_next_check(tmp_path, monkeypatch, caplog):
  from orbax.checkpoint._src.path import async_path

  mngr = checkpoint.make_manager(str(tmp_path))
  assert checkpoint.save(mngr, 1, _state(1))
  checkpoint.close(mngr)
  real = async_path.write_text

  async def full(path, text):
    if '/2.orbax-checkpoint-tmp' in str(path):
      raise OSError(errno.ENOSPC, 'No space left on device', str(path))
    return await real(path, text)

  monkeypatch.setattr(async_path, 'write_text', full)
  mngr = checkpoint.make_manager(str(tmp_path))
  with caplog.at_level(logging.ERROR):
    assert checkpoint.save(mngr, 2, _state(2))  # returns at once: the write is in a thread
    with pytest.raises(storage.WriteFailedError) as info:
      deadline = time.time() + 300  # the trainer's per-step check, until the thread has failed
      while time.time() < deadline:
        checkpoint.check(mngr)
        time.sleep(0.001)
    checkpoint.close(mngr)  # the failure was reported once; closing is quiet
  ckpt = tmp_path / 'ckpt'
  assert str(info.value).startswith(
    f'checkpoint save of step 2 failed: No space left on device ({ckpt}); '
  )
  assert str(info.value).endswith(
    f'The newest good checkpoint is step 1 ({ckpt / "1"}); free space (or move the run to a '
    'larger disk) and re-run the same command to resume from it.'
  )
  assert info.value.errno == errno.ENOSPC
  assert os.listdir(ckpt) == ['1']  # the partial step-2 directory is gone
  # Orbax logged the background failure with tracebacks; the filter kept them from the user.
  assert not [r for r in caplog.records if r.exc_info and 'orbax' in r.pathname]
  mngr = checkpoint.make_manager(str(tmp_path))
  assert_trees_equal(checkpoint.restore_latest(mngr, checkpoint.abstract_of(_state(1))), _state(1))
  checkpoint.close(mngr)


def test_orbax_tracebacks_only_with_debug(monkeypatch):
  record = logging.LogRecord(
    'absl', logging.ERROR, f'{os.sep}x{os.sep}orbax{os.sep}y.py', 1, 'failed', None, None
  )
  record.exc_info = (OSError, OSError(errno.ENOSPC, 'full'), None)
  monkeypatch.delenv('JAXSTYLE_DEBUG', raising=False)
  assert not storage.QUIET_ORBAX_THREADS.filter(record)
  monkeypatch.setenv('JAXSTYLE_DEBUG', '1')
  assert storage.QUIET_ORBAX_THREADS.filter(record)
  record.exc_info = None  # Orbax's plain warnings and errors always show
  monkeypatch.delenv('JAXSTYLE_DEBUG')
  assert storage.QUIET_ORBAX_THREADS.filter(record)


def test_write_errno_reads_tensorstore_and_os_errors():
  ts = ValueError(
    'RESOURCE_EXHAUSTED: Error writing local file "/w/ckpt/4.orbax-checkpoint-tmp/x": Failed to '
    "write 36685 bytes to file 9: No space left on device [os_error_code='28']"
  )
  assert storage.write_errno(ts) == errno.ENOSPC
  wrapped = RuntimeError('commit failed')
  wrapped.__cause__ = OSError(errno.EROFS, 'Read-only file system')
  assert storage.write_errno(wrapped) == errno.EROFS
  assert storage.write_errno(OSError(errno.ENOENT, 'gone')) is None
  assert storage.write_errno(ValueError('shape mismatch')) is None


def test_metrics_lines_are_whole_and_a_torn_tail_is_ignored_then_cut(tmp_path, caplog):
  path = tmp_path / 'metrics.jsonl'
  path.write_bytes(b'{"step": 1, "a": 1.0}\n{"step": 2, "a": 2.0}\n{"step": 3, "a"')
  with caplog.at_level(logging.WARNING):
    assert [r['step'] for r in metrics.read_metrics(str(tmp_path))] == [1, 2]
  assert not caplog.records  # a torn last line is expected after a kill: no warning
  with metrics.MetricWriter(str(tmp_path), enabled=True, tensorboard=False) as writer:
    writer.write(3, {'a': 3.5})
  assert path.read_bytes() == (
    b'{"step": 1, "a": 1.0}\n{"step": 2, "a": 2.0}\n{"event": "resume"}\n{"step": 3, "a": 3.5}\n'
  )
  # A damaged line in the middle is skipped with a warning.
  path.write_bytes(b'{"step": 1}\nnot json\n{"step": 2}\n')
  with caplog.at_level(logging.WARNING):
    assert [r['step'] for r in metrics.read_metrics(str(tmp_path))] == [1, 2]
  assert any(':2 is not valid JSON' in r.getMessage() for r in caplog.records)


def test_metrics_write_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
  (tmp_path / 'ckpt' / '8').mkdir(parents=True)
  writer = metrics.MetricWriter(str(tmp_path), enabled=True, tensorboard=False)
  writer.write(1, {'a': 1.0})
  real = os.write

  def full(fd, data):
    if fd == writer._fd:
      raise OSError(errno.ENOSPC, 'No space left on device')
    return real(fd, data)

  monkeypatch.setattr(os, 'write', full)
  with pytest.raises(storage.WriteFailedError) as info:
    writer.write(2, {'a': 2.0})
  writer.close()
  path = tmp_path / 'metrics.jsonl'
  assert str(info.value).startswith(f'metrics write failed: No space left on device ({path}); ')
  assert f'The newest good checkpoint is step 8 ({tmp_path / "ckpt" / "8"})' in str(info.value)
  assert path.read_text() == '{"step": 1, "a": 1.0}\n'
  np.testing.assert_equal(metrics.read_metrics(str(tmp_path)), [{'step': 1, 'a': 1.0}])
