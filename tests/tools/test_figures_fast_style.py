"""`jaxstyle figure style-grid / style-mix` on a real (tiny, 2-step) two-style fast-style run."""

import os

import numpy as np
import pytest
from PIL import Image

from jaxstyle import cli
from jaxstyle.errors import UserError
from jaxstyle.tools import figures_fast_style as ffs

pytestmark = pytest.mark.slow  # one real synthetic run (~45 s on a busy 2-core CPU)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 32  # content crops; the figure enlarges cells to ffs.MIN_CELL (128: factor 4)
PAD = 6  # image_io.grid's default gap between cells


def _tiny(config_name):
  from jaxstyle import config_lib

  c = config_lib.load_config(os.path.join(REPO, 'configs', config_name) + ':runlocal')
  c.vgg.source = 'random'
  c.total_steps, c.log_every, c.sample_every, c.ckpt.every_steps = 2, 1, 2, 2
  c.data.image_size, c.style_size, c.data.synthetic_size = 16, 16, 8
  c.per_device_batch, c.num_samples, c.progress = 1, 1, False
  c.model.filters, c.model.n_blocks = 8, 1
  # The shallowest VGG layer only: the loss net is cut there, so the train step compiles faster.
  c.loss.content_layers, c.loss.style_layers, c.loss.layer_weights = (
    ('block1_conv2',),
    ('block1_conv2',),
    (1.0,),
  )
  return c


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A trained two-style (stripes, dots) conditional run, plus two content images of odd sizes."""
  from jaxstyle.fast_style import presets, train

  c = _tiny('fast_style_multi.py')
  c.styles = ('synthetic:stripes', 'synthetic:dots')
  presets.validate(c)
  workdir = str(tmp_path_factory.mktemp('multi'))
  train.train(c, workdir)
  images = tmp_path_factory.mktemp('content')
  paths = []
  for name, (h, w) in {'ramp': (40, 56), 'wave': (48, 36)}.items():
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, 128 + 100 * np.sin((xx + yy) / 5)], -1)
    Image.fromarray(img.astype(np.uint8)).save(images / f'{name}.png')
    paths.append(str(images / f'{name}.png'))
  return {'workdir': workdir, 'images': paths}


@pytest.fixture(scope='module')
def model(run):
  from jaxstyle.fast_style.inference import FastStyleModel

  return FastStyleModel.from_workdir(run['workdir'])


@pytest.fixture(scope='module')
def contents(run):
  return ffs._contents(run['images'], SIZE)


def _figure(argv, capsys):
  assert cli.main(['figure', *argv, '--size', str(SIZE)]) == 0
  out = capsys.readouterr().out.strip().splitlines()[-1]
  return out, Image.open(out).size


def test_style_grid_panels(model, contents):
  rows, labels, row_labels = ffs.style_grid_panels(model, contents, ['ramp', 'wave'])
  assert [len(r) for r in rows] == [3, 3, 3]  # styles row + 2 contents; content + 2 styles
  assert labels == [['content', 'stripes', 'dots']] and row_labels == ['', 'ramp', 'wave']
  assert all(im.shape == (SIZE, SIZE, 3) and im.dtype == np.uint8 for r in rows for im in r)
  for r, content in enumerate(contents, start=1):
    np.testing.assert_array_equal(rows[r][0], content)
    for k in range(2):
      np.testing.assert_array_equal(
        rows[r][1 + k], model.stylize(content, model.style_weights(style=k))
      )
  assert not np.array_equal(rows[1][1], rows[1][2])  # the two styles differ
  assert rows[0][1].mean(axis=(0, 1)).tolist() != rows[0][2].mean(axis=(0, 1)).tolist()


def test_style_grid_cli_default_output_and_geometry(run, tmp_path, capsys):
  out, (w2, h2) = _figure(
    ['style-grid', '--workdir', run['workdir'], '--images', *run['images']], capsys
  )
  assert out == os.path.join(run['workdir'], 'figures', 'style_grid.png')
  _, (w1, h1) = _figure(
    [
      'style-grid',
      '--workdir',
      run['workdir'],
      '--images',
      run['images'][0],
      '-o',
      str(tmp_path / 'one.png'),
    ],
    capsys,
  )
  assert h2 - h1 == ffs.MIN_CELL + PAD  # one more content row of enlarged cells
  assert w2 >= w1 and w1 >= 3 * ffs.MIN_CELL + 4 * PAD  # three columns: content + 2 styles
  assert h1 >= 2 * ffs.MIN_CELL + 3 * PAD  # style row + one content row


def test_style_mix_panels_end_cells_are_the_pure_styles(model, contents):
  img = contents[0]
  rows, labels, _ = ffs.style_mix_panels(model, img, (0, 1), steps=5)
  (row,), (caps,) = rows, labels
  assert len(row) == 5 + 2
  thumbs = ffs.style_thumbnails(model, SIZE)
  np.testing.assert_array_equal(row[0], thumbs[0])
  np.testing.assert_array_equal(row[-1], thumbs[1])
  eye = np.eye(2, dtype=np.float32)
  np.testing.assert_array_equal(row[1], model.stylize(img, eye[0]))
  np.testing.assert_array_equal(row[-2], model.stylize(img, eye[1]))
  assert caps == [
    'stripes',
    'stripes 1 / dots 0',
    'stripes 0.75 / dots 0.25',
    'stripes 0.5 / dots 0.5',
    'stripes 0.25 / dots 0.75',
    'stripes 0 / dots 1',
    'dots',
  ]
  mid = model.stylize(img, np.array([0.5, 0.5], np.float32))
  np.testing.assert_array_equal(row[3], mid)
  # Reversed order by label: the strip runs from dots to stripes.
  assert ffs.pick_styles(model, 'dots,stripes') == (1, 0)
  for bad in ('0,0', '0', '0,2', '0,cubism'):
    with pytest.raises(UserError, match='--styles'):
      ffs.pick_styles(model, bad)


def test_style_mix_cli(run, tmp_path, capsys):
  out, (w, h) = _figure(
    [
      'style-mix',
      '--workdir',
      run['workdir'],
      '--image',
      run['images'][1],
      '--styles',
      '1,0',
      '--steps',
      '3',
    ],
    capsys,
  )
  assert out == os.path.join(run['workdir'], 'figures', 'style_mix.png')
  assert w >= 5 * ffs.MIN_CELL + 6 * PAD and ffs.MIN_CELL < h < 2 * ffs.MIN_CELL


def test_one_style_net_grid_and_no_mix(model, contents):
  """A one-style net (built here from its initial params): content | output; no blend strip."""
  import jax
  import ml_collections

  from jaxstyle.fast_style import step as fs_step
  from jaxstyle.fast_style.inference import FastStyleModel

  config = ml_collections.ConfigDict(model.config.to_dict())
  config.model.conditional, config.styles = False, ('synthetic:waves',)
  net = fs_step.make_net(config)
  params = net.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32), None)['params']
  single = FastStyleModel(config, params)
  assert single.n_styles == 1 and single.style_weights(style=0) is None
  rows, labels, _ = ffs.style_grid_panels(single, contents[:1])
  assert [len(r) for r in rows] == [2, 2] and labels == [['content', 'waves']]
  np.testing.assert_array_equal(rows[1][1], single.stylize(contents[0]))
  with pytest.raises(UserError, match=r'multi-style.*configs/fast_style_multi\.py'):
    ffs.style_mix_panels(single, contents[0])
  with pytest.raises(UserError, match='multi-style'):
    ffs.pick_styles(single, '0,1')


def _error(argv, capsys):
  try:
    rc = cli.main(['figure', *argv])
  except SystemExit as exit_:  # argparse's own errors (a bad flag value) exit from the parser
    rc = exit_.code
  assert rc == 2
  err = capsys.readouterr().err
  assert err.startswith('jaxstyle figure: error: ') and err.count('\n') == 1, err
  return err


def test_cli_errors_are_one_line(run, tmp_path, capsys):
  wd, img = run['workdir'], run['images'][0]
  missing = str(tmp_path / 'nope')
  assert missing in _error(['style-grid', '--workdir', missing, '--images', img], capsys)
  assert 'not a folder' in _error(['style-mix', '--workdir', missing, '--image', img], capsys)
  assert 'x.jpg' in _error(['style-grid', '--workdir', wd, '--images', img, 'x.jpg'], capsys)
  assert 'x.jpg' in _error(['style-mix', '--workdir', wd, '--image', 'x.jpg'], capsys)
  assert '--images' in _error(['style-grid', '--workdir', wd], capsys)
  assert '--workdir' in _error(['style-mix', '--image', img], capsys)
  assert '--steps' in _error(['style-mix', '--workdir', wd, '--image', img, '--steps', '1'], capsys)
  assert '--steps' in _error(['style-mix', '--workdir', wd, '--image', img, '--steps', 'a'], capsys)
  assert '--styles' in _error(
    ['style-mix', '--workdir', wd, '--image', img, '--styles', '0,5'], capsys
  )
  assert '--size' in _error(['style-grid', '--workdir', wd, '--images', img, '--size', '0'], capsys)
  assert '-o' in _error(['5-8', '--workdir', wd], capsys)  # the book figures still need -o
