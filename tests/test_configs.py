"""Every config loads with runlocal, and every get_sweep() entry applies to the locked config."""

import glob
import os

import pytest
from helpers import ROOT

from jaxstyle import config_lib, main

CYCLEGAN = sorted(glob.glob(os.path.join(ROOT, 'configs', 'cyclegan_*.py')))


def test_cyclegan_configs_exist():
  names = {os.path.basename(p) for p in CYCLEGAN}
  assert {
    'cyclegan_synthetic.py',
    'cyclegan_book_apple2orange.py',
    'cyclegan_book_monet2photo.py',
    'cyclegan_reference.py',
  } <= names


@pytest.mark.parametrize('path', CYCLEGAN, ids=os.path.basename)
def test_loads_with_runlocal_and_sweeps_apply(path):
  full = config_lib.load_config(path)
  local = config_lib.load_config(path + ':runlocal')
  assert local.task == full.task == 'cyclegan'
  assert local.data.source == 'synthetic' and local.data.image_size <= 32
  assert local.model.gen_filters < full.model.gen_filters
  module = config_lib.load_config_module(path)
  for overrides in getattr(module, 'get_sweep', lambda: [])():
    cfg = config_lib.load_config(path + ':runlocal')
    cfg.lock()
    config_lib.apply_overrides(cfg, overrides)
    for key, value in overrides.items():
      node = cfg
      for part in key.split('.'):
        node = node[part]
      assert node == value


def test_presets_follow_the_spec_table():
  by_name = {os.path.basename(p): config_lib.load_config(p) for p in CYCLEGAN}
  a2o = by_name['cyclegan_book_apple2orange.py']
  assert (a2o.model.generator, a2o.model.discriminator, a2o.data.image_size) == (
    'unet_book',
    'patchgan_book',
    128,
  )
  assert (a2o.loss.lambda_id, a2o.optim.schedule, a2o.data.epoch_rule) == (2.0, 'constant', 'min')
  assert (a2o.model.eps_mode, a2o.model.norm_eps) == ('std', 1e-3)
  monet = by_name['cyclegan_book_monet2photo.py']
  assert (monet.model.generator, monet.model.disc_filters, monet.loss.lambda_id) == (
    'resnet_book',
    64,
    5.0,
  )
  ref = by_name['cyclegan_reference.py']
  assert (ref.model.n_blocks, ref.data.load_size, ref.pool_size, ref.optim.schedule) == (
    9,
    286,
    50,
    'junyanz',
  )


def test_cli_overrides_are_typed_and_checked():
  cfg = main.build_config(
    CYCLEGAN[0] + ':runlocal',
    [
      '--config.optim.lr=1e-3',
      '--config.seed',
      '3',
      '--config.book_exact_d=true',
      '--config.model.generator=unet_book',
    ],
  )
  got = (cfg.optim.lr, cfg.seed, cfg.book_exact_d, cfg.model.generator)
  assert got == (1e-3, 3, True, 'unet_book') and isinstance(cfg.seed, int)
  assert cfg.is_locked
  with pytest.raises(config_lib.OverrideError, match='did you mean optim.lr'):
    main.build_config(CYCLEGAN[0], ['--config.optim.lrr=1'])
  with pytest.raises(config_lib.OverrideError, match='expected int'):
    main.build_config(CYCLEGAN[0], ['--config.seed=abc'])


ALL_CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))
PLACEHOLDERS = ('not yet measured', 'to be measured', 'tbd', 'todo', 'result to record', '<')
RECORD_FIELDS = ('Command:', 'Hardware:', 'Wall time:', 'Expected:')


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=os.path.basename)
def test_docstring_is_a_filled_in_experiment_record(path):
  """House style §5: the docstring says the command, hardware, wall time and expected result."""
  doc = config_lib.load_config_module(path).__doc__ or ''
  found = [p for p in PLACEHOLDERS if p in doc.lower()]
  assert not found, f'{os.path.basename(path)}: placeholder(s) {found} in the docstring'
  starts = [line.split(':')[0] + ':' for line in doc.splitlines() if not line.startswith(' ')]
  for field in RECORD_FIELDS:
    assert starts.count(field) == 1, f'{os.path.basename(path)}: needs one {field!r} line'
  command = doc.split('Command:')[1].split('\n', 2)[1]
  assert command.startswith('  ') and ('jaxstyle ' in command or 'python -m' in command)
  wall = doc.split('Wall time:')[1].split('Expected:')[0]
  assert 'measured' in wall or 'projected' in wall, 'say whether the wall time was run or projected'
