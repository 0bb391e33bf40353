"""Fuzzed checkpoint restore: seeded mutations of the files of a saved run and of a weight directory.

`restore_latest` (the trainer's resume), `load_run` (translate / evaluate) and `load_params`
(ported weights) read files that a full disk, a bad copy or a hand edit can damage. Whatever one
file holds, they must end in a result or a `UserError`: no other exception, no hang, no runaway
allocation (tests/fuzzing.py runs the cases in a child under an address-space limit).
"""

import json
import os
import shutil
from pathlib import Path

import fuzz_mutators as fm
import fuzzing
import numpy as np
import pytest

SEED = 24
CASES = int(os.environ.get('JAXSTYLE_FUZZ_CASES_CKPT', '150'))

pytestmark = pytest.mark.slow


def _tree(root: Path) -> dict[str, bytes]:
  return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def _huge_zarr_variants(root: Path, item: str) -> list[tuple[str, str, dict[str, bytes]]]:
  """Copies of the tree where one array's zarr metadata (inside Orbax's OCDBT store, rewritten
  through tensorstore so it stays well-formed) declares a huge shape."""
  import tensorstore as ts

  out = []
  for dim in (2**31, 2**40, 2**62):
    copy = root.parent / f'variant-{len(out)}'
    shutil.copytree(root, copy)
    kv = ts.KvStore.open({'driver': 'ocdbt', 'base': f'file://{copy / item}/'}).result()
    key = next(k for k in kv.list().result() if k.endswith(b'kernel/.zarray'))
    meta = json.loads(kv.read(key).result().value)
    meta['shape'][0] = meta['chunks'][0] = dim
    kv.write(key, json.dumps(meta).encode()).result()
    del kv
    out.append((f'{item}/', f'{key.decode()} shape {meta["shape"]}', _tree(copy)))
    shutil.rmtree(copy)
  return out


def checkpoint_dirs(workdir: Path) -> fuzzing.Target:
  """A one-step run (`run/`: config.json, ckpt/3/{state,extra}) and a `save_params` dir (`w/`)."""
  import jax
  import jax.numpy as jnp

  from jaxstyle import checkpoint

  rng = np.random.default_rng(0)
  state = {
    'step': jnp.int32(3),
    'rng': jax.random.key(0),
    'params': {'G': {'kernel': rng.normal(size=(3, 3, 2, 4)).astype(np.float32)}},
    'opt': {'mu': rng.normal(size=(3, 3, 2, 4)).astype(np.float32), 'count': jnp.int32(3)},
  }
  run = workdir / 'run'
  run.mkdir(parents=True)
  (run / 'config.json').write_text(json.dumps({'model': {'gen_filters': 4}}))
  mngr = checkpoint.make_manager(str(run), {'ckpt': {'keep': 2}})
  checkpoint.save(mngr, 3, state, extra={'data_step': 30})
  checkpoint.close(mngr)
  checkpoint.save_params(str(workdir / 'w'), state['params'], {'kind': 'test'})
  abstract = checkpoint.abstract_of(state)

  def restore(case: Path) -> None:
    mngr = checkpoint.make_manager(str(case / 'run'))
    try:
      checkpoint.restore_latest(mngr, abstract)
    finally:
      checkpoint.close(mngr)

  files = _tree(workdir)
  variants = _huge_zarr_variants(workdir, 'w/params') + _huge_zarr_variants(
    workdir, 'run/ckpt/3/state'
  )
  json_files = [n for n, data in files.items() if data[:1] in (b'{', b'[')]
  return fuzzing.Target(
    files=files,
    readers={
      'restore_latest': restore,
      'load_run': lambda case: checkpoint.load_run(str(case / 'run')),
      'load_params': lambda case: checkpoint.load_params(str(case / 'w')),
    },
    aware={n: [fm.json_value] for n in json_files},
    scope={'restore_latest': 'run/', 'load_run': 'run/', 'load_params': 'w/'},
    weights={n: 4.0 for n in json_files},
    variants=variants,
  )


def test_mutated_checkpoints_give_user_errors_only(tmp_path):
  records, summary = fuzzing.run_target(
    __file__, 'checkpoint_dirs', SEED, CASES, tmp_path, timeout_s=400
  )
  escaped = [r for r in records if r['outcome'] == 'escaped']
  assert not escaped, f'{len(escaped)} cases escaped the UserError boundary:\n' + fuzzing.describe(
    escaped
  )
  assert summary['maxrss_growth_kb'] < 256 << 10
  assert {r['outcome'] for r in records} >= {'ok', 'user'}
