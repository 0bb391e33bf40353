"""Orbax checkpoints: the only module in jaxstyle that imports orbax.

Orbax's API moves between releases (a v1 API already exists), so everything that touches it lives
here behind a small surface (docs/design/house_style.md, "Checkpoints"). Checked against orbax-checkpoint 0.12.8.

A run's layout on disk, how a save commits and what happens to a damaged or partial step:
`jaxstyle/storage.py` (the file-system side, which needs no Orbax). Damage after the commit is
caught at restore time: `restore_latest` falls back step by step and moves each unreadable step
aside, because Orbax refuses to save a step that exists on disk or is not newer than the latest
one. Readers (`load_run`) fall back the same way but never move anything.

Typed PRNG keys (`jax.random.key`) are handled by Orbax itself: it stores the key data plus the
key implementation and restores a typed key, so the state keeps its `rng` as is.

Exported weights ("project format", never pickle): a directory holding `params/` (an Orbax PyTree
checkpoint) and `jaxstyle.json` (free-form metadata such as the model config).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any, NoReturn

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from jaxstyle import parallel, storage
from jaxstyle.errors import UserError
from jaxstyle.storage import RunNotFoundError, UnreadableCheckpointError  # also this API's

_STATE = 'state'
_EXTRA = 'extra'
_PARAMS_DIR = 'params'
_META_FILE = 'jaxstyle.json'

log = logging.getLogger(__name__)


def _path(path: Any) -> epath.Path:
  """An absolute path: Orbax refuses relative ones, and users pass `--workdir runs/x`."""
  text = os.fspath(path)
  return epath.Path(text if '://' in text else os.path.abspath(text))


def _numpy_restore_args(tree: Any) -> Any:
  """RestoreArgs asking for host numpy arrays: no mesh / device count has to match the writer."""
  return jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)


################################################################################
# Train-state checkpoints (CheckpointManager).                                #
################################################################################


def make_manager(workdir: str, config: Any = None, keep_also: Any = None) -> ocp.CheckpointManager:
  """Opens (creating if needed) `{workdir}/ckpt`; keeps `config.ckpt.keep` steps; async saves.

  `keep_also` (an Orbax preservation policy) keeps more, e.g. the best step of FID tracking.
  `save_interval_steps` comes from `config.ckpt.every_steps` (default 1, i.e. the caller decides).
  Leftover `*.orbax-checkpoint-tmp-*` dirs from a killed save are removed here. Close it with
  `close` on every exit path (`close_all` is the CLI's safety net): Orbax threads left running at
  interpreter exit print "Event loop is closed" tracebacks.
  """
  storage.quiet_orbax_noise()  # a failed save's thread tracebacks: one line instead
  keep, cm = storage.cfg_get(config, 'ckpt.keep', None), ocp.checkpoint_managers
  policy = keep_also and cm.AnyPreservationPolicy([cm.LatestN(keep), keep_also])
  options = ocp.CheckpointManagerOptions(
    max_to_keep=None if policy else keep,
    preservation_policy=policy,
    save_interval_steps=int(storage.cfg_get(config, 'ckpt.every_steps', 1)),
    enable_async_checkpointing=True,
    cleanup_tmp_directories=True,
    create=True,
  )
  mngr = _open_manager(
    _path(workdir) / 'ckpt',
    options=options,
    item_handlers={_STATE: ocp.StandardCheckpointHandler(), _EXTRA: ocp.JsonCheckpointHandler()},
  )
  _OPEN[id(mngr)] = mngr
  return mngr


def _open_manager(directory: epath.Path, **kwargs: Any) -> ocp.CheckpointManager:
  """`ocp.CheckpointManager`, which reads every step's `_CHECKPOINT_METADATA` when it opens: a
  damaged one is a UserError naming the directory, not Orbax's ValueError."""
  try:
    return ocp.CheckpointManager(directory, **kwargs)
  except (ValueError, TypeError, KeyError, AttributeError, OSError) as err:
    raise UnreadableCheckpointError(
      f"cannot list the checkpoints in {directory}: a step's _CHECKPOINT_METADATA is damaged "
      f'({type(err).__name__}: {" ".join(str(err).split())[:200]}); move the damaged step '
      'directory aside (mv ckpt/N ckpt/N.corrupt) and re-run'
    ) from err


_OPEN: dict[int, ocp.CheckpointManager] = {}  # managers not closed yet (`close_all`)
_PENDING: set[int] = set()  # managers with a save whose outcome `check` has not seen
_FAILED: dict[int, bool] = {}  # managers whose save failed to write (full disk, read-only)


def _reraise(mngr: ocp.CheckpointManager, err: Exception) -> NoReturn:
  """A failed save, as one line if the disk is full / read-only (`storage.save_failure`)."""
  failure = storage.save_failure(err, os.fspath(mngr.directory), jax.process_index() == 0)
  if failure is err:
    raise err
  _FAILED[id(mngr)] = True
  raise failure from err


def _wait(mngr: ocp.CheckpointManager) -> None:
  """Waits for the in-flight save; its failure is raised here, on the calling thread."""
  _PENDING.discard(id(mngr))
  try:
    mngr.wait_until_finished()
  except Exception as err:
    _reraise(mngr, err)


def check(mngr: ocp.CheckpointManager) -> None:
  """Raises a finished async save's error on this (main) thread, never waiting: called every step,
  a save that failed in Orbax's threads stops the run at the next step, not at exit."""
  if id(mngr) in _PENDING and not mngr.is_saving_in_progress():
    _wait(mngr)


def save(
  mngr: ocp.CheckpointManager,
  step: int,
  state: Any,
  force: bool = False,
  extra: dict | None = None,
) -> bool:
  """Starts an async save of the whole state (+ JSON `extra`); returns whether a save was started.

  Returns once the arrays are copied to host memory, so the caller may donate `state` afterwards.
  All processes must call it (multi-host saves are collective).
  """
  items = {_STATE: ocp.args.StandardSave(state)}
  if extra is not None:
    items[_EXTRA] = ocp.args.JsonSave(storage.to_json(extra))
  try:  # Orbax first waits for the previous save, so its failure may surface here too
    started = bool(mngr.save(int(step), args=ocp.args.Composite(**items), force=force))
  except Exception as err:
    _reraise(mngr, err)
  if started:
    _PENDING.add(id(mngr))
  return started


def latest_step(mngr: ocp.CheckpointManager) -> int | None:
  """The newest committed step (not necessarily restorable; see `restore_latest`)."""
  return mngr.latest_step()


def _state_metadata(mngr: ocp.CheckpointManager, step: int) -> Any:
  """The state's tree metadata; missing metadata is damage (a restore into a full target would not
  notice, but `load_run` needs it, so the trainer checks it too)."""
  metadata = mngr.item_metadata(step)[_STATE]
  if metadata is None:
    raise FileNotFoundError(f'{mngr.directory}/{step}/{_STATE} has no readable tree metadata')
  return metadata


def _candidate_steps(mngr: ocp.CheckpointManager) -> list[int]:
  """Steps Orbax lists plus, locally, any `{step}` dir it skipped: a save would collide with it."""
  steps = set(mngr.all_steps()) | set(storage.committed_steps(os.fspath(mngr.directory)))
  return sorted(steps, reverse=True)


def _move_aside(mngr: ocp.CheckpointManager, steps: list[int]) -> None:
  """Renames each damaged `{step}` dir to `{step}.corrupt-{time}` (process 0), then re-lists.

  Renaming, not deleting: the files may be worth inspecting. Only on a local path: object stores
  have no directory rename, so there the user moves it (the error says how).
  """
  root = epath.Path(mngr.directory)
  if not storage.is_local(root):
    raise UnreadableCheckpointError(
      f'checkpoint step(s) {steps} under {root} cannot be restored and would block saving those '
      f'steps again; move them aside (e.g. `gcloud storage mv {root}/{steps[0]} '
      f'{root}/{steps[0]}.corrupt`) and re-run'
    )
  if jax.process_index() == 0:
    for step, src, dst in storage.move_aside(os.fspath(root), steps):
      log.warning(
        'Moved unreadable checkpoint %s aside to %s; the run will save step %d again '
        '(inspect or delete the moved directory).',
        src,
        dst,
        step,
      )
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices('jaxstyle.checkpoint.move_aside')
  mngr.reload()  # drop the moved steps from Orbax's cached list (should_save, latest_step)


def restore_latest(
  mngr: ocp.CheckpointManager, abstract_state: Any, move_aside: bool = True
) -> Any | None:
  """Restores the newest restorable step into `abstract_state`'s shapes, dtypes and shardings.

  `abstract_state` is a pytree of `jax.ShapeDtypeStruct` with shardings (see `abstract_of`), so the
  pools come back sharded over 'data'. A step that fails to restore is logged as a WARNING and the
  previous one is tried; once one restores, the failed newer ones are moved aside (`_move_aside`,
  unless `move_aside=False`, e.g. for another run's directory) so the run can save those steps
  again. Returns None only if there is no checkpoint at all; if checkpoints exist but none
  restores (e.g. the abstract state no longer matches the config), nothing is moved and it raises
  rather than let the caller silently start from scratch and rotate the old run away.
  All processes must call it.
  """
  steps = _candidate_steps(mngr)
  if not steps:
    return None
  failed: list[tuple[int, Exception]] = []
  for step in steps:
    restored, error = None, None
    try:
      storage.check_committed(epath.Path(mngr.directory) / str(step))
      storage.check_declared(_state_metadata(mngr, step), f'{mngr.directory}/{step}')
      restored = mngr.restore(
        step, args=ocp.args.Composite(**{_STATE: ocp.args.StandardRestore(abstract_state)})
      )
    except Exception as e:  # noqa: BLE001 -- any failure of one step means "try the previous step"
      error = e
    if parallel.all_processes_agree(error is None):
      if failed:
        log.warning(
          'Resumed from step %d after %d unreadable newer checkpoint(s).', step, len(failed)
        )
        if move_aside:
          _move_aside(mngr, [s for s, _ in failed])
      return restored[_STATE]
    error = error or RuntimeError('restore failed on another process')
    log.warning(
      'Checkpoint step %d in %s failed to restore (%s); trying the previous step.',
      step,
      mngr.directory,
      storage.brief(error),
    )
    failed.append((step, error))
  last = failed[-1][1]
  raise UnreadableCheckpointError(
    f'None of the checkpoints {steps} in {mngr.directory} could be restored; last error: '
    f'{storage.brief(last)}. If the config changed since they were written, train into '
    'a new --workdir (or restore the old config).'
  ) from last


def abstract_of(state: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of a concrete state: a target for `restore_latest`."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


def close(mngr: ocp.CheckpointManager) -> None:
  """Waits for the in-flight async save to commit, then releases the manager. All processes.

  A failed save raises (`storage.WriteFailedError` for a full disk) after the manager is closed.
  """
  _OPEN.pop(id(mngr), None)
  try:
    _wait(mngr)
  except BaseException:
    with contextlib.suppress(Exception):  # the same failure again, already being raised
      mngr.close()
    _remove_failed_saves(mngr)
    raise
  try:
    mngr.close()
  finally:
    _remove_failed_saves(mngr)


def _remove_failed_saves(mngr: ocp.CheckpointManager) -> None:
  """Once the manager's threads are done: a failed save's other writes may have re-created its
  tmp directory after the first clean-up (`storage.save_failure`), so process 0 removes it again."""
  if _FAILED.pop(id(mngr), None) and jax.process_index() == 0:
    storage.remove_partial_saves(os.fspath(mngr.directory))


def close_all() -> None:
  """Closes the managers still open, quietly: the CLI's last step on any exit path (an error
  between `make_manager` and the trainer's `finally`), so no Orbax thread outlives the run."""
  for mngr in list(_OPEN.values()):
    with contextlib.suppress(Exception):
      close(mngr)


################################################################################
# Reading a finished run without its abstract state (translate / evaluate).    #
################################################################################


def _restore_params_numpy(step_dir: epath.Path, key: str = 'params') -> Any:
  """Partial restore of state[key] as numpy (the params; pix2pix also its batch_stats).

  Reads the `state` item directly, not through a CheckpointManager: a read-only manager warns
  about its own options, and a Composite restore warns about every item it is not asked for
  (`extra`), so a healthy `evaluate` would print warnings that look like failures.
  """
  storage.check_committed(step_dir)
  handler = ocp.PyTreeCheckpointHandler()
  # The handler's own metadata (raises if missing: damage); `Checkpointer.metadata` would also
  # look for step-level metadata inside the item directory and warn that it is not there.
  tree = handler.metadata(step_dir / _STATE).tree
  storage.check_declared(tree[key], step_dir / _STATE)
  with ocp.Checkpointer(handler) as ckptr:
    item = {key: tree[key]}
    args = ocp.args.PyTreeRestore(
      item=item, restore_args=_numpy_restore_args(item), partial_restore=True
    )
    return ckptr.restore(step_dir / _STATE, args=args)[key]


def run_steps(workdir: str) -> list[int]:
  """The committed checkpoint steps of a run, oldest first (nothing restored)."""
  return sorted(ocp.utils.checkpoint_steps(_path(workdir) / 'ckpt'))


def load_run(workdir: str) -> tuple[dict, Any]:
  """Returns (config.json as a dict, params of the newest restorable checkpoint as numpy arrays).

  Needs no mesh and no abstract state: a 1-device translate job can read a run trained on a pod.
  """
  config, params, _ = load_run_with_step(workdir)
  return config, params


def load_run_with_step(
  workdir: str, step: int | None = None, key: str = 'params'
) -> tuple[dict, Any, int]:
  """`load_run` plus the step it read (a score says which checkpoint); `key`: the state entry.

  Read-only: an unreadable step is skipped with a WARNING and left where it is (only the trainer
  moves damaged steps aside). Raises `RunNotFoundError` if `workdir` holds no run (or no `step`,
  when one is named: then only that step is read).
  """
  workdir = _path(workdir)
  config = storage.read_run_config(workdir)
  ckpt_dir = workdir / 'ckpt'
  # The committed `{step}` dirs, as CheckpointManager.all_steps lists them, without a manager.
  steps = sorted(ocp.utils.checkpoint_steps(ckpt_dir), reverse=True)
  if not steps:
    raise RunNotFoundError(
      f'{workdir} has no checkpoint under {ckpt_dir} yet (the trainer saves every '
      'ckpt.every_steps steps and at the end); wait for the first save or pass another --workdir'
    )
  if step is not None and step not in steps:  # `evaluate --step N|best`: that one, or none
    raise RunNotFoundError(f'{workdir} has no checkpoint of step {step} (it has {sorted(steps)})')
  steps = steps if step is None else [step]
  read = lambda s: _restore_params_numpy(ckpt_dir / str(s), key)
  params, step = storage.first_readable(steps, read, ckpt_dir, log)  # falls back like restore
  return config, params, step


################################################################################
# Project weight format (ported / exported nets).                             #
################################################################################


def save_params(path: str, params: Any, meta: dict) -> None:
  """Writes `{path}/params` (Orbax PyTree, atomic) then `{path}/jaxstyle.json`; overwrites `path`.

  The metadata is written last, so a directory with `jaxstyle.json` always has complete params.
  """
  path = _path(path)
  path.mkdir(parents=True, exist_ok=True)
  meta_file = path / _META_FILE
  if meta_file.exists():
    meta_file.unlink()
  params = jax.tree.map(np.asarray, params)
  with ocp.PyTreeCheckpointer() as ckptr:
    ckptr.save(path / _PARAMS_DIR, args=ocp.args.PyTreeSave(params), force=True)
  tmp = path / (_META_FILE + '.tmp')
  tmp.write_text(json.dumps(storage.to_json(meta), indent=2, sort_keys=True))
  tmp.rename(meta_file)


def load_params(path: str) -> tuple[Any, dict]:
  """Reads a `save_params` directory: (numpy params pytree, metadata dict). No target needed."""
  path = _path(path)
  meta_file = path / _META_FILE
  if not meta_file.exists():
    raise FileNotFoundError(
      f'{meta_file} missing: {path} is not a complete jaxstyle weight directory'
    )
  try:  # damaged by hand or cut short: one line naming it (issue #24)
    meta = json.loads(meta_file.read_text())
  except (OSError, ValueError) as err:
    raise UserError(
      f'{meta_file} cannot be read ({err}); re-create {path} with `jaxstyle port-weights`'
    ) from err
  try:  # damaged params (fuzzed in tests/test_checkpoint_fuzz.py): Orbax fails in many ways
    with ocp.PyTreeCheckpointer() as ckptr:
      tree = ckptr.metadata(path / _PARAMS_DIR).item_metadata.tree
      storage.check_declared(tree, path / _PARAMS_DIR)
      params = ckptr.restore(
        path / _PARAMS_DIR,
        args=ocp.args.PyTreeRestore(item=tree, restore_args=_numpy_restore_args(tree)),
      )
  except UserError:
    raise
  except Exception as err:  # noqa: BLE001 -- any failure here means the files are damaged
    raise UnreadableCheckpointError(
      f'{path / _PARAMS_DIR} cannot be restored ({type(err).__name__}: '
      f'{" ".join(str(err).split())[:300]}); re-create {path} with `jaxstyle port-weights`'
    ) from err
  return params, meta
