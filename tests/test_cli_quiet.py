"""Quiet by default (house style §8, issue #23): a healthy run prints its own lines and nothing
from the libraries; `--verbose` brings their INFO logging back.

The real console entry runs in subprocesses (logging is set up per process), on one CPU device
and without `JAX_PLATFORMS`, so JAX probes its backends as it does for a user (the TPU probe is
what logged `libtpu.so` before). Tiny run: 2 steps, progress bar off, no end-of-run evaluation.
"""

import os
import subprocess
import sys

import pytest
from conftest import TEST_XLA_FLAGS
from helpers import CYCLEGAN_SYNTHETIC as SYNTH
from helpers import ROOT

TRAIN_FLAGS = [
  '--config.progress=false',
  '--config.eval_at_end=false',
  '--config.ckpt.every_steps=1',
  '--config.data.synthetic_size=16',
  '--config.sample_every=1000',
]


def _jaxstyle(*argv: str) -> tuple[list[str], list[str]]:
  """(stdout lines, stderr lines) of `jaxstyle ARGV`, which must succeed."""
  env = {k: v for k, v in os.environ.items() if k not in ('JAX_PLATFORMS', 'JAXSTYLE_VERBOSE')}
  env['XLA_FLAGS'] = TEST_XLA_FLAGS  # one device: the quickest compile
  proc = subprocess.run(
    [sys.executable, '-m', 'jaxstyle.cli', *argv],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout.splitlines(), proc.stderr.splitlines()


def _assert_quiet(lines: list[str]) -> None:
  noisy = [
    line
    for line in lines
    if 'INFO' in line or 'WARNING' in line or 'libtpu' in line or 'Traceback' in line
  ]
  assert not noisy, '\n'.join(noisy)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A 2-step run (checkpoints 1 and 2) and what its training printed."""
  workdir = str(tmp_path_factory.mktemp('quiet') / 'run')
  out, err = _jaxstyle(
    'train',
    '--config',
    SYNTH + ':runlocal',
    '--workdir',
    workdir,
    '--config.total_steps=2',
    *TRAIN_FLAGS,
  )
  return workdir, out, err


def test_healthy_train_prints_only_its_own_lines(run):
  _, out, err = run
  _assert_quiet(out + err)
  assert err[0].startswith('Data synthetic: ')  # what it is about to do, first
  assert err[-1].startswith('Done at step 2: loss_D_A=')  # the summary, last
  # One line per checkpoint / sample event (checkpoints at steps 1 and 2, samples at step 2).
  events = [line for line in err if line.startswith('Step ')]
  assert events[0] == 'Step 1: checkpoint saved', events
  assert events[-1].startswith('Step 2: checkpoint saved, samples '), events
  assert len(out + err) <= 6, '\n'.join(out + err)  # before: ~100 lines of Orbax/absl INFO


def test_healthy_evaluate_prints_no_library_warnings(run):
  workdir = run[0]
  out, err = _jaxstyle('evaluate', '--workdir', workdir, '--max-images', '4', '--batch-size', '4')
  _assert_quiet(out + err)  # before: six absl WARNINGs (read-only manager, unrestored 'extra')
  assert out[0] == f'scored step 2 of {workdir} (test split)'
  assert not err, '\n'.join(err)


@pytest.mark.slow  # two more processes (~20 s); the quiet checks above stay in the fast tier
def test_verbose_brings_library_info_back(run):
  workdir = run[0]
  # A resume (the trainer's restore path) with the flag after the command...
  out, err = _jaxstyle(
    'train',
    '--config',
    SYNTH + ':runlocal',
    '--workdir',
    workdir,
    '--config.total_steps=3',
    *TRAIN_FLAGS,
    '--verbose',
  )
  assert any(' INFO absl: ' in line for line in err)
  assert any('Restored step 2 from workdir' in line for line in err)
  # ...and before it, for a reader.
  out, err = _jaxstyle(
    '--verbose', 'evaluate', '--workdir', workdir, '--max-images', '4', '--batch-size', '4'
  )
  assert any(' INFO absl: ' in line for line in err)
  assert out[0] == f'scored step 3 of {workdir} (test split)'
