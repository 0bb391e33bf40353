"""`jaxstyle stylize` without --config is exactly the named jcjohnson preset; flags and overrides."""

import numpy as np
import pytest

from jaxstyle import cli, config_lib
from jaxstyle.models.vgg import expected_shapes
from jaxstyle.nst import cli as nst_cli
from jaxstyle.nst import presets, stylize
from jaxstyle.nst.weights import PREPROCESSING

build = nst_cli.config_from_argv


def test_default_is_the_jcjohnson_preset():
  got = build(['c.png', 's1.png', 's2.png', '-o', 'out/x.png'])
  want = presets.jcjohnson('c.png', 's1.png+s2.png')
  want.output = 'out/x.png'
  assert got.to_dict() == want.to_dict()
  assert got.to_dict() != presets.nst_base('c.png', 's1.png+s2.png').to_dict()
  # The jcjohnson values themselves (what the stylize --help promises).
  assert (got.image.max_side, got.loss.content_layers, got.loss.normalisation) == (
    512,
    ('block4_conv2',),
    'gatys',
  )


def test_help_names_the_default_preset(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(['stylize', '--help'])
  assert exit_info.value.code == 0
  text = ' '.join(capsys.readouterr().out.split())
  assert 'jcjohnson preset' in text and 'configs/nst_jcjohnson.py' in text


def test_flags_then_overrides():
  config = build(
    [
      'c.png',
      's.png',
      '--iterations',
      '3',
      '--height',
      '64',
      '--config.optim.segments=5',
      '--config.loss.style_layers=relu1_1,relu2_1',
      '--no-snapshots',
    ]
  )
  assert config.optim.segments == 5  # --config.* extras come after the flags
  assert (config.image.height, config.image.max_side) == (64, 0)
  assert config.loss.style_layers == ('relu1_1', 'relu2_1') and config.snapshots is False
  with pytest.raises(config_lib.OverrideError, match='did you mean optim.segments'):
    build(['c.png', 's.png', '--config.optim.segmets=5'])


def test_default_objective_equals_the_presets():
  """Same loss on a tiny image with random VGG19 weights (full jcjohnson layer set, 16x16)."""
  rng = np.random.default_rng(1)
  params = {
    n: {
      'kernel': rng.normal(0, np.sqrt(2 / (9 * s['kernel'][2])), s['kernel']).astype(np.float32),
      'bias': np.zeros(s['bias'], np.float32),
    }
    for n, s in expected_shapes().items()
  }
  content = rng.uniform(0, 255, (16, 16, 3)).astype(np.float32)
  style = rng.uniform(0, 255, (12, 12, 3)).astype(np.float32)
  from_cli = build(['c.png', 's.png', '-o', 'o.png'])
  from_preset = presets.jcjohnson('c.png', 's.png')
  from_preset.output = 'o.png'
  values = []
  for config in (from_cli, from_preset):
    targets, loss_fn, x = stylize.make_loss(
      config, params, PREPROCESSING['keras'], content, [style], (16, 16)
    )
    total, terms = loss_fn(x + 3.0, targets, params, stylize.weights_of(config))
    values.append([float(total)] + [float(terms[k]) for k in ('content', 'style', 'tv')])
  assert values[0] == values[1]
  assert values[0][1] > 0 and values[0][2] > 0 and values[0][3] == 0.0  # jcjohnson: no TV
