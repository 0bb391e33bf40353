"""Config validation at load (issue #13): every shipped config passes, each bad value is named with
its allowed range, and the validators' lists agree with the code that runs."""

import glob
import importlib
import itertools
import os

import jax
import jax.numpy as jnp
import pytest
from helpers import ROOT

from jaxstyle import config_lib, errors, models
from jaxstyle.cyclegan import presets as cyclegan_presets
from jaxstyle.fast_style import presets as fast_style_presets
from jaxstyle.kernels import dispatch
from jaxstyle.models import johnson, vgg
from jaxstyle.nst import image as nst_image
from jaxstyle.nst import losses as nst_losses
from jaxstyle.nst import optim as nst_optim
from jaxstyle.nst import presets as nst_presets
from jaxstyle.nst import weights as nst_weights

CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))


@pytest.mark.parametrize(
  'spec', [p + arg for p in CONFIGS for arg in ('', ':runlocal')], ids=lambda s: os.path.basename(s)
)
def test_every_shipped_config_and_its_sweep_validates(spec):
  config = config_lib.load_config(spec)
  presets = importlib.import_module(f'jaxstyle.{config.task}.presets')  # each task's validate
  presets.validate(config)
  module = config_lib.load_config_module(spec)
  for overrides in getattr(module, 'get_sweep', lambda: [])():
    presets.validate(config_lib.apply_overrides(config_lib.load_config(spec), overrides))


def test_presets_validate():
  cyclegan_presets.validate(cyclegan_presets.cyclegan_base())
  nst_presets.validate(nst_presets.nst_base('c.png', 's.png'))
  nst_presets.validate(nst_presets.jcjohnson('c.png', 's.png'))
  fast_style_presets.validate(fast_style_presets.fast_style_base())


@pytest.mark.parametrize(
  'overrides, message',
  [
    ({'per_device_batch': 0}, 'per_device_batch=0 must be an integer ≥ 1'),
    ({'optim.lr': 0.0}, 'optim.lr=0.0 must be a number > 0'),
    ({'optim.b1': 1.0}, 'optim.b1=1.0 must be a number ≥ 0 and < 1'),
    ({'optim.schedule': 'cosine'}, "optim.schedule='cosine' is not one of"),
    ({'model.conv_impl': 'cudnn'}, "model.conv_impl='cudnn' is not one of"),
    ({'data.image_size': 24}, 'multiple of 16'),
    (
      {'model.generator': 'resnet', 'model.discriminator': 'patchgan', 'data.image_size': 16},
      'needs ≥ 24',
    ),
    ({'data.load_size': 64}, 'data.load_size=64 must be 0'),
    ({'data.source': 'folder'}, 'needs data.root'),
    ({'ckpt.keep': 0}, 'ckpt.keep=0'),
    ({'num_epochs': 0.0}, 'num_epochs=0.0 must be a number > 0'),
  ],
)
def test_cyclegan_bad_values_are_named(overrides, message):
  config = cyclegan_presets.cyclegan_base()
  config_lib.apply_overrides(config, overrides)
  with pytest.raises(errors.ConfigError, match=message.replace('(', r'\(')):
    cyclegan_presets.validate(config)


def test_all_problems_in_one_line():
  config = cyclegan_presets.cyclegan_base()
  config_lib.apply_overrides(config, {'per_device_batch': -1, 'optim.lr': -1.0, 'log_every': 0})
  with pytest.raises(errors.ConfigError) as info:
    cyclegan_presets.validate(config)
  text = str(info.value)
  assert '\n' not in text and text.count(';') == 2
  assert all(k in text for k in ('per_device_batch=-1', 'optim.lr=-1.0', 'log_every=0'))


@pytest.mark.parametrize(
  'overrides, message',
  [
    ({'optim.name': 'sgd'}, "optim.name='sgd' is not one of"),
    ({'image.style_scale': 0.0}, 'image.style_scale=0.0 must be a number > 0'),
    ({'loss.style_layers': ('block6_conv1',)}, 'unknown VGG19 layers'),
    ({'loss.layer_weights': (1.0, 2.0)}, '2 weights for 5 style layers'),
    ({'style_blend': (1.0, 1.0)}, 'one positive weight per style image'),
    ({'optim.segment_iters': 0}, 'optim.segment_iters=0'),
  ],
)
def test_nst_bad_values_are_named(overrides, message):
  config = nst_presets.nst_base('c.png', 's.png')
  config_lib.apply_overrides(config, overrides)
  with pytest.raises(errors.ConfigError, match=message):
    nst_presets.validate(config)


def test_nst_inputs_must_exist(tmp_path):
  content = tmp_path / 'c.png'
  content.write_bytes(b'x')
  config = nst_presets.nst_base(str(content), str(tmp_path / 'missing.png'))
  with pytest.raises(errors.ConfigError, match="style image .*missing.png' does not exist"):
    nst_presets.check_inputs(config)
  with pytest.raises(errors.ConfigError, match='needs a content image'):
    nst_presets.check_inputs(nst_presets.nst_base('', ''))


#### The validators' lists are the code's lists


def test_lists_match_the_runtime_registries():
  assert set(cyclegan_presets.GENERATOR_MULTIPLE) == set(models.GENERATORS)
  assert set(cyclegan_presets.DISCRIMINATORS) == set(models.DISCRIMINATORS)
  assert cyclegan_presets.CONV_IMPLS == ('auto', *dispatch.CONV_IMPLS)
  assert nst_presets.CONV_IMPLS == ('auto', *dispatch.CONV_IMPLS)
  assert nst_optim.OPTIMIZERS is nst_presets.OPTIMIZERS
  assert (
    nst_presets.NORMALISATIONS == fast_style_presets.NORMALISATIONS == nst_losses.NORMALISATIONS
  )
  assert fast_style_presets.CONV_IMPLS == ('auto', *dispatch.CONV_IMPLS)
  assert fast_style_presets.UPSAMPLES == johnson.UPSAMPLES
  assert set(fast_style_presets.OUTPUTS) == set(johnson.OUTPUTS)
  assert set(fast_style_presets.VGG_SOURCES) == {*nst_weights.PREPROCESSING, 'random'}
  assert set(nst_presets.RESIZE) == set(nst_image._RESAMPLE)


def test_vgg_layer_names_agree_with_the_network():
  candidates = [f'{p}{b}_{i}' for p in ('conv', 'relu') for b in range(0, 7) for i in range(0, 6)]
  candidates += [f'block{b}_conv{i}' for b in range(0, 7) for i in range(0, 6)] + ['pool1', '']
  for name in candidates:
    try:
      vgg.canonical_name(name)
      known = True
    except ValueError:
      known = False
    assert nst_presets.vgg_layer_ok(name) == known, name


def _fits(net, size):
  try:
    out = jax.eval_shape(
      lambda x: net.init_with_output(jax.random.key(0), x)[0], jnp.zeros((1, size, size, 3))
    )
  except Exception:  # noqa: BLE001 -- any failure to build means "does not fit"
    return False
  return min(out.shape[1:3]) >= 1


@pytest.mark.parametrize(
  'generator, discriminator, n_layers',
  list(itertools.product(['resnet', 'unet_book'], ['patchgan'], [1, 2, 3])),
)
def test_image_size_rule_matches_the_networks(generator, discriminator, n_layers):
  """validate accepts a size exactly when both networks build at it (checked around the edges)."""
  cfg = cyclegan_presets.model_config(
    generator=generator,
    discriminator=discriminator,
    gen_filters=2,
    disc_filters=2,
    n_blocks=1,
    n_layers=n_layers,
  )
  low = 3 * 2**n_layers
  multiple = cyclegan_presets.GENERATOR_MULTIPLE[generator]
  for size in sorted({low - multiple, low, low + multiple, multiple, 2 * multiple, 48} - {0}):
    config = cyclegan_presets.cyclegan_base()
    config.model = cfg
    config.data.image_size = size
    try:
      cyclegan_presets.validate(config)
      accepted = True
    except errors.ConfigError:
      accepted = False
    builds = (
      size % multiple == 0
      and _fits(models.make_generator(cfg), size)
      and _fits(models.make_discriminator(cfg), size)
    )
    assert accepted == builds, (generator, n_layers, size)
