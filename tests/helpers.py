"""What several test files share: where the repository's files are, and pytree comparisons.

Importable as `helpers` (pyproject's pytest `pythonpath` holds tests/ and tests/fixtures/).
"""

import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / 'tests' / 'fixtures'
CONFIG_DIR = ROOT / 'configs'
# The trainer's synthetic CycleGAN config (a str: tests append ':runlocal' to it).
CYCLEGAN_SYNTHETIC = str(CONFIG_DIR / 'cyclegan_synthetic.py')
NST_BOOK = str(CONFIG_DIR / 'nst_book.py')


def flat(tree, prefix: str = '') -> dict[str, np.ndarray]:
  """A nested dict of arrays as {'/a/b': array}, so two trees compare key by key."""
  if isinstance(tree, dict):
    return {k: v for key in tree for k, v in flat(tree[key], f'{prefix}/{key}').items()}
  return {prefix: np.asarray(tree)}


def assert_trees_equal(a, b) -> None:
  """Same keys (at least one), dtypes and bit-identical leaves (a NaN equals nothing), naming
  the first leaf that differs."""
  flat_a, flat_b = flat(a), flat(b)
  assert sorted(flat_a) == sorted(flat_b) and flat_a
  for key in flat_a:
    x, y = flat_a[key], flat_b[key]
    assert x.dtype == y.dtype and np.array_equal(x, y), key


def tiny_train_config(**overrides):
  """The synthetic runlocal preset cut to 2 steps that log, sample and checkpoint at every chance."""
  from jaxstyle import config_lib

  cfg = config_lib.load_config(CYCLEGAN_SYNTHETIC + ':runlocal')
  base = {
    'total_steps': 2,
    'log_every': 1,
    'sample_every': 2,
    'ckpt.every_steps': 2,
    'progress': False,
    'eval_at_end': False,
    'data.synthetic_size': 16,
  }
  config_lib.apply_overrides(cfg, {**base, **overrides})
  return cfg


def random_inception_for_fid(monkeypatch, seed: int):
  """`evaluate`'s FID path without the real weights or the minute of sqrtm a call: seeded random
  Inception weights in place of the downloaded ones, and a recorder in place of the FID formula
  (tested on its own in tests/fid). Returns (the Inception params, the recorded (fake, real)
  feature pairs); the recorder returns 1.0, 2.0, ... in call order."""
  from random_weights import random_state_dict

  from jaxstyle.fid import metrics as fid_metrics
  from jaxstyle.fid import weights as fid_weights
  from jaxstyle.models import inception

  params = inception.params_from_state_dict(
    random_state_dict(list(inception.torch_shapes().items()), seed)
  )
  monkeypatch.setattr(fid_weights, 'load_params', lambda path=None, **_: params)
  seen = []
  monkeypatch.setattr(
    fid_metrics, 'fid_from_features', lambda a, b: seen.append((a, b)) or float(len(seen))
  )
  return params, seen
