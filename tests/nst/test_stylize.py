"""NST driver, image helpers, presets and the `jaxstyle stylize` CLI on tiny random VGG weights."""

import json
import os

import h5py
import jax
import numpy as np
import pytest
from PIL import Image
from tb_events import read_events

from jaxstyle import cli, config_lib
from jaxstyle.errors import ConfigError
from jaxstyle.models.vgg import LAYER_NAMES, expected_shapes
from jaxstyle.nst import image as nst_image
from jaxstyle.nst import presets, stylize

# Three convs keep every compile short; the full book layer set is exercised by the CLI test.
SHALLOW = ['--content-layers', 'block2_conv1', '--style-layers', 'block1_conv1,block2_conv1']


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  """A Keras-layout VGG19 h5 with random weights plus small content/style PNGs."""
  root = tmp_path_factory.mktemp('nst')
  rng = np.random.default_rng(1)
  params = {
    n: {
      'kernel': rng.normal(0, np.sqrt(2 / (9 * s['kernel'][2])), s['kernel']),
      'bias': np.zeros(s['bias'], np.float32),
    }
    for n, s in expected_shapes().items()
  }
  weights = str(root / 'vgg19_random.h5')
  with h5py.File(weights, 'w') as f:
    f.attrs['layer_names'] = np.array([n.encode() for n in LAYER_NAMES])
    for name in LAYER_NAMES:
      g = f.create_group(name)
      names = [f'{name}_W_1:0'.encode(), f'{name}_b_1:0'.encode()]
      g.attrs['weight_names'] = np.array(names)
      g[names[0].decode()] = params[name]['kernel'].astype(np.float32)
      g[names[1].decode()] = params[name]['bias']
  yy, xx = np.mgrid[0:48, 0:64]
  content = np.stack([60 + 2 * xx, 80 + 2 * yy, 120 + 0 * xx], -1).clip(0, 255).astype(np.uint8)
  rng = np.random.default_rng(0)
  style = rng.integers(40, 215, (40, 40, 3)).astype(np.uint8)
  Image.fromarray(content).save(root / 'content.png')
  Image.fromarray(style).save(root / 'style.png')
  Image.fromarray(style[:, ::-1]).save(root / 'style2.png')
  (root / 'broken.png').write_text('not an image')
  return {
    'root': root,
    'weights': weights,
    'content': str(root / 'content.png'),
    'style': str(root / 'style.png'),
    'style2': str(root / 'style2.png'),
    'broken': str(root / 'broken.png'),
  }


def _config(files, **loss):
  c = presets.jcjohnson(files['content'], files['style'])
  c.vgg.path = files['weights']
  c.image.max_side = 32
  c.loss.normalisation = 'book'
  c.loss.content_layers = ('block2_conv1',)
  c.loss.style_layers = ('block1_conv1', 'block2_conv1')
  c.loss.style_weight, c.loss.tv_weight = 100.0, 1.0
  c.optim.segments, c.optim.segment_iters = 2, 2
  c.progress = False
  c.snapshots = False
  for k, v in loss.items():
    config_lib.apply_overrides(c, {k: v})
  return c


def test_sizes():
  assert nst_image.output_size((300, 400, 3), height=400) == (400, 533)  # book: int(w*400/h)
  assert nst_image.output_size((300, 400, 3), max_side=512) == (384, 512)
  assert nst_image.style_size((100, 50, 3), (400, 533), 'match', 1.0) == (400, 533)
  assert nst_image.style_size((100, 50, 3), (400, 533), 'scale', 0.5) == (267, 134)
  assert nst_image.scale_sizes((400, 600), 3) == [(100, 150), (200, 300), (400, 600)]
  assert nst_image.scale_sizes((24, 32), 3) == [(16, 21), (24, 32)]


def test_style_scale_applies_in_match_mode():
  """--style-scale used to be ignored by the book's 'match' mode; 1.0 keeps the output size."""
  out = (400, 533)
  assert nst_image.style_size((100, 50, 3), out, 'match', 1.0) == out
  assert nst_image.style_size((100, 50, 3), out, 'match', 0.5) == (200, 266)
  assert nst_image.style_size((100, 50, 3), out, 'match', 2.0) == (800, 1066)
  assert nst_image.style_size((100, 50, 3), (20, 24), 'match', 0.1) == (16, 16)  # relu5_1 floor
  for mode in ('match', 'scale'):
    with pytest.raises(ConfigError, match='style_scale must be > 0'):
      nst_image.style_size((100, 50, 3), out, mode, 0.0)


def test_original_colors_keeps_content_chroma():
  rng = np.random.default_rng(0)
  content = rng.uniform(60, 190, (8, 8, 3))
  result = rng.uniform(60, 190, (8, 8, 3))
  out = nst_image.original_colors(result, content)
  np.testing.assert_allclose(nst_image.chroma(out), nst_image.chroma(content), atol=1e-6)
  lum = lambda im: im @ np.array([0.299, 0.587, 0.114])
  np.testing.assert_allclose(lum(out), lum(result), atol=1e-6)


def test_bad_image_paths_give_clear_errors(files):
  with pytest.raises(FileNotFoundError, match='missing.png.*does not exist'):
    nst_image.load_image(str(files['root'] / 'missing.png'))
  with pytest.raises(ValueError, match='broken.png.*convert it to PNG or JPEG'):
    nst_image.load_image(files['broken'])


@pytest.mark.parametrize('orientation, k', [(6, -1), (8, 1)])
def test_load_image_honours_exif_orientation(tmp_path, orientation, k):
  """A phone photo stored sideways with an EXIF Orientation tag is stylised upright."""
  yy, xx = np.mgrid[0:24, 0:40] // 8
  stored = np.stack([40 * yy + 20, 30 * xx + 10, 90 + 0 * xx], -1).astype(np.uint8)
  exif = Image.Exif()
  exif[0x0112] = orientation  # 6: rotate 90 degrees clockwise to display, 8: counter-clockwise
  path = str(tmp_path / 'phone.jpg')
  Image.fromarray(stored).save(path, exif=exif, quality=95)
  got = nst_image.load_image(path)
  upright = np.rot90(stored, k)  # numpy's k=1 turns counter-clockwise
  assert got.shape == upright.shape == (40, 24, 3)
  assert np.abs(got.astype(int) - upright).mean() < 3  # JPEG noise only


@pytest.fixture(scope='module')
def vgg(files):
  from jaxstyle.nst.weights import get_vgg19

  params, prep = get_vgg19('keras', path=files['weights'])
  return jax.device_put(params), prep


@pytest.fixture(scope='module')
def preserved(files, vgg):
  """Adam with original colours and a 2-scale schedule, metrics in a workdir."""
  c = _config(files)
  c.colors = 'preserve'
  c.scales = 2
  c.optim.name, c.optim.lr = 'adam', 2.0
  workdir = str(files['root'] / 'preserve')
  return stylize.stylize(c, workdir=workdir, vgg=vgg), workdir


def test_multiscale_and_original_colors(files, preserved):
  result, workdir = preserved
  (img,) = result['images']
  assert img.shape == (24, 32, 3)
  # Half size would be 12x16; the coarse level keeps the aspect with a 16 px minimum side.
  assert result['snapshots'][0][0].shape == (16, 21, 3)
  content = nst_image.resize(nst_image.load_image(files['content']), (24, 32), 'bilinear')
  assert np.abs(nst_image.chroma(img) - nst_image.chroma(content)).max() < 1.0
  saved = np.asarray(Image.open(result['outputs'][0]), np.float32)
  assert np.abs(nst_image.chroma(saved) - nst_image.chroma(content)).max() < 2.0
  records = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert len(records) == 4 and records[-1]['step'] == 8
  for r in records:
    assert {'nst/loss_content', 'nst/loss_style', 'nst/loss_tv', 'nst/sec_per_iter'} <= set(r)
    total = r['nst/loss_content'] + r['nst/loss_style'] + r['nst/loss_tv']
    assert r['nst/loss'] == pytest.approx(total, rel=1e-4)
  # TensorBoard gets the same scalars plus each segment's image, at its size.
  scalars, images = read_events(workdir)
  assert [s for s, _ in scalars['nst/loss_style']] == [2, 4, 6, 8]
  assert scalars['nst/loss_style'][-1][1] == pytest.approx(records[-1]['nst/loss_style'], rel=1e-6)
  assert images == {'nst/snapshot': [(2, (16, 21)), (4, (16, 21)), (6, (24, 32)), (8, (24, 32))]}


@pytest.fixture(scope='module')
def separate_runs(files, vgg):
  """The images of two separate runs, style weight 10 and 1000 (what a sweep must reproduce)."""
  return [
    stylize.stylize(
      _config(files, **{'loss.style_weight': w}),
      vgg=vgg,
      workdir=str(files['root'] / f'single{w:g}'),
    )['images'][0]
    for w in (10.0, 1000.0)
  ]


@pytest.mark.parametrize('strategy', ['sequential', 'concurrent'])
def test_sweep_strategies_equal_separate_runs(files, vgg, separate_runs, strategy):
  """Each strategy runs the members through one executable, in turn or in threads; the one that
  'auto' picks on this machine runs through optim.sweep='auto', so auto is exercised without a
  third sweep."""
  c = _config(files)
  c.loss.style_weights = (10.0, 1000.0)
  c.optim.sweep = 'auto' if stylize.sweep_plan(c)[0] == strategy else strategy
  workdir = str(files['root'] / strategy)
  sweep = stylize.stylize(c, workdir=workdir, vgg=vgg)
  assert sweep['sweep_strategy'] == stylize.sweep_plan(c)[0] == strategy
  assert [os.path.basename(p) for p in sweep['outputs']] == [
    'stylized_sw10.png',
    'stylized_sw1000.png',
  ]
  _, images = read_events(workdir)
  assert sorted(images) == ['nst/snapshot_sw10', 'nst/snapshot_sw1000']
  for got, want in zip(sweep['images'], separate_runs):  # the same executable: bit for bit
    np.testing.assert_array_equal(got, want)
  assert np.abs(sweep['images'][0] - sweep['images'][1]).max() > 1.0


@pytest.mark.slow  # the vmapped program compiles separately (~10 s)
def test_batched_sweep_matches_separate_runs(files, vgg, separate_runs):
  c = _config(files, **{'optim.sweep': 'batched'})
  c.loss.style_weights = (10.0, 1000.0)
  batch = stylize.stylize(c, vgg=vgg, workdir=str(files['root'] / 'batched'))
  assert batch['sweep_strategy'] == 'batched'
  # Error model: vmapped convs may sum in other orders (3 convs, fan-in ≤ 3·3·64: ≤ 3·sqrt(576)·u
  # ≈ 4e-6 of loss and gradient), which 4 L-BFGS iterations carry smoothly: far below a grey level.
  # Max pooling (the preset's) is the exception: a window whose top two inputs tie within rounding
  # sends its gradient to the other pixel, and those few pixels move by up to a step. So 99 % of
  # the pixels agree to one grey level; a member run with the other's weight differs almost
  # everywhere (asserted > 1 in test_sweep_strategies_equal_separate_runs).
  for got, want in zip(batch['images'], separate_runs):
    close = np.isclose(got, want, rtol=0, atol=1.0)
    assert close.mean() > 0.99, close.mean()


def test_sweep_plan_auto(monkeypatch):
  c = presets.nst_base('', '')
  monkeypatch.setattr(stylize, '_cores', lambda: 2)
  assert stylize.sweep_plan(c)[0] == 'concurrent'  # the test backend is the CPU
  monkeypatch.setattr(stylize, '_cores', lambda: 1)
  assert stylize.sweep_plan(c)[0] == 'sequential'
  c.optim.sweep = 'batched'
  assert stylize.sweep_plan(c) == ('batched', 'set by optim.sweep')


def test_random_vgg_source_and_sweep_flag(files, capsys):
  out = str(files['root'] / 'rnd' / 'out.png')
  rc = cli.main(
    [
      'stylize',
      files['content'],
      files['style'],
      '-o',
      out,
      '--weights-source',
      'random',
      '--max-side',
      '16',
      '--iterations',
      '1',
      '--segment-iters',
      '1',
      '--style-weights',
      '1,10',
      '--sweep',
      'sequential',
      '--no-progress',
      '--no-snapshots',
      *SHALLOW,
    ]
  )
  captured = capsys.readouterr()
  assert rc == 0, captured.err
  assert (
    'sweep of 2 style weights 1, 10: sequential (set by optim.sweep)' in captured.out + captured.err
  )
  assert os.path.exists(str(files['root'] / 'rnd' / 'out_sw10.png'))


def test_cli_end_to_end(files, capsys):
  out = str(files['root'] / 'cli' / 'out.png')
  rc = cli.main(
    [
      'stylize',
      files['content'],
      files['style'],
      files['style2'],
      '-o',
      out,
      '--config',
      'configs/nst_book.py:runlocal',
      '--vgg19',
      files['weights'],
      '--height',
      '32',
      '--iterations',
      '2',
      '--segment-iters',
      '2',
      '--no-progress',
      '--style-blend',
      '3,1',
      '--strip-iters',
      '0,1',
      *SHALLOW,
    ]
  )
  assert rc == 0, capsys.readouterr().err
  img = Image.open(out)
  assert img.size == (42, 32)  # book sizing: height 32, width int(64 * 32 / 48)
  for i in (0, 1):
    assert os.path.exists(str(files['root'] / 'cli' / f'out_at_iteration_{i}.png'))
  strip = Image.open(str(files['root'] / 'cli' / 'out_progress.png'))
  assert strip.size[0] > 3 * 42  # content | style | 2 snapshots
  captured = capsys.readouterr()
  assert 'segment 1' in captured.out + captured.err


def test_cli_bad_inputs(files, capsys):
  rc = cli.main(
    [
      'stylize',
      str(files['root'] / 'nope.jpg'),
      files['style'],
      '-o',
      str(files['root'] / 'x.png'),
      '--vgg19',
      files['weights'],
    ]
  )
  err = capsys.readouterr().err
  assert rc == 2 and 'nope.jpg' in err and 'does not exist' in err
  rc = cli.main(
    [
      'stylize',
      files['content'],
      files['style'],
      '-o',
      str(files['root'] / 'x.png'),
      '--vgg19',
      files['broken'],
    ]
  )
  err = capsys.readouterr().err
  assert rc == 2 and 'broken.png' in err


@pytest.mark.parametrize('name', ['nst_book', 'nst_quality', 'nst_jcjohnson'])
def test_presets_load_and_sweep(name):
  module = config_lib.load_config_module(f'configs/{name}.py')
  config = module.get_config('runlocal')
  assert set(presets.nst_base('', '').keys()) == set(config.keys())
  for overrides in module.get_sweep():
    c = module.get_config('runlocal')
    config_lib.apply_overrides(c, overrides)
  book = config_lib.load_config('configs/nst_book.py')
  assert (book.loss.content_weight, book.loss.style_weight, book.loss.tv_weight) == (1, 100, 20)
  assert book.image.height == 400 and book.optim.segments * book.optim.segment_iters == 200
