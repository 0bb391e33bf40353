"""Test harness: JAX on 8 fake CPU devices so every multi-device path runs in CI."""

import fcntl
import json
import os
import shutil
import tempfile

# Must happen before jax is imported anywhere.
os.environ['JAX_PLATFORMS'] = 'cpu'
# No test may ever download weights (CI has no network); file:// URLs still work.
os.environ['JAXSTYLE_OFFLINE'] = '1'
# ...and none sees the user's weight cache (cached Inception weights would turn on FID in evaluate).
os.environ['JAXSTYLE_CACHE'] = tempfile.mkdtemp(prefix='jaxstyle-test-cache-')
# Test shapes are tiny, so XLA's compile time dominates the suite (a 16-px train step: 34 s to
# compile, milliseconds to run). LLVM optimisation level 0 cuts compiles by ~30 % and changes
# no semantics; a per-session compilation cache lets repeated programs (resumes, relaunches of
# the same run, subprocesses) load instead of recompile. Subprocess tests pass both on.
TEST_XLA_FLAGS = '--xla_backend_optimization_level=0'
for _flag in ('--xla_force_host_platform_device_count=8', TEST_XLA_FLAGS):
  if _flag not in os.environ.get('XLA_FLAGS', ''):
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' ' + _flag).strip()
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', tempfile.mkdtemp(prefix='jaxstyle-test-jit-'))

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update('jax_num_cpu_devices', 8)


@pytest.fixture(scope='session')
def mesh():
  from jaxstyle import parallel

  return parallel.make_mesh()


@pytest.fixture(scope='session')
def trained_run(tmp_path_factory):
  """(workdir, train()'s last metrics) of one real 2-step synthetic CycleGAN run
  (helpers.tiny_train_config), trained once per session and shared by every test that reads a
  trained run. Read-only: a test that trains on copies it first. Under xdist the workers
  share it through their common temp folder, the first to take the lock trains it."""
  from helpers import tiny_train_config

  from jaxstyle.cyclegan import train as train_cyclegan

  base = tmp_path_factory.getbasetemp()
  root = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base
  workdir, done = root / 'trained_run', root / 'trained_run.json'
  with open(root / 'trained_run.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      shutil.rmtree(workdir, ignore_errors=True)  # a worker that died mid-run
      last = train_cyclegan.train(tiny_train_config(), str(workdir))
      done.write_text(json.dumps(last, default=float))
  return str(workdir), json.loads(done.read_text())
