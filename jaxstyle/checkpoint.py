"""Orbax checkpoints: the only module in jaxstyle that imports orbax.

Orbax's API moves between releases (a v1 API already exists), so everything that touches it lives
here behind a small surface (house style §6). Checked against orbax-checkpoint 0.12.8.

Layout of a training run:

  {workdir}/config.json          written by the trainer (process 0)
  {workdir}/ckpt/{step}/state    the whole train state (StandardSave: params, opt, pools, rng, step)
  {workdir}/ckpt/{step}/extra    optional JSON metadata (data position, model config, ...)

Atomicity: Orbax writes each step into `{step}.orbax-checkpoint-tmp-*` and renames it once every
process has finished (on gs:// it writes `commit_success.txt` instead), so a save killed with -9
leaves only a tmp directory that `all_steps()` ignores and the next manager deletes. Damage after
the commit (truncated or deleted files) is caught at restore time: `restore_latest` falls back
step by step.

Typed PRNG keys (`jax.random.key`) are handled by Orbax itself: it stores the key data plus the
key implementation and restores a typed key, so the state keeps its `rng` as is.

Exported weights ("project format", never pickle): a directory holding `params/` (an Orbax PyTree
checkpoint) and `jaxstyle.json` (free-form metadata such as the model config).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

_STATE = 'state'
_EXTRA = 'extra'
_COMMIT_FILE = 'commit_success.txt'
_PARAMS_DIR = 'params'
_META_FILE = 'jaxstyle.json'

log = logging.getLogger(__name__)



def _path(path: Any) -> epath.Path:
  """An absolute path: Orbax refuses relative ones, and users pass `--workdir runs/x`."""
  text = os.fspath(path)
  return epath.Path(text if '://' in text else os.path.abspath(text))

def _cfg_get(config: Any, dotted: str, default: Any) -> Any:
  """Reads `a.b` from a ConfigDict, a plain dict or None, so tests need not build full configs."""
  node = config
  for key in dotted.split('.'):
    if node is None:
      return default
    if isinstance(node, Mapping):
      node = node.get(key)
    else:
      node = getattr(node, key, None)
  return default if node is None else node


def _to_json(obj: Any) -> Any:
  """Round-trips through json so numpy scalars / ConfigDicts convert (or fail) at save time."""

  def default(o: Any) -> Any:
    if isinstance(o, np.generic):
      return o.item()
    if isinstance(o, np.ndarray):
      return o.tolist()
    if hasattr(o, 'to_dict'):
      return o.to_dict()
    raise TypeError(f'not JSON-serialisable: {type(o).__name__}')

  return json.loads(json.dumps(obj, default=default))


def _numpy_restore_args(tree: Any) -> Any:
  """RestoreArgs asking for host numpy arrays: no mesh / device count has to match the writer."""
  return jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)


################################################################################
# Train-state checkpoints (CheckpointManager).                                #
################################################################################


def make_manager(workdir: str, config: Any = None) -> ocp.CheckpointManager:
  """Opens (creating if needed) `{workdir}/ckpt`; keeps `config.ckpt.keep` steps; async saves.

  `save_interval_steps` comes from `config.ckpt.every_steps` (default 1, i.e. the caller decides).
  Leftover `*.orbax-checkpoint-tmp-*` dirs from a killed save are removed here.
  """
  options = ocp.CheckpointManagerOptions(
    max_to_keep=_cfg_get(config, 'ckpt.keep', None),
    save_interval_steps=int(_cfg_get(config, 'ckpt.every_steps', 1)),
    enable_async_checkpointing=True,
    cleanup_tmp_directories=True,
    create=True,
  )
  return ocp.CheckpointManager(
    _path(workdir) / 'ckpt',
    options=options,
    item_handlers={_STATE: ocp.StandardCheckpointHandler(), _EXTRA: ocp.JsonCheckpointHandler()},
  )


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
    items[_EXTRA] = ocp.args.JsonSave(_to_json(extra))
  return bool(mngr.save(int(step), args=ocp.args.Composite(**items), force=force))


def latest_step(mngr: ocp.CheckpointManager) -> int | None:
  """The newest committed step (not necessarily restorable; see `restore_latest`)."""
  return mngr.latest_step()


def _check_committed(mngr: ocp.CheckpointManager, step: int) -> None:
  """Orbax 0.12 writes the commit marker in rename and commit-file modes; no marker = damage."""
  step_dir = epath.Path(mngr.directory) / str(step)
  if step_dir.exists() and not (step_dir / _COMMIT_FILE).exists():
    raise FileNotFoundError(f'{step_dir} has no {_COMMIT_FILE} (interrupted or damaged save)')


def restore_latest(mngr: ocp.CheckpointManager, abstract_state: Any) -> Any | None:
  """Restores the newest restorable step into `abstract_state`'s shapes, dtypes and shardings.

  `abstract_state` is a pytree of `jax.ShapeDtypeStruct` with shardings (see `abstract_of`), so the
  pools come back sharded over 'data'. A step that fails to restore is logged as a WARNING and the
  previous one is tried. Returns None only if there is no checkpoint at all; if checkpoints exist
  but none restores (e.g. the abstract state no longer matches the config), raises rather than let
  the caller silently start from scratch and rotate the old run away.
  """
  steps = sorted(mngr.all_steps(), reverse=True)
  if not steps:
    return None
  errors = []
  for step in steps:
    try:
      _check_committed(mngr, step)
      restored = mngr.restore(
        step, args=ocp.args.Composite(**{_STATE: ocp.args.StandardRestore(abstract_state)})
      )
      if errors:
        log.warning(
          'Resumed from step %d after %d unreadable newer checkpoint(s).', step, len(errors)
        )
      return restored[_STATE]
    except Exception as e:  # noqa: BLE001 -- any failure of one step means "try the previous step"
      log.warning(
        'Checkpoint step %d in %s failed to restore (%s: %s); trying the previous step.',
        step,
        mngr.directory,
        type(e).__name__,
        e,
      )
      errors.append((step, e))
  raise RuntimeError(
    f'None of the checkpoints {steps} in {mngr.directory} could be restored; last error: '
    f'{type(errors[-1][1]).__name__}: {errors[-1][1]}'
  ) from errors[-1][1]


def abstract_of(state: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of a concrete state: a target for `restore_latest`."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


def close(mngr: ocp.CheckpointManager) -> None:
  """Waits for the in-flight async save to commit, then releases the manager. All processes."""
  mngr.wait_until_finished()
  mngr.close()


################################################################################
# Reading a finished run without its abstract state (translate / evaluate).    #
################################################################################


def _restore_params_numpy(ckpt_dir: epath.Path, step: int) -> Any:
  """Partial restore of state['params'] as numpy: only the params are read from disk."""
  mngr = ocp.CheckpointManager(
    ckpt_dir,
    options=ocp.CheckpointManagerOptions(read_only=True, create=False),
    item_handlers={_STATE: ocp.PyTreeCheckpointHandler()},
  )
  try:
    _check_committed(mngr, step)
    tree = mngr.item_metadata(step)[_STATE].tree
    item = {'params': tree['params']}
    args = ocp.args.PyTreeRestore(
      item=item, restore_args=_numpy_restore_args(item), partial_restore=True
    )
    return mngr.restore(step, args=ocp.args.Composite(**{_STATE: args}))[_STATE]['params']
  finally:
    mngr.close()


def load_run(workdir: str) -> tuple[dict, Any]:
  """Returns (config.json as a dict, params of the newest restorable checkpoint as numpy arrays).

  Needs no mesh and no abstract state: a 1-device translate job can read a run trained on a pod.
  """
  workdir = _path(workdir)
  config = json.loads((workdir / 'config.json').read_text())
  ckpt_dir = workdir / 'ckpt'
  if not ckpt_dir.exists():
    raise FileNotFoundError(f'no checkpoints under {ckpt_dir}')
  lister = ocp.CheckpointManager(
    ckpt_dir, options=ocp.CheckpointManagerOptions(read_only=True, create=False)
  )
  steps = sorted(lister.all_steps(), reverse=True)
  lister.close()
  if not steps:
    raise FileNotFoundError(f'no committed checkpoint under {ckpt_dir}')
  last_error: Exception | None = None
  for step in steps:
    try:
      return config, _restore_params_numpy(ckpt_dir, step)
    except Exception as e:  # noqa: BLE001 -- fall back exactly like restore_latest
      log.warning(
        'Checkpoint step %d in %s failed to restore (%s: %s); trying the previous step.',
        step,
        ckpt_dir,
        type(e).__name__,
        e,
      )
      last_error = e
  raise RuntimeError(
    f'None of the checkpoints {steps} in {ckpt_dir} could be restored'
  ) from last_error


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
  tmp.write_text(json.dumps(_to_json(meta), indent=2, sort_keys=True))
  tmp.rename(meta_file)


def load_params(path: str) -> tuple[Any, dict]:
  """Reads a `save_params` directory: (numpy params pytree, metadata dict). No target needed."""
  path = _path(path)
  meta_file = path / _META_FILE
  if not meta_file.exists():
    raise FileNotFoundError(
      f'{meta_file} missing: {path} is not a complete jaxstyle weight directory'
    )
  meta = json.loads(meta_file.read_text())
  with ocp.PyTreeCheckpointer() as ckptr:
    tree = ckptr.metadata(path / _PARAMS_DIR).item_metadata.tree
    params = ckptr.restore(
      path / _PARAMS_DIR,
      args=ocp.args.PyTreeRestore(item=tree, restore_args=_numpy_restore_args(tree)),
    )
  return params, meta
