"""Multi-host training on one machine: 2 processes x 4 CPU devices over loopback (gloo).

The real `jaxstyle train` entry point runs 3 steps as two JAX processes joined by
`jax.distributed` (the path run_tpu.sh takes on a TPU slice, via JAXSTYLE_DISTRIBUTED=1) and as
one process with 8 devices. Same global batch, same per-device rngs and the same 8 per-device
pools (device i holds pool i in both layouts), so the final params must agree up to
reduction-order rounding. (pool_size 2, not 0: the trainer cannot checkpoint a zero-size pool.) Only process 0 may write metrics, samples and config.json.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import TEST_XLA_FLAGS
from helpers import CYCLEGAN_SYNTHETIC as CONFIG
from helpers import ROOT, flat

TIMEOUT_S = 600  # a hung collective must fail the test, not stall CI
STEPS = 3

pytestmark = [
  pytest.mark.slow,  # three interpreter starts and compiles: ~1 min on 2 idle cores
  pytest.mark.skipif(
    not (os.path.exists(CONFIG) and os.path.exists(os.path.join(ROOT, 'jaxstyle', 'main.py'))),
    reason='trainer or configs/cyclegan_synthetic.py not present',
  ),
]

# Runs `jaxstyle <argv>` and records every file this process opens for writing under the workdir
# (Python-level opens: metrics, PIL, tensorboardX, json). Checkpoint files are excluded later:
# all processes take part in checkpoint saves by design.
WORKER = r"""
import json, os, sys
out, workdir, argv = sys.argv[1], os.path.realpath(sys.argv[2]), sys.argv[3:]
writes = set()
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
def hook(event, args):
  if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
    flags = args[2] if isinstance(args[2], int) else 0
    mode = args[1] if isinstance(args[1], str) else ""
    path = os.path.realpath(os.fsdecode(args[0]))
    if (flags & WRITE or any(c in mode for c in "wax+")) and path.startswith(workdir + os.sep):
      writes.add(os.path.relpath(path, workdir))
sys.addaudithook(hook)
from jaxstyle import cli
rc = cli.main(argv)
with open(out, "w") as f:
  json.dump(sorted(writes), f)
sys.exit(rc)
"""

OVERRIDES = [
  f'--config.total_steps={STEPS}',
  '--config.optim.lr=2e-4',
  '--config.pool_size=2',
  '--config.progress=False',
  '--config.eval_at_end=False',
]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _env(devices: int, **extra: str) -> dict:
  env = {
    k: v for k, v in os.environ.items() if not k.startswith(('JAX_', 'JAXSTYLE_', 'XLA_FLAGS'))
  }
  env.update(
    JAX_PLATFORMS='cpu',
    JAX_NUM_CPU_DEVICES=str(devices),
    XLA_FLAGS=f'--xla_force_host_platform_device_count={devices} {TEST_XLA_FLAGS}',
    JAX_COMPILATION_CACHE_DIR=os.environ['JAX_COMPILATION_CACHE_DIR'],
    **extra,
  )
  return env


def _launch(tmp, name, devices, env_extra):
  workdir = tmp / 'work'
  script = tmp / 'worker.py'
  if not script.exists():
    script.write_text(WORKER)
  argv = ['train', '--config', CONFIG + ':runlocal', '--workdir', str(workdir), *OVERRIDES]
  log_path = tmp / f'{name}.log'
  log = open(log_path, 'w')
  proc = subprocess.Popen(
    [sys.executable, str(script), str(tmp / f'{name}.json'), str(workdir), *argv],
    env=_env(devices, **env_extra),
    stdout=log,
    stderr=subprocess.STDOUT,
    cwd=ROOT,
  )
  return proc, log, log_path


def _wait(procs):
  try:
    for proc, _, _ in procs:
      proc.wait(timeout=TIMEOUT_S)
  finally:
    for proc, log, _ in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
      log.close()
  for proc, _, log_path in procs:
    assert proc.returncode == 0, log_path.read_text()[-4000:]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  single = tmp_path_factory.mktemp('single')
  multi = tmp_path_factory.mktemp('multi')
  coord = f'127.0.0.1:{_free_port()}'
  procs = [_launch(single, 'p0', 8, {})] + [
    _launch(
      multi,
      f'p{i}',
      4,
      dict(
        JAXSTYLE_DISTRIBUTED='1',
        JAX_COORDINATOR_ADDRESS=coord,
        JAXSTYLE_NUM_PROCESSES='2',
        JAXSTYLE_PROCESS_ID=str(i),
      ),
    )
    for i in range(2)
  ]
  _wait(procs)
  return single, multi


def test_two_processes_match_one(runs):
  from jaxstyle import checkpoint

  single, multi = runs
  _, p1 = checkpoint.load_run(str(single / 'work'))
  _, p2 = checkpoint.load_run(str(multi / 'work'))
  a, b = flat(p1), flat(p2)
  assert sorted(a) == sorted(b) and any(k.startswith('/G_A') for k in a)
  diff = np.concatenate([np.abs(a[k] - b[k]).ravel() for k in a])
  print(
    f'2x4 vs 1x8 devices after {STEPS} steps: max abs param diff {diff.max():.3g}, '
    f'{np.mean(diff > 1e-5):.2%} of {diff.size} params differ by > 1e-5'
  )
  # Error model: gloo and the in-process all-reduce sum in different orders (~sqrt(8)·u of the
  # gradient), which Adam passes on smoothly except where a gradient is within rounding of 0 (the
  # conv biases before an instance norm, exactly 0: ~1/(k²·Cin) ≲ 1 % of the params): there the
  # noise's sign picks a step of up to ~lr. No param can move more than 3 steps of ≤ 1.14·lr
  # (Cauchy-Schwarz on Adam's bias-corrected m̂/√v̂, b1 = 0.5, b2 = 0.999, t ≤ 3), so the two
  # runs differ by < 2·3·1.14·2e-4 ≈ 1.4e-3 whatever the noise; the fraction is the test: a wrong
  # data slice or a missing pmean moves every param by ~lr instead.
  assert diff.max() < 2e-3 and np.mean(diff > 1e-5) < 0.05
  last = [
    [r for r in map(json.loads, open(run / 'work' / 'metrics.jsonl')) if 'train/loss_G' in r][-1]
    for run in runs
  ]
  for key in ('train/loss_G', 'train/loss_D_A', 'train/loss_D_B', 'train/loss_cycle_A'):
    assert last[0][key] == pytest.approx(last[1][key], rel=1e-5), key
  for run in runs:  # both really trained all steps (not two identical initialisations)
    assert (run / 'work' / 'ckpt' / str(STEPS)).is_dir(), sorted(os.listdir(run / 'work' / 'ckpt'))


def test_only_process_zero_writes_outputs(runs):
  _, multi = runs
  w0 = [p for p in json.loads((multi / 'p0.json').read_text()) if not p.startswith('ckpt')]
  w1 = [p for p in json.loads((multi / 'p1.json').read_text()) if not p.startswith('ckpt')]
  assert 'metrics.jsonl' in w0 and 'config.json' in w0
  assert w1 == [], w1
  records = [json.loads(line) for line in open(multi / 'work' / 'metrics.jsonl') if line.strip()]
  train_steps = [r['step'] for r in records if 'train/loss_G' in r]
  # One writer: each logged train step appears once (two writers would duplicate every line).
  assert train_steps and train_steps == sorted(set(train_steps)) and max(train_steps) <= STEPS
  assert all('event' not in r for r in records)  # nobody appended a resume marker
