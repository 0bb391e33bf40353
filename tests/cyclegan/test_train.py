"""End-to-end trainer tests (flax-examples style): 2 steps, resume, NaN guard, kill -9 + resume."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import TEST_XLA_FLAGS
from helpers import CYCLEGAN_SYNTHETIC as CONFIG
from helpers import ROOT, assert_trees_equal, tiny_train_config
from PIL import Image
from tb_events import read_events

from jaxstyle import checkpoint
from jaxstyle.cyclegan import train as train_cyclegan

pytestmark = pytest.mark.slow  # real train runs, resumes and a kill -9 (~170 s)


def _steps(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line)['step'] for line in f if '"step"' in line]


def test_two_steps_write_everything(trained_run):
  workdir, first = trained_run  # conftest: helpers.tiny_train_config's 2 steps
  assert first['step'] == 2
  assert all(np.isfinite(v) for k, v in first.items() if k.startswith('train/loss'))
  assert os.path.isdir(os.path.join(workdir, 'ckpt', '2'))
  sample = Image.open(os.path.join(workdir, 'samples', 'step_000002.png'))
  assert _steps(workdir) == [1, 2]
  # The data-wait share (host time blocked on the input pipeline) is logged at each log step.
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    waits = [r['train/data_wait_frac'] for r in map(json.loads, f) if 'train/data_wait_frac' in r]
  assert len(waits) == 2 and all(0.0 <= w <= 1.0 for w in waits)
  # TensorBoard: the scalars of both steps and the same sample grid as an image at step 2.
  scalars, images = read_events(workdir)
  assert [s for s, _ in scalars['train/loss_G']] == [1, 2]
  assert images == {'samples': [(2, (sample.height, sample.width))]}
  config = json.load(open(os.path.join(workdir, 'config.json')))
  assert config['total_steps'] == 2
  # What 'auto' ran as is recorded next to the config (conftest pins the CPU backend).
  assert config['model']['conv_impl'] == 'auto'
  assert (config['runtime']['conv_impl'], config['runtime']['backend']) == ('cpu_winograd', 'cpu')


def test_resume_then_nan_guard(trained_run, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained_run[0], workdir)  # the shared run stays as it is
  second = train_cyclegan.train(tiny_train_config(total_steps=4), workdir)
  assert second['step'] == 4 and _steps(workdir) == [1, 2, 3, 4]  # resumed at 2, not from 0
  _, good = checkpoint.load_run(workdir)
  # NaN LR: step 5's loss (old params) is finite, its update is not, step 6's loss is NaN.
  with pytest.raises(train_cyclegan.NonFiniteLossError, match='non-finite loss at step 6'):
    train_cyclegan.train(tiny_train_config(total_steps=8, **{'optim.lr': float('nan')}), workdir)
  assert _committed(workdir)[-1] == 4
  _, after = checkpoint.load_run(workdir)
  assert_trees_equal(after, good)


def _launch(workdir, total):
  # stderr goes to a file: absl/orbax log a lot, and a full pipe would block the child.
  os.makedirs(workdir, exist_ok=True)
  log = open(os.path.join(os.path.dirname(workdir), os.path.basename(workdir) + '.log'), 'ab')  # noqa: SIM115
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS=TEST_XLA_FLAGS)  # 1 device
  cmd = [
    sys.executable,
    '-m',
    'jaxstyle.main',
    '--config',
    CONFIG + ':runlocal',
    '--workdir',
    workdir,
    f'--config.total_steps={total}',
    '--config.ckpt.every_steps=4',
    '--config.ckpt.keep=5',
    '--config.progress=false',
    '--config.eval_at_end=false',
    '--config.data.synthetic_size=16',
    '--config.sample_every=1000',
  ]
  return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)


def _committed(workdir):
  """Committed checkpoint steps (an in-flight save is a `N.orbax-checkpoint-tmp` dir)."""
  names = [os.path.basename(p) for p in glob.glob(os.path.join(workdir, 'ckpt', '*'))]
  return sorted(int(n) for n in names if n.isdigit())


def _tail(path):
  with open(path, 'rb') as f:
    return f.read().decode(errors='replace')[-2000:]


def test_kill_9_and_resume_is_bit_identical(tmp_path):
  total = 40
  ref_dir, kill_dir = str(tmp_path / 'ref'), str(tmp_path / 'kill')
  procs = [_launch(ref_dir, total), _launch(kill_dir, total)]
  try:
    deadline = time.time() + 900
    while not _committed(kill_dir):
      assert procs[1].poll() is None, _tail(kill_dir + '.log')
      assert time.time() < deadline, 'no checkpoint appeared'
      time.sleep(0.02)
    procs[1].send_signal(signal.SIGKILL)
    procs[1].wait()
    assert _committed(kill_dir)[-1] < total
    procs[1] = _launch(kill_dir, total)
    for proc, workdir in zip(procs, (ref_dir, kill_dir)):
      proc.wait(timeout=900)
      assert proc.returncode == 0, _tail(workdir + '.log')
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  _, want = checkpoint.load_run(ref_dir)
  _, got = checkpoint.load_run(kill_dir)
  assert_trees_equal(got, want)
