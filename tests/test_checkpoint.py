"""Orbax checkpoints: exact round trips (optax, typed key, sharded pools), keep-K, recovery."""

import json
import logging
import re
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxstyle import checkpoint
from jaxstyle.errors import UserError

CFG = {'ckpt': {'keep': 2}}


def _mesh():
  return jax.make_mesh((8,), ('data',), axis_types=(jax.sharding.AxisType.Explicit,))


def _make_state(seed: int, mesh) -> dict:
  """A miniature CycleGAN state with the real layout: adam states, typed key, per-device pools."""
  rng = np.random.default_rng(seed)
  params = {
    name: {
      'conv': {
        'kernel': rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
        'bias': rng.normal(size=(4,)).astype(np.float32),
      }
    }
    for name in ('G_A', 'G_B', 'D_A', 'D_B')
  }
  tx = optax.adam(2e-4, b1=0.5)
  g_params = {'G_A': params['G_A'], 'G_B': params['G_B']}
  d_params = {'D_A': params['D_A'], 'D_B': params['D_B']}
  opt_g = tx.init(g_params)
  # One real update so mu/nu/count are not all zeros / ones.
  grads = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), g_params)
  _, opt_g = tx.update(grads, opt_g, g_params)
  state = {
    'step': jnp.int32(seed),
    'rng': jax.random.key(seed),
    'params': params,
    'opt': {'G': opt_g, 'D': tx.init(d_params)},
    'pool': {
      d: {
        'images': rng.uniform(-1, 1, size=(8 * 2, 4, 4, 3)).astype(np.float32),
        'count': np.arange(8, dtype=np.int32) + seed,
      }
      for d in ('A', 'B')
    },
  }
  rep = NamedSharding(mesh, P())
  data = NamedSharding(mesh, P('data'))
  shardings = jax.tree.map(lambda _: rep, state)
  shardings['pool'] = jax.tree.map(lambda _: data, state['pool'])
  return jax.device_put(state, shardings)


def _assert_equal_states(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
      assert jnp.issubdtype(y.dtype, jax.dtypes.prng_key)
      assert str(jax.random.key_impl(x)) == str(jax.random.key_impl(y))
      x, y = jax.random.key_data(x), jax.random.key_data(y)
    assert x.dtype == y.dtype and x.shape == y.shape
    np.testing.assert_array_equal(np.asarray(jax.device_get(x)), np.asarray(jax.device_get(y)))


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A run dir with steps 1..3 saved (keep=2), each step's state distinct."""
  mesh = _mesh()
  workdir = tmp_path_factory.mktemp('run')
  (workdir / 'config.json').write_text(json.dumps({'model': {'gen_filters': 8}, 'lr': 2e-4}))
  states = {s: _make_state(s, mesh) for s in (1, 2, 3)}
  mngr = checkpoint.make_manager(str(workdir), CFG)
  for s, st in states.items():
    assert checkpoint.save(mngr, s, st, extra={'data_step': s * 10, 'model': {'gen_filters': 8}})
  checkpoint.close(mngr)
  return workdir, states, mesh


def test_round_trip_exact_with_shardings(run):
  workdir, states, _ = run
  mngr = checkpoint.make_manager(str(workdir), CFG)
  assert checkpoint.latest_step(mngr) == 3
  abstract = checkpoint.abstract_of(states[3])
  restored = checkpoint.restore_latest(mngr, abstract)
  checkpoint.close(mngr)
  _assert_equal_states(restored, states[3])
  # optax namedtuples come back as the same types, so tx.update accepts them.
  assert type(restored['opt']['G'][0]) is optax.ScaleByAdamState
  assert int(restored['opt']['G'][0].count) == 1
  for d in ('A', 'B'):
    for leaf in ('images', 'count'):
      assert restored['pool'][d][leaf].sharding.spec == P('data')
      assert restored['pool'][d][leaf].sharding.is_equivalent_to(
        states[3]['pool'][d][leaf].sharding, 4
      )
  assert restored['params']['G_A']['conv']['kernel'].sharding.spec == P()


def test_restore_into_eval_shape_target_with_typed_key(run):
  """The trainer builds its target with eval_shape: key<fry>[] dtypes, not uint32[2]."""
  workdir, states, _ = run
  target = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), states[3]
  )
  assert jnp.issubdtype(target['rng'].dtype, jax.dtypes.prng_key)
  mngr = checkpoint.make_manager(str(workdir), CFG)
  restored = checkpoint.restore_latest(mngr, target)
  checkpoint.close(mngr)
  _assert_equal_states(restored, states[3])
  # The restored key draws the same numbers as the original.
  np.testing.assert_array_equal(
    jax.random.uniform(restored['rng'], (3,)), jax.random.uniform(states[3]['rng'], (3,))
  )


def test_keep_k_and_extra(run):
  workdir, _, _ = run
  assert sorted(p.name for p in (workdir / 'ckpt').iterdir() if p.name.isdigit()) == ['2', '3']
  # The JSON `extra` is for people reading a checkpoint (nothing restores it): Orbax's
  # JsonCheckpointHandler writes it as plain JSON in `{step}/extra/metadata`.
  extra = {s: json.loads((workdir / 'ckpt' / s / 'extra' / 'metadata').read_text()) for s in '23'}
  assert extra['3'] == {'data_step': 30, 'model': {'gen_filters': 8}}
  assert extra['2']['data_step'] == 20


def test_save_then_donate_is_safe(tmp_path):
  """save() returns after the host copy, so the trainer may donate the state right away."""
  mesh = _mesh()
  state = _make_state(5, mesh)
  expected = jax.device_get(state['pool'])
  mngr = checkpoint.make_manager(str(tmp_path), CFG)
  checkpoint.save(mngr, 5, state)
  bump = jax.jit(lambda s: jax.tree.map(lambda x: x + 1, s), donate_argnums=0)
  jax.block_until_ready(bump(state['pool']))
  checkpoint.close(mngr)
  mngr = checkpoint.make_manager(str(tmp_path), CFG)
  restored = checkpoint.restore_latest(mngr, checkpoint.abstract_of(_make_state(5, mesh)))
  checkpoint.close(mngr)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored['pool']), expected)


def test_no_checkpoint_returns_none(tmp_path):
  mngr = checkpoint.make_manager(str(tmp_path), CFG)
  assert checkpoint.latest_step(mngr) is None
  assert checkpoint.restore_latest(mngr, {'x': jax.ShapeDtypeStruct((2,), jnp.float32)}) is None
  checkpoint.close(mngr)


def _copy_run(run, tmp_path) -> Path:
  workdir, _, _ = run
  dst = tmp_path / 'run'
  shutil.copytree(workdir, dst)
  return dst


def _data_files(step_dir: Path) -> list[Path]:
  files = [f for f in (step_dir / 'state').rglob('*') if f.is_file() and f.parent.name == 'd']
  assert files, 'expected OCDBT data files'
  return files


# Orbax's other in-flight reads fail too after one bad file; their asyncio noise is expected here.
_ASYNC_NOISE = pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')


def _damage(step_dir: Path, how: str) -> None:
  """Damage a committed step the ways a disk, a quota or a careless `rm` do."""
  if how == 'truncate':
    for f in _data_files(step_dir):
      with open(f, 'r+b') as fh:
        fh.truncate(7)
  elif how == 'delete':
    for f in _data_files(step_dir):
      f.unlink()
  elif how == 'no_commit_marker':
    (step_dir / 'commit_success.txt').unlink()
  elif how == 'no_manifest':
    (step_dir / 'state' / 'manifest.ocdbt').unlink()
  else:  # a full-target restore does not read the tree metadata, but load_run needs it
    assert how == 'no_metadata'
    (step_dir / 'state' / '_METADATA').unlink()


def _moved(workdir: Path) -> list[str]:
  return sorted(p.name for p in (workdir / 'ckpt').iterdir() if '.corrupt-' in p.name)


def _warnings(caplog) -> list[str]:
  return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@_ASYNC_NOISE
@pytest.mark.parametrize(
  'damage', ['truncate', 'delete', 'no_commit_marker', 'no_manifest', 'no_metadata']
)
def test_corrupt_latest_falls_back_and_is_moved_aside(run, tmp_path, caplog, damage):
  _, states, _ = run
  workdir = _copy_run(run, tmp_path)
  _damage(workdir / 'ckpt' / '3', damage)
  # Readers fall back to step 2 and move nothing.
  with caplog.at_level(logging.WARNING, logger='jaxstyle.checkpoint'):
    _, params, step = checkpoint.load_run_with_step(str(workdir))
  assert step == 2 and (workdir / 'ckpt' / '3').is_dir() and not _moved(workdir)
  np.testing.assert_array_equal(
    params['D_B']['conv']['bias'], np.asarray(states[2]['params']['D_B']['conv']['bias'])
  )
  assert any('step 3' in m and 'failed to restore' in m for m in _warnings(caplog))
  # The trainer's restore falls back too, then moves step 3 aside so it can be saved again.
  caplog.clear()
  mngr = checkpoint.make_manager(str(workdir), CFG)
  with caplog.at_level(logging.WARNING, logger='jaxstyle.checkpoint'):
    restored = checkpoint.restore_latest(mngr, checkpoint.abstract_of(states[3]))
  _assert_equal_states(restored, states[2])
  (moved,) = _moved(workdir)
  assert re.fullmatch(r'3\.corrupt-\d{8}-\d{6}', moved), moved
  assert not (workdir / 'ckpt' / '3').exists()
  msgs = _warnings(caplog)
  assert any('step 3' in m and 'failed to restore' in m for m in msgs), msgs
  assert any(
    str(workdir / 'ckpt' / '3') in m and str(workdir / 'ckpt' / moved) in m for m in msgs
  ), msgs
  assert checkpoint.latest_step(mngr) == 2  # the manager's cached list was refreshed
  assert checkpoint.save(mngr, 3, states[3])  # refused (should_save) while 3 was on disk
  checkpoint.close(mngr)
  config, params, step = checkpoint.load_run_with_step(str(workdir))
  assert step == 3
  np.testing.assert_array_equal(
    params['D_B']['conv']['bias'], np.asarray(states[3]['params']['D_B']['conv']['bias'])
  )


@_ASYNC_NOISE
def test_damaged_middle_steps_all_moved_aside(tmp_path, caplog):
  """Steps 8, 16, 24 with 24 and 16 damaged: both moved aside, resume from 8, re-save 16 and 24."""
  mesh = _mesh()
  states = {s: _make_state(s, mesh) for s in (8, 16, 24)}
  mngr = checkpoint.make_manager(str(tmp_path), None)
  for s, st in states.items():
    checkpoint.save(mngr, s, st)
  checkpoint.close(mngr)
  _damage(tmp_path / 'ckpt' / '24', 'truncate')
  _damage(tmp_path / 'ckpt' / '16', 'no_manifest')
  mngr = checkpoint.make_manager(str(tmp_path), {'ckpt': {'every_steps': 8}})
  with caplog.at_level(logging.WARNING, logger='jaxstyle.checkpoint'):
    restored = checkpoint.restore_latest(mngr, checkpoint.abstract_of(states[24]))
  _assert_equal_states(restored, states[8])
  assert [m.split('.')[0] for m in _moved(tmp_path)] == ['16', '24']
  assert any('Resumed from step 8 after 2' in m for m in _warnings(caplog))
  # Interval saves (not forced) go through again: Orbax only saves steps newer than its latest.
  assert checkpoint.save(mngr, 16, states[16]) and checkpoint.save(mngr, 24, states[24])
  checkpoint.close(mngr)
  mngr = checkpoint.make_manager(str(tmp_path), None)
  _assert_equal_states(
    checkpoint.restore_latest(mngr, checkpoint.abstract_of(states[24])), states[24]
  )
  checkpoint.close(mngr)
  assert len(_moved(tmp_path)) == 2  # a clean restore moves nothing


@_ASYNC_NOISE
def test_move_aside_false_leaves_another_runs_steps(run, tmp_path):
  """`config.resume` reads another run's directory: fall back, but never rename there."""
  _, states, _ = run
  workdir = _copy_run(run, tmp_path)
  _damage(workdir / 'ckpt' / '3', 'truncate')
  mngr = checkpoint.make_manager(str(workdir), CFG)
  restored = checkpoint.restore_latest(mngr, checkpoint.abstract_of(states[3]), move_aside=False)
  checkpoint.close(mngr)
  _assert_equal_states(restored, states[2])
  assert (workdir / 'ckpt' / '3').is_dir() and not _moved(workdir)


def test_remote_damage_is_a_user_error():
  """Object stores have no directory rename: say what to move instead of crashing later."""

  class Remote:
    directory = 'gs://bucket/run/ckpt'

  with pytest.raises(
    UserError, match=r'\[24\] under gs://bucket/run/ckpt .*move them aside.*ckpt/24 '
  ):
    checkpoint._move_aside(Remote(), [24])


def test_not_a_run_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match='no config.json'):
    checkpoint.load_run_with_step(str(tmp_path))
  (tmp_path / 'config.json').write_text('{}')
  with pytest.raises(UserError, match='no checkpoint'):
    checkpoint.load_run(str(tmp_path))
  (tmp_path / 'ckpt').mkdir()
  with pytest.raises(FileNotFoundError, match='no checkpoint'):  # still a FileNotFoundError too
    checkpoint.load_run(str(tmp_path))


def test_interrupted_save_tmp_dir_is_ignored_and_cleaned(run, tmp_path):
  """kill -9 mid-save leaves `{step}.orbax-checkpoint-tmp-*`; it must never be taken as a step."""
  _, states, _ = run
  workdir = _copy_run(run, tmp_path)
  tmp = workdir / 'ckpt' / '4.orbax-checkpoint-tmp-1234567'
  shutil.copytree(workdir / 'ckpt' / '3', tmp)
  (tmp / 'commit_success.txt').unlink()
  for f in _data_files(tmp):
    f.unlink()
  mngr = checkpoint.make_manager(str(workdir), CFG)
  assert checkpoint.latest_step(mngr) == 3
  restored = checkpoint.restore_latest(mngr, checkpoint.abstract_of(states[3]))
  _assert_equal_states(restored, states[3])
  # Saving the step again must succeed despite the debris.
  assert checkpoint.save(mngr, 4, states[1])
  checkpoint.close(mngr)
  assert not tmp.exists()
  assert checkpoint.latest_step(checkpoint.make_manager(str(workdir), CFG)) == 4


@_ASYNC_NOISE
def test_all_corrupt_raises(run, tmp_path):
  _, states, _ = run
  workdir = _copy_run(run, tmp_path)
  for s in ('2', '3'):
    for f in _data_files(workdir / 'ckpt' / s):
      f.unlink()
  mngr = checkpoint.make_manager(str(workdir), CFG)
  with pytest.raises(RuntimeError, match='could be restored') as err:
    checkpoint.restore_latest(mngr, checkpoint.abstract_of(states[3]))
  checkpoint.close(mngr)
  assert isinstance(err.value, UserError)
  # Probably a config that no longer matches: nothing is moved, the run stays as it was.
  assert not _moved(workdir) and (workdir / 'ckpt' / '3').is_dir()


def test_load_run_params_only(run):
  workdir, states, _ = run
  config, params = checkpoint.load_run(str(workdir))
  assert config == {'model': {'gen_filters': 8}, 'lr': 2e-4}
  assert checkpoint.load_run_with_step(str(workdir))[2] == 3
  assert set(params) == {'G_A', 'G_B', 'D_A', 'D_B'}
  expected = jax.device_get(states[3]['params'])
  assert jax.tree.structure(params) == jax.tree.structure(expected)
  for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(expected)):
    assert isinstance(x, np.ndarray)
    np.testing.assert_array_equal(x, y)


def test_save_params_load_params(tmp_path):
  rng = np.random.default_rng(0)
  params = {
    'stem': {
      'kernel': rng.normal(size=(7, 7, 3, 8)).astype(np.float32),
      'bias': np.zeros(8, np.float32),
    },
    'block_0': {'conv_0': {'kernel': jnp.ones((3, 3, 8, 8), jnp.bfloat16)}},
  }
  meta = {
    'source': 'junyanz',
    'model': {'generator': 'resnet', 'n_blocks': 9},
    'eps': np.float32(1e-5),
  }
  path = tmp_path / 'w'
  checkpoint.save_params(str(path), params, meta)
  loaded, loaded_meta = checkpoint.load_params(str(path))
  assert loaded_meta == {
    'source': 'junyanz',
    'model': {'generator': 'resnet', 'n_blocks': 9},
    'eps': pytest.approx(1e-5),
  }
  assert jax.tree.structure(loaded) == jax.tree.structure(params)
  for x, y in zip(jax.tree.leaves(loaded), jax.tree.leaves(params)):
    assert isinstance(x, np.ndarray) and x.dtype == y.dtype
    np.testing.assert_array_equal(x, np.asarray(y))
  # Overwriting is allowed; a directory without the metadata file is rejected.
  checkpoint.save_params(str(path), {'a': np.arange(3)}, {})
  assert checkpoint.load_params(str(path))[0]['a'].tolist() == [0, 1, 2]
  (path / 'jaxstyle.json').unlink()
  with pytest.raises(FileNotFoundError, match='jaxstyle.json'):
    checkpoint.load_params(str(path))
  assert not list(path.rglob('*.pkl')) and not list(path.rglob('*.pickle'))


def test_relative_workdir_saves_and_restores(tmp_path, monkeypatch):
  """Users pass `--workdir runs/x`; Orbax itself rejects relative paths."""
  monkeypatch.chdir(tmp_path)
  state = {'w': jnp.arange(4.0), 'step': jnp.array(3, jnp.int32)}
  mngr = checkpoint.make_manager('runs/rel', None)
  assert checkpoint.save(mngr, 3, state, force=True)
  checkpoint.close(mngr)
  mngr = checkpoint.make_manager('runs/rel', None)
  restored = checkpoint.restore_latest(mngr, checkpoint.abstract_of(state))
  checkpoint.close(mngr)
  np.testing.assert_array_equal(np.asarray(restored['w']), np.arange(4.0))
  assert (tmp_path / 'runs' / 'rel' / 'ckpt' / '3').is_dir()
