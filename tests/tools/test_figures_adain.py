"""`jaxstyle figure adain-grid | adain-alpha | adain-mix` (issue #27) on a ported random model.

The panels are checked against the model's own outputs (the figure must show what `stylize`
gives), and the strips' ends against what α = 0 and a one-style weight mean.
"""

import numpy as np
import pytest

from jaxstyle import checkpoint, cli, image_io
from jaxstyle.adain.inference import AdainModel
from jaxstyle.models import adain as A
from jaxstyle.ports import adain as adain_port
from jaxstyle.tools import figures_adain

SIZE = 32


def _img(path, seed, h=40, w=48):
  rng = np.random.default_rng(seed)
  image_io.save(str(path), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
  return str(path)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  import jax

  tmp = tmp_path_factory.mktemp('adain_fig')
  meta = {'task': 'adain', 'model_cfg': {'net': adain_port.DECODER_NET}}
  checkpoint.save_params(str(tmp / 'dec'), A.init_decoder(jax.random.key(0)), meta)
  vgg_meta = {'model_cfg': {'net': adain_port.VGG_NET}}
  checkpoint.save_params(str(tmp / 'vgg'), A.random_encoder(1, 'normalised'), vgg_meta)
  files = {k: _img(tmp / f'{k}.png', i) for i, k in enumerate(('c1', 'c2', 's1', 's2'))}
  return tmp, files


def test_figure_flags_are_checked_before_any_model_loads(tmp_path, capsys):
  (tmp_path / 'm').mkdir()
  base = ['figure', 'adain-mix', '--workdir', str(tmp_path / 'm'), '--image', 'c.png']
  assert cli.main([*base, '--style-images', 's.png']) == 2
  assert 'needs --style-images: 2 image(s)' in capsys.readouterr().err
  assert cli.main([*base, '--style-images', 'a.png', 'b.png', '--steps', '1']) == 2
  assert 'an integer ≥ 2' in capsys.readouterr().err


@pytest.mark.slow
def test_adain_figures(setup, capsys):
  tmp, f = setup
  common = ['--workdir', str(tmp / 'dec'), '--encoder', str(tmp / 'vgg'), '--size', str(SIZE)]
  for fig, extra in (
    ('adain-grid', ['--images', f['c1'], f['c2'], '--style-images', f['s1'], f['s2']]),
    ('adain-alpha', ['--image', f['c1'], '--style-images', f['s1'], '--steps', '3']),
    ('adain-mix', ['--image', f['c1'], '--style-images', f['s1'], f['s2'], '--steps', '3']),
  ):
    out = str(tmp / f'{fig}.png')
    assert cli.main(['figure', fig, *common, *extra, '-o', out]) == 0
    assert image_io.load_rgb(out).shape[1] > 4 * SIZE
  model = AdainModel.load(str(tmp / 'dec'), str(tmp / 'vgg'))
  c, s1, s2 = (figures_adain._load([f[k]], SIZE, 'x')[0] for k in ('c1', 's1', 's2'))
  rows, _, _ = figures_adain.alpha_panels(model, c, s1, 3)
  feats = [model.style_features(s1, 0)]
  assert np.array_equal(rows[0][1], model.stylize(c, feats, alpha=0.0))
  assert np.array_equal(rows[0][-2], model.stylize(c, feats))
  rows, _, _ = figures_adain.mix_panels(model, c, [s1, s2], 3)
  assert np.array_equal(rows[0][1], model.stylize(c, feats))  # weights (1, 0): style 1 alone
  rows, _, row_labels = figures_adain.grid_panels(model, [c], [s1, s2], (['c'], ['s1', 's2']))
  assert len(rows) == 2 and len(rows[1]) == 3 and row_labels == ['', 'c']
