"""launch/tpu.py prints exactly the gcloud commands it would run; run_tpu.sh sets up the env."""

import importlib.util
import os
import shlex
import stat
import subprocess
import sys

import pytest
from helpers import ROOT

TPU_PY = os.path.join(ROOT, 'launch', 'tpu.py')
RUN_TPU = os.path.join(ROOT, 'launch', 'run_tpu.sh')
VM = ['gcloud', 'compute', 'tpus', 'tpu-vm']


@pytest.fixture(scope='module')
def tpu():
  spec = importlib.util.spec_from_file_location('launch_tpu', TPU_PY)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def dry_run(tpu, capsys, argv):
  assert tpu.main(argv) == 0
  return [shlex.split(line) for line in capsys.readouterr().out.splitlines()]


def test_create(tpu, capsys):
  cmds = dry_run(
    tpu,
    capsys,
    ['create', '--name', 't1', '--zone', 'us-central2-b', '--accelerator-type', 'v4-32', '--spot'],
  )
  assert cmds == [
    VM
    + [
      'create',
      't1',
      '--zone',
      'us-central2-b',
      '--accelerator-type',
      'v4-32',
      '--version',
      'tpu-ubuntu2204-base',
      '--spot',
    ]
  ]
  cmds = dry_run(
    tpu,
    capsys,
    [
      'create',
      '--name',
      't1',
      '--zone',
      'z',
      '--project',
      'p',
      '--accelerator-type',
      'v5litepod-8',
      '--version',
      'v2-alpha-tpuv5-lite',
    ],
  )
  assert cmds == [
    VM
    + [
      'create',
      't1',
      '--zone',
      'z',
      '--project',
      'p',
      '--accelerator-type',
      'v5litepod-8',
      '--version',
      'v2-alpha-tpuv5-lite',
    ]
  ]


def test_setup_copies_payload_to_all_workers(tpu):
  cmds = tpu.setup_commands('t1', 'z', payload=('pyproject.toml', 'jaxstyle', 'configs', 'launch'))
  assert cmds == [
    VM + ['ssh', 't1', '--zone', 'z', '--worker=all', '--command', 'mkdir -p ~/jaxstyle'],
    VM
    + [
      'scp',
      '--zone',
      'z',
      '--recurse',
      'pyproject.toml',
      'jaxstyle',
      'configs',
      'launch',
      't1:jaxstyle/',
      '--worker=all',
    ],
    VM
    + [
      'ssh',
      't1',
      '--zone',
      'z',
      '--worker=all',
      '--command',
      'cd ~/jaxstyle && bash launch/run_tpu.sh',
    ],
  ]
  # Default payload: only what exists, never local venvs.
  default = tpu.setup_commands('t1', 'z')[1]
  assert 'jaxstyle' in default and 'pyproject.toml' in default
  assert not any('venv' in part for part in default)


def test_run_quotes_train_args_once(tpu, capsys):
  cmds = dry_run(
    tpu,
    capsys,
    [
      'run',
      '--name',
      't1',
      '--zone',
      'europe-west4-a',
      '--config',
      'configs/cyclegan_book_apple2orange.py',
      '--workdir',
      'gs://b/my run',
      '--config.loss.lambda_id=0.0',
      '--env',
      'TFDS_DATA_DIR=gs://b/tfds',
    ],
  )
  assert len(cmds) == 1
  cmd = cmds[0]
  assert cmd[:9] == VM + ['ssh', 't1', '--zone', 'europe-west4-a', '--worker=all']
  assert cmd[9] == '--command' and len(cmd) == 11
  remote = cmd[10]
  assert remote == (
    'cd ~/jaxstyle && set -o pipefail; env TFDS_DATA_DIR=gs://b/tfds bash '
    'launch/run_tpu.sh jaxstyle.main --config '
    "configs/cyclegan_book_apple2orange.py --workdir 'gs://b/my run' "
    '--config.loss.lambda_id=0.0 2>&1 | tee -a ~/jaxstyle_run.log'
  )
  # What the remote shell will see as argv of run_tpu.sh: the space survives as one argument.
  inner = shlex.split(remote.split('; ', 1)[1].split(' 2>&1')[0])
  assert inner[inner.index('--workdir') + 1] == 'gs://b/my run'


def test_run_detach_and_unknown_flags(tpu, capsys):
  cmds = dry_run(
    tpu,
    capsys,
    ['run', '--name', 't1', '--zone', 'z', '--config', 'c.py', '--workdir', 'w', '--detach'],
  )
  assert cmds[0][-1] == (
    'cd ~/jaxstyle && nohup bash launch/run_tpu.sh jaxstyle.main '
    '--config c.py --workdir w >> ~/jaxstyle_run.log 2>&1 < /dev/null &'
  )
  cli = tpu.run_commands('t1', 'z', ['--config', 'c.py'], module='jaxstyle.cli')[0][-1]
  assert 'launch/run_tpu.sh jaxstyle.cli train --config c.py' in cli
  with pytest.raises(SystemExit):
    tpu.main(
      ['run', '--name', 't1', '--zone', 'z', '--config', 'c.py', '--workdir', 'w', '--bogus']
    )
  with pytest.raises(SystemExit):
    tpu.main(['delete', '--name', 't1', '--zone', 'z', '--config.lr=1'])


def test_logs_fetch_delete(tpu, capsys):
  assert dry_run(tpu, capsys, ['logs', '--name', 't1', '--zone', 'z']) == [
    VM
    + ['ssh', 't1', '--zone', 'z', '--worker=0', '--command', 'tail -n 100 -F ~/jaxstyle_run.log']
  ]
  assert (
    dry_run(tpu, capsys, ['logs', '--name', 't1', '--zone', 'z', '--no-follow', '--lines', '5'])[0][
      -1
    ]
    == 'tail -n 5 ~/jaxstyle_run.log'
  )
  assert dry_run(
    tpu, capsys, ['fetch', '--name', 't1', '--zone', 'z', '--src', 'gs://b/r', '--dest', 'runs/r']
  ) == [['mkdir', '-p', 'runs/r'], ['gsutil', '-m', 'rsync', '-r', 'gs://b/r', 'runs/r']]
  assert dry_run(
    tpu, capsys, ['fetch', '--name', 't1', '--zone', 'z', '--src', 'runs/r', '--dest', 'out']
  ) == [
    ['mkdir', '-p', 'out'],
    VM + ['scp', '--zone', 'z', '--recurse', 't1:runs/r', 'out', '--worker=0'],
  ]
  assert dry_run(tpu, capsys, ['delete', '--name', 't1', '--zone', 'z', '--project', 'p']) == [
    VM + ['delete', 't1', '--zone', 'z', '--project', 'p', '--quiet']
  ]


def test_execute_runs_in_order_and_stops_on_failure(tpu, tmp_path):
  marker = tmp_path / 'ran'
  rc = tpu.execute([['touch', str(marker)], ['false'], ['touch', str(tmp_path / 'never')]])
  assert rc == 1 and marker.exists() and not (tmp_path / 'never').exists()


def test_cli_prints_one_quoted_command_per_line():
  out = subprocess.run(
    [sys.executable, TPU_PY, 'delete', '--name', 't 1', '--zone', 'z'],
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  assert out == "gcloud compute tpus tpu-vm delete 't 1' --zone z --quiet\n"


def test_run_tpu_sh_sets_distributed_and_passes_args(tmp_path):
  """With an existing venv, run_tpu.sh only activates it and runs `python3 -m "$@"`."""
  venv = tmp_path / 'venv'
  (venv / 'bin').mkdir(parents=True)
  (venv / 'bin' / 'activate').write_text(f'export PATH="{venv}/bin:$PATH"\n')
  fake = venv / 'bin' / 'python3'
  fake.write_text(
    '#!/bin/sh\necho "DIST=$JAXSTYLE_DISTRIBUTED PWD=$PWD"\nfor a in "$@"; do echo "ARG=$a"; done\n'
  )
  fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
  env = dict(os.environ, JAXSTYLE_VENV=str(venv))
  env.pop('JAXSTYLE_DISTRIBUTED', None)
  out = subprocess.run(
    ['bash', RUN_TPU, 'jaxstyle.main', '--workdir', 'a b'],
    capture_output=True,
    text=True,
    check=True,
    env=env,
    cwd=tmp_path,
  ).stdout
  assert out.splitlines() == [
    f'DIST=1 PWD={ROOT}',
    'ARG=-m',
    'ARG=jaxstyle.main',
    'ARG=--workdir',
    'ARG=a b',
  ]
  # No arguments: bootstrap only, nothing is run.
  out = subprocess.run(['bash', RUN_TPU], capture_output=True, text=True, check=True, env=env)
  assert out.stdout == ''
