"""CUT / FastCUT presets: the paper's settings, runlocal, sweeps, validation, workdir rules."""

import os

import pytest
from helpers import ROOT

from jaxstyle import config_drift, config_lib, main
from jaxstyle.cut import presets
from jaxstyle.errors import ConfigError

CONFIGS = {
  name: os.path.join(ROOT, 'configs', f'{name}.py')
  for name in ('cut_horse2zebra', 'fastcut_horse2zebra', 'cut_synthetic')
}


def test_cut_and_fastcut_are_the_papers_settings():
  cut = config_lib.load_config(CONFIGS['cut_horse2zebra'])
  fast = config_lib.load_config(CONFIGS['fastcut_horse2zebra'])
  for c in (cut, fast):  # shared: models/cut_model.py and options/ of the reference
    assert c.task == 'cut' and 'pool_size' not in c  # no image pool
    assert (c.model.generator, c.model.discriminator) == ('resnet_antialias', 'patchgan_antialias')
    assert (c.model.gen_filters, c.model.disc_filters, c.model.n_blocks) == (64, 64, 9)
    assert (c.model.init, c.model.init_gain, c.model.mlp_features) == ('xavier', 0.02, 256)
    assert c.loss.lambda_gan == 1.0 and c.per_device_batch == 1
    assert (c.optim.lr, c.optim.b1, c.optim.b2, c.optim.schedule) == (2e-4, 0.5, 0.999, 'junyanz')
    assert (c.data.load_size, c.data.image_size, c.data.augment) == (286, 256, 'reference')
    assert (c.data.name, c.data.epoch_rule) == ('horse2zebra', 'max')
    assert c.nce.layers == (0, 4, 8, 12, 16) and c.nce.num_patches == 256
    assert c.nce.temperature == 0.07 and not c.nce.all_negatives_from_minibatch
  assert (cut.loss.lambda_nce, cut.loss.nce_idt, cut.nce.flip_equivariance) == (1.0, True, False)
  assert (cut.optim.n_epochs, cut.optim.n_epochs_decay, cut.num_epochs) == (200, 200, 400.0)
  assert (fast.loss.lambda_nce, fast.loss.nce_idt, fast.nce.flip_equivariance) == (
    10.0,
    False,
    True,
  )
  assert (fast.optim.n_epochs, fast.optim.n_epochs_decay, fast.num_epochs) == (150, 50, 200.0)


def test_synthetic_config_has_the_cyclegan_main_jobs_shapes():
  cyc = config_lib.load_config(os.path.join(ROOT, 'configs', 'cyclegan_synthetic.py'))
  for arg, fast in (('', False), (':fastcut', True)):
    c = config_lib.load_config(CONFIGS['cut_synthetic'] + arg)
    assert c.data.source == 'synthetic' and c.nce.flip_equivariance == fast
    for key in ('data.image_size', 'per_device_batch', 'num_epochs', 'optim.lr', 'optim.schedule'):
      assert config_lib.get_field(c, key) == config_lib.get_field(cyc, key), key


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_runlocal_and_every_sweep_member_validate(name):
  full = config_lib.load_config(CONFIGS[name])
  local = main.build_config(CONFIGS[name] + ':runlocal')  # validated, as `jaxstyle train` does
  assert local.data.source == 'synthetic' and local.data.image_size <= 16
  assert local.model.gen_filters < full.model.gen_filters
  assert max(local.nce.layers) < presets.nce_layer_count(local)
  module = config_lib.load_config_module(CONFIGS[name])
  sweep = module.get_sweep()
  assert len(sweep) >= 3
  for overrides in sweep:
    cfg = config_lib.load_config(CONFIGS[name])
    presets.validate(config_lib.apply_overrides(cfg, overrides))
  # The sweeps vary what the issue names: λ_NCE, the taps, CUT vs FastCUT.
  keys = {
    k
    for name in CONFIGS
    for o in config_lib.load_config_module(CONFIGS[name]).get_sweep()
    for k in o
  }
  assert {'loss.lambda_nce', 'nce.layers', 'nce.flip_equivariance', 'loss.nce_idt'} <= keys


@pytest.mark.parametrize(
  'overrides, message',
  [
    ({'nce.layers': (0, 8, 4)}, 'nce.layers=(0, 8, 4) must be strictly increasing'),
    ({'nce.layers': (0, 32)}, 'in [0, 32)'),  # ResNet-9's nn.Sequential has 32 entries
    ({'nce.num_patches': 0}, 'nce.num_patches=0'),
    ({'nce.temperature': 0.0}, 'nce.temperature=0.0'),
    ({'model.generator': 'resnet'}, "model.generator='resnet' is not one of 'resnet_antialias'"),
    ({'model.discriminator': 'patchgan_book'}, "model.discriminator='patchgan_book'"),
    ({'data.image_size': 30, 'data.load_size': 0}, 'multiple of 4'),
    ({'data.image_size': 16}, 'too small for the anti-aliased PatchGAN'),
    ({'per_device_batch': 0}, 'per_device_batch=0'),
  ],
)
def test_validate_names_the_bad_field(overrides, message):
  c = config_lib.apply_overrides(presets.cut_base(), overrides)
  with pytest.raises(ConfigError, match='invalid config') as err:
    presets.validate(c)
  assert message in str(err.value)


def test_workdir_rules():
  assert (
    config_drift.field_class('cut', 'nce.layers') == config_drift.STATE
  )  # F's MLPs follow the taps
  assert config_drift.field_class('cut', 'model.mlp_features') == config_drift.STATE
  assert config_drift.field_class('cut', 'nce.num_patches') == config_drift.STREAM
  assert config_drift.field_class('cut', 'loss.lambda_nce') == config_drift.FREE


def test_the_size_rule_is_the_discriminators_score_map():
  import jax
  import jax.numpy as jnp

  from jaxstyle.models import cut

  for n_layers in (2, 3):
    for size in (16, 20, 24, 32):
      d = cut.CutDiscriminator(filters=2, n_layers=n_layers)
      x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
      want = presets.antialias_d_side(size, n_layers)
      if want < 1:
        continue  # an empty map: flax would fail on it; validate refuses these sizes
      out = jax.eval_shape(lambda x, d=d: d.init_with_output(jax.random.key(0), x)[0], x)
      assert out.shape[1:3] == (want, want), (size, n_layers)
