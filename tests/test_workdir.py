"""One run per workdir (jaxstyle/workdir.py): the lock, the config-drift check, the history.

The unit tests need no JAX; the `jaxstyle train` subprocesses here stop before JAX starts (the
lock and the drift check come first), so they cost an interpreter start each. Real trainers
racing, killed and resumed are in tests/test_workdir_runs.py (slow tier).
"""

import fnmatch
import json
import logging
import os
import socket
import subprocess
import sys

import pytest
from helpers import CYCLEGAN_SYNTHETIC as SYNTH
from helpers import ROOT

from jaxstyle import config_drift, metrics, workdir
from jaxstyle import main as train_main


def _dead_pid() -> int:
  """The pid of a process that has exited (and been reaped)."""
  proc = subprocess.Popen([sys.executable, '-c', 'pass'])
  proc.wait()
  return proc.pid


def _record(path, **owner):
  path.write_text(json.dumps(owner))


def _fields(config) -> set[str]:
  return set(config_drift.flatten(json.loads(config.to_json())))


#### Which fields may change


@pytest.mark.parametrize('task', sorted(config_drift.RULES))
def test_every_rule_names_a_field_of_its_preset(task):
  # A renamed field would silently become FREE: each exact name must exist, each pattern match.
  presets = pytest.importorskip(f'jaxstyle.{task}.presets')  # a task still being written
  base = getattr(presets, f'{task}_base')
  fields = _fields(base('c.png', 's.png') if task == 'nst' else base())
  for pattern in config_drift.RULES[task]:
    if '*' in pattern:
      assert any(fnmatch.fnmatchcase(f, pattern) for f in fields), pattern
    else:
      assert pattern in fields, pattern
  classes = {config_drift.field_class(task, f) for f in fields}
  assert classes == {config_drift.STATE, config_drift.STREAM, config_drift.FREE}


@pytest.mark.parametrize(
  'task, field, expected',
  [
    ('cyclegan', 'model.gen_filters', config_drift.STATE),
    ('cyclegan', 'pool_size', config_drift.STATE),
    ('cyclegan', 'model.norm_eps', config_drift.STREAM),
    ('cyclegan', 'model.conv_impl', config_drift.FREE),
    ('cyclegan', 'data.image_size', config_drift.STREAM),
    ('cyclegan', 'data.num_workers', config_drift.FREE),
    ('cyclegan', 'per_device_batch', config_drift.STREAM),
    ('cyclegan', 'seed', config_drift.STREAM),
    ('cyclegan', 'optim.lr', config_drift.FREE),
    ('cyclegan', 'num_epochs', config_drift.FREE),
    ('cyclegan', 'log_every', config_drift.FREE),
    ('fast_style', 'styles', config_drift.STREAM),
    ('fast_style', 'vgg.pool', config_drift.STREAM),
    ('fast_style', 'vgg.conv_impl', config_drift.FREE),
    ('fast_style', 'model.filters', config_drift.STATE),
    ('fast_style', 'loss.style_weight', config_drift.FREE),
    ('nst', 'image.height', config_drift.STATE),
    ('nst', 'optim.lr', config_drift.FREE),
    ('adain', 'style.root', config_drift.STREAM),
    ('adain', 'style.test_root', config_drift.FREE),
    ('adain', 'model.dtype', config_drift.STREAM),
    ('cut', 'nce.layers', config_drift.STATE),
    ('cut', 'model.norm_eps', config_drift.STREAM),
    ('cut', 'loss.lambda_nce', config_drift.FREE),
    # A task without rules (one being written): model, data, seed and batch still count.
    ('new_task', 'model.anything', config_drift.STATE),
    ('new_task', 'data.root', config_drift.STREAM),
    ('new_task', 'seed', config_drift.STREAM),
    ('new_task', 'per_device_batch', config_drift.STREAM),
    ('new_task', 'optim.lr', config_drift.FREE),
  ],
)
def test_field_class(task, field, expected):
  assert config_drift.field_class(task, field) == expected


#### The drift check and the history


@pytest.fixture
def run_dir(tmp_path):
  """A workdir as the trainer leaves it: config.json with its runtime section, a checkpoint."""
  config = train_main.build_config(SYNTH + ':runlocal')
  metrics.write_config(str(tmp_path), config, {'backend': 'cpu', 'conv_impl': 'cpu_winograd'})
  (tmp_path / 'ckpt' / '8').mkdir(parents=True)
  (tmp_path / 'ckpt' / '8' / 'state').write_bytes(b'weights')
  return tmp_path


def test_another_device_count_is_one_warning(tmp_path, caplog):
  """The state restores on any device count (it is replicated), but the global batch changes: one
  WARNING line that names both counts and batches; the same count, or a first start, says nothing."""
  config = train_main.build_config(SYNTH + ':runlocal')
  with caplog.at_level('WARNING', logger='jaxstyle.metrics'):
    metrics.write_config(str(tmp_path), config, {'backend': 'cpu', 'devices': 8})
    metrics.write_config(str(tmp_path), config, {'backend': 'cpu', 'devices': 8})
    assert not caplog.records
    metrics.write_config(str(tmp_path), config, {'backend': 'cpu', 'devices': 1})
  (record,) = caplog.records
  batch = config.per_device_batch
  assert record.levelname == 'WARNING'
  assert f'last ran on 8 devices and now runs on 1 (global batch {8 * batch} -> {batch})' in (
    record.getMessage()
  )
  assert json.loads((tmp_path / 'config.json').read_text())['runtime']['devices'] == 1


def test_no_run_yet(tmp_path):
  assert workdir.check_config(str(tmp_path), train_main.build_config(SYNTH + ':runlocal')) is None


def test_same_config_and_runtime_ignored(run_dir):
  # Only the runtime section differs (another backend resolves 'auto' otherwise): no change.
  record = json.loads((run_dir / 'config.json').read_text())
  record['runtime'] = {'backend': 'tpu'}
  (run_dir / 'config.json').write_text(json.dumps(record))
  assert workdir.check_config(str(run_dir), train_main.build_config(SYNTH + ':runlocal')) == {}


def test_free_changes_are_listed(run_dir):
  config = train_main.build_config(
    SYNTH + ':runlocal', ['--config.optim.lr=1e-3', '--config.log_every=2']
  )
  assert workdir.check_config(str(run_dir), config) == {
    'log_every': (4, 2),
    'optim.lr': (5e-4, 1e-3),
  }


def test_state_change_is_one_line_naming_the_field(run_dir):
  config = train_main.build_config(
    SYNTH + ':runlocal', ['--config.model.gen_filters=8', '--config.optim.lr=1e-3']
  )
  with pytest.raises(workdir.ConfigDriftError) as err:
    workdir.check_config(str(run_dir), config)
  text = str(err.value)
  assert '\n' not in text
  assert 'model.gen_filters (run: 4, requested: 8)' in text
  assert 'optim.lr' not in text  # the free change is not what blocks
  assert 'new --workdir' in text and 'config.resume' not in text  # shapes: resume cannot take it


def test_stream_change_offers_resume(run_dir):
  config = train_main.build_config(SYNTH + ':runlocal', ['--config.data.seed=3', '--config.seed=2'])
  with pytest.raises(workdir.ConfigDriftError) as err:
    workdir.check_config(str(run_dir), config)
  text = str(err.value)
  assert 'data.seed (run: 0, requested: 3)' in text and 'seed (run: 0, requested: 2)' in text
  assert f'--config.resume={run_dir}' in text


def test_fields_of_another_version_are_not_compared(run_dir):
  # A record from an older jaxstyle lacks a field; a newer one has a field we do not know.
  record = json.loads((run_dir / 'config.json').read_text())
  del record['pool_size']
  record['model']['future_field'] = 1
  (run_dir / 'config.json').write_text(json.dumps(record))
  assert workdir.check_config(str(run_dir), train_main.build_config(SYNTH + ':runlocal')) == {}


def test_unreadable_record_is_a_user_error(run_dir):
  (run_dir / 'config.json').write_text('{"task": "cyc')
  with pytest.raises(workdir.UserError, match='config.json is unreadable'):
    workdir.check_config(str(run_dir), train_main.build_config(SYNTH + ':runlocal'))


def test_history_grows_one_line_per_start(run_dir, caplog):
  config = train_main.build_config(SYNTH + ':runlocal', ['--config.optim.lr=1e-3'])
  changes = workdir.check_config(str(run_dir), config)
  with caplog.at_level(logging.INFO, logger='jaxstyle.workdir'):
    workdir.record_start(str(run_dir), config, changes)
  # The notice: one line naming the change.
  (notice,) = [r.getMessage() for r in caplog.records]
  assert 'optim.lr (run: 0.0005, requested: 0.001)' in notice and '\n' not in notice
  history = workdir.read_history(str(run_dir))
  # A workdir from before the history file: its config.json first, then this resume.
  assert [h['event'] for h in history] == ['recorded', 'resume']
  assert history[0]['config']['optim']['lr'] == 5e-4
  assert history[1]['config']['optim']['lr'] == 1e-3
  assert history[1]['changed'] == {'optim.lr': [5e-4, 1e-3]}
  assert history[1]['pid'] == os.getpid()
  # A torn last line (a write cut short) is skipped; the next start appends after it.
  with open(run_dir / workdir.HISTORY_FILE, 'a') as f:
    f.write('{"event": "res')
  workdir.record_start(str(run_dir), config, {})
  events = [h['event'] for h in workdir.read_history(str(run_dir))]
  assert events == ['recorded', 'resume', 'resume']


#### The lock


def test_second_lock_is_refused_naming_the_owner(tmp_path):
  first = workdir.RunLock(str(tmp_path)).acquire()
  try:
    with pytest.raises(workdir.WorkdirBusyError) as err:
      workdir.RunLock(str(tmp_path)).acquire()
    text = str(err.value)
    assert f'pid {os.getpid()} on host {socket.gethostname()} since ' in text
    assert '\n' not in text and 'another --workdir' in text
  finally:
    first.release()
  # Released: the record is cleared, so the next owner takes it over without a warning.
  assert (tmp_path / workdir.LOCK_FILE).read_text() == ''
  again = workdir.RunLock(str(tmp_path)).acquire()
  assert again.previous is None
  again.release()


def test_dead_owner_is_taken_over_with_a_warning(tmp_path, caplog):
  # What a kill -9 leaves: the record, and no flock (the kernel dropped it with the process).
  dead = _dead_pid()
  _record(tmp_path / workdir.LOCK_FILE, host=socket.gethostname(), pid=dead, since='then')
  with caplog.at_level(logging.WARNING, logger='jaxstyle.workdir'):
    lock = workdir.RunLock(str(tmp_path)).acquire()
  lock.release()
  assert lock.previous['pid'] == dead
  (warning,) = [r.getMessage() for r in caplog.records]
  assert f'pid {dead} on host' in warning and 'Took over' in warning


@pytest.fixture
def no_flock(monkeypatch):
  """The lock as on an object store (gs://) or a filesystem without flock: the record alone."""
  monkeypatch.setattr(workdir.RunLock, '_try_flock', lambda self: False)


def test_record_only_live_owner_blocks(tmp_path, no_flock):
  lock = workdir.RunLock(str(tmp_path)).acquire()
  with pytest.raises(workdir.WorkdirBusyError, match=f'pid {os.getpid()} '):
    workdir.RunLock(str(tmp_path)).acquire()
  lock.release()
  assert not (tmp_path / workdir.LOCK_FILE).exists()  # released: the record is deleted


def test_record_only_dead_or_rebooted_owner_is_taken_over(tmp_path, no_flock):
  path = tmp_path / workdir.LOCK_FILE
  _record(path, host=socket.gethostname(), pid=_dead_pid(), since='then')
  workdir.RunLock(str(tmp_path)).acquire().release()
  # Our own (live) pid, but another boot of this host: the VM restarted, the owner is gone.
  _record(path, host=socket.gethostname(), pid=os.getpid(), since='then', boot_id='old-boot')
  lock = workdir.RunLock(str(tmp_path)).acquire()
  assert lock.previous['boot_id'] == 'old-boot'
  lock.release()


def test_record_only_other_host_says_how_to_clear(tmp_path, no_flock):
  path = tmp_path / workdir.LOCK_FILE
  _record(path, host='other-vm', pid=1, since='2026-01-01T00:00:00Z')
  with pytest.raises(workdir.WorkdirBusyError) as err:
    workdir.RunLock(str(tmp_path)).acquire()
  assert 'pid 1 on host other-vm since 2026-01-01T00:00:00Z' in str(err.value)
  assert f'if it is dead, delete {path}' in str(err.value)
  assert json.loads(path.read_text())['host'] == 'other-vm'  # not touched


#### `jaxstyle train` stops before JAX starts


def _train(workdir_path, *overrides):
  return subprocess.run(
    [sys.executable, '-m', 'jaxstyle.cli', 'train', '--config', SYNTH + ':runlocal']
    + ['--workdir', str(workdir_path), *overrides],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )


def _tree(path) -> dict:
  return {
    str(p.relative_to(path)): (p.stat().st_mtime_ns, p.read_bytes())
    for p in sorted(path.rglob('*'))
    if p.is_file()
  }


def test_train_on_a_busy_workdir_exits_2_with_one_line(tmp_path):
  lock = workdir.RunLock(str(tmp_path)).acquire()  # this process is "the first trainer"
  try:
    proc = _train(tmp_path)
  finally:
    lock.release()
  assert proc.returncode == 2, proc.stderr
  (line,) = proc.stderr.splitlines()
  assert line.startswith('jaxstyle train: error: workdir ')
  assert f'in use by pid {os.getpid()} on host {socket.gethostname()}' in line


def test_train_with_a_shape_change_exits_2_with_one_line(run_dir):
  before = _tree(run_dir)
  proc = _train(run_dir, '--config.model.gen_filters=8')
  assert proc.returncode == 2, proc.stderr
  (line,) = proc.stderr.splitlines()
  assert line.startswith('jaxstyle train: error: workdir ')
  assert 'model.gen_filters (run: 4, requested: 8)' in line
  after = _tree(run_dir)
  del after[workdir.LOCK_FILE]  # taken and released: the (empty) lock file stays
  assert after == before  # checkpoints, config.json: untouched; no history line either


#### Several processes: process 0 claims, everyone learns the outcome


def test_distributed_claim_process_zero_only(run_dir):
  config = train_main.build_config(SYNTH + ':runlocal')
  votes = []

  def all_ok(ok):  # stands in for the collective: process 1 voted True
    votes.append(ok)
    return ok

  with workdir.Claim(str(run_dir), config, distributed=True) as claim:
    assert not (run_dir / workdir.HISTORY_FILE).exists()  # nothing before JAX connects them
    claim.connected(0, all_ok)
    assert json.loads((run_dir / workdir.LOCK_FILE).read_text())['pid'] == os.getpid()
    with pytest.raises(workdir.WorkdirBusyError):
      workdir.RunLock(str(run_dir)).acquire()
  assert votes == [True] and len(workdir.read_history(str(run_dir))) == 2
  # Another process of the run neither locks nor writes, and goes on when process 0 could.
  with workdir.Claim(str(run_dir), config, distributed=True) as claim:
    claim.connected(1, lambda ok: ok)
    assert (run_dir / workdir.LOCK_FILE).read_text() == ''
  assert len(workdir.read_history(str(run_dir))) == 2


def test_distributed_claim_all_stop_when_process_zero_cannot(run_dir):
  bad = train_main.build_config(SYNTH + ':runlocal', ['--config.model.gen_filters=8'])
  votes = []
  with workdir.Claim(str(run_dir), bad, distributed=True) as claim:
    with pytest.raises(workdir.ConfigDriftError):
      claim.connected(0, lambda ok: votes.append(ok) or ok)
  assert votes == [False]
  # Process 1 passed its check (it has none) but the collective says process 0 failed.
  with workdir.Claim(str(run_dir), bad, distributed=True) as claim:
    with pytest.raises(workdir.UserError, match='process 0 could not start'):
      claim.connected(1, lambda ok: False)
