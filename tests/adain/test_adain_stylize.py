"""`jaxstyle stylize --model` for AdaIN (issue #27): runs and ported decoders, α, blends, masks,
colour preservation, style folders, any content size, and the one-line user errors.

Models have random weights (a run dir written with the checkpoint functions the trainer uses, and
a port-weights folder written by `checkpoint.save_params`); the properties checked hold for any
weights. Images are small (content 20x27, styles 24x24 at --style-size 0), so each content size
compiles once per module.
"""

import json

import jax
import numpy as np
import pytest
from PIL import Image

from jaxstyle import checkpoint, cli, image_io
from jaxstyle.adain import presets
from jaxstyle.adain.inference import AdainModel, coral
from jaxstyle.models import adain as A
from jaxstyle.ports import adain as adain_port

H, W = 20, 27  # odd width: padded to 32 and cropped back


def _image(path, h, w, seed):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w]
  base = np.stack([xx * 255 / w, yy * 255 / h, 128 + 0 * xx], -1) + rng.normal(0, 30, (h, w, 3))
  image_io.save(str(path), np.clip(base, 0, 255).astype(np.uint8))
  return str(path)


@pytest.fixture(scope='module')
def images(tmp_path_factory):
  """Content and styles, and a stand-in model folder (what dispatch reads): enough for the errors
  raised before a model loads."""
  tmp = tmp_path_factory.mktemp('adain_stylize')
  styles = tmp / 'styles'
  styles.mkdir()
  stub = tmp / 'stub'
  stub.mkdir()
  (stub / 'jaxstyle.json').write_text(json.dumps({'task': 'adain'}))
  return {
    'tmp': tmp,
    'content': _image(tmp / 'content.png', H, W, 0),
    'a': _image(styles / 'a.png', 24, 24, 1),
    'b': _image(styles / 'b.png', 24, 24, 2),
    'styles': str(styles),
    'stub': str(stub),
    'vgg': str(tmp / 'vgg'),
  }


@pytest.fixture(scope='module')
def files(images):
  f, tmp = dict(images), images['tmp']
  # A ported decoder + VGG (what port-weights writes; the ports themselves: test_adain_port.py).
  dec, vgg = A.init_decoder(jax.random.key(0)), A.random_encoder(1, 'normalised')
  meta = {'kind': 'adain-decoder', 'task': 'adain'}
  checkpoint.save_params(
    str(tmp / 'dec'), dec, {**meta, 'model_cfg': {'net': adain_port.DECODER_NET}}
  )
  checkpoint.save_params(str(tmp / 'vgg'), vgg, {'model_cfg': {'net': adain_port.VGG_NET}})
  # A training run: the trainer's config (random VGG) and a checkpoint of its state layout.
  run = tmp / 'run'
  run.mkdir()
  cfg = presets.adain_base()
  presets.runlocal(cfg)
  cfg.vgg.source = 'random'
  (run / 'config.json').write_text(json.dumps(cfg.to_dict()))
  mngr = checkpoint.make_manager(str(run))
  state = {'step': np.int32(7), 'params': {'decoder': A.init_decoder(jax.random.key(2))}}
  checkpoint.save(mngr, 7, state)
  checkpoint.close(mngr)
  f['dec'], f['vgg'], f['run'] = str(tmp / 'dec'), str(tmp / 'vgg'), str(run)
  return f


def stylize(files, *flags, model='dec'):
  """`jaxstyle stylize --model ...`'s exit code (argparse's errors exit: their code)."""
  extra = ['--encoder', files['vgg']] if model == 'dec' else []
  argv = ['stylize', '--model', files[model], *extra, '--style-size', '0', '--no-progress']
  try:
    return cli.main([*argv, *flags])
  except SystemExit as e:
    return e.code


def read(path):
  return np.asarray(Image.open(path)).astype(np.int32)


@pytest.mark.slow
def test_run_and_port_give_content_sized_images(files):
  for model in ('run', 'dec'):
    out = str(files['tmp'] / f'{model}.png')
    assert (
      stylize(files, files['content'], '--style-image', files['a'], '-o', out, model=model) == 0
    )
    assert read(out).shape == (H, W, 3)
  # The run's model is the checkpoint's decoder with the trainer's encoder.
  m = AdainModel.load(files['run'])
  assert m.step == 7 and m.kind == 'imagenet'


@pytest.mark.slow
def test_alpha_blends_and_masks(files):
  tmp = files['tmp']
  out = lambda name: str(tmp / f'{name}.png')
  c, a, b = files['content'], files['a'], files['b']
  # alpha 0 decodes the content's own features: the style does not matter.
  assert stylize(files, c, '--style-image', a, '--alpha', '0', '-o', out('a0')) == 0
  assert stylize(files, c, '--style-image', b, '--alpha', '0', '-o', out('b0')) == 0
  assert np.array_equal(read(out('a0')), read(out('b0')))
  # A blend with weights 1,0 is style a alone; 1,1 differs from both.
  assert stylize(files, c, '--style-image', a, '-o', out('a1')) == 0
  assert stylize(files, c, '--style-image', b, '-o', out('b1')) == 0
  assert (
    stylize(
      files, c, '--style-image', a, '--style-image', b, '--style-mix', '1,0', '-o', out('m10')
    )
    == 0
  )
  assert np.array_equal(read(out('m10')), read(out('a1')))
  assert stylize(files, c, '--style-image', a, '--style-image', b, '-o', out('m11')) == 0
  assert not np.array_equal(read(out('m11')), read(out('a1')))
  # An all-white mask gives every position style a (region statistics = whole-image statistics,
  # summed in another order: within one uint8 level).
  mask = str(tmp / 'white.png')
  image_io.save(mask, np.full((H, W, 3), 255, np.uint8))
  assert (
    stylize(files, c, '--style-image', a, '--style-image', b, '--mask', mask, '-o', out('mw')) == 0
  )
  assert np.abs(read(out('mw')) - read(out('a1'))).max() <= 1
  # Half and half: a different image from either style alone.
  half = np.zeros((H, W, 3), np.uint8)
  half[:, : W // 2] = 255
  image_io.save(mask, half)
  assert (
    stylize(files, c, '--style-image', a, '--style-image', b, '--mask', mask, '-o', out('mh')) == 0
  )
  assert not np.array_equal(read(out('mh')), read(out('a1')))
  assert not np.array_equal(read(out('mh')), read(out('b1')))


@pytest.mark.slow
def test_style_folder_and_preserve_color(files, capsys):
  folder = files['tmp'] / 'grid'
  assert (
    stylize(files, files['content'], '--style-image', files['styles'], '-o', str(folder) + '/') == 0
  )
  assert sorted(p.name for p in folder.iterdir()) == ['content_a.png', 'content_b.png']
  assert 'stylized 1 (x 2 styles)' in capsys.readouterr().out
  out = str(files['tmp'] / 'pc.png')
  assert (
    stylize(files, files['content'], '--style-image', files['a'], '--preserve-color', '-o', out)
    == 0
  )
  assert read(out).shape == (H, W, 3)


@pytest.mark.slow
def test_video_frames_are_stylised_one_by_one(files, capsys):
  """Each frame of the output is the stylised input frame (H.264 round trips: a few levels)."""
  from jaxstyle.fast_style import video

  frames = [image_io.load_rgb(files['content'])[:16, :24]] * 3
  clip = str(files['tmp'] / 'in.mp4')
  video.write_video(clip, iter(frames), 8, crf=0)
  out = str(files['tmp'] / 'out.mp4')
  assert stylize(files, '--video', clip, '--style-image', files['a'], '-o', out) == 0
  assert '3 frames of 24x16' in capsys.readouterr().out
  got = list(video.iter_frames(out))
  model = AdainModel.load(files['dec'], files['vgg'])
  want = model.stylize(
    next(video.iter_frames(clip)), [model.style_features(image_io.load_rgb(files['a']), 0)]
  )
  assert len(got) == 3 and np.abs(got[1].astype(int) - want).mean() < 8


def test_coral_gives_the_target_statistics():
  """The recoloured source has the target's channel means and, up to the +I, its covariance."""
  rng = np.random.default_rng(3)
  src, tgt = rng.uniform(0, 1, (30, 20, 3)), rng.gamma(2.0, 0.2, (25, 18, 3))
  out = coral(src, tgt).reshape(-1, 3)
  np.testing.assert_allclose(out.mean(0), tgt.reshape(-1, 3).mean(0), atol=1e-12)


@pytest.mark.parametrize(
  'flags, message',
  [
    ([], 'an AdaIN model needs a style: --style-image PATH'),
    (['--style-image', 'missing.png'], 'missing.png'),
    (['--style-image', '{a}', '--alpha', '1.5'], 'argument --alpha: must be in [0, 1]'),
    (['--style-image', '{a}', '--alpha', '-0.1'], 'argument --alpha: must be in [0, 1]'),
    (
      ['--style-image', '{a}', '--style-image', '{b}', '--mask', '{a}'],
      '--mask is 24x24 but the content image',
    ),
    (['--style-image', '{a}', '--mask', '{a}'], '--mask places several styles'),
    (['--style-image', '{a}', '--style-image', '{b}', '--style-mix', '1'], '--style-mix needs 2'),
    (['--style-image', '{a}', '--style', '1'], '--style: not a flag of this --model (adain)'),
  ],
)
def test_user_errors_are_one_line(images, capsys, flags, message):
  flags = [f.format(a=images['a'], b=images['b']) for f in flags]
  out = str(images['tmp'] / 'x.png')
  assert stylize(images, images['content'], *flags, '-o', out, model='stub') == 2
  err = capsys.readouterr().err
  assert message in err and err.count('\n') == 1, err


def test_ported_decoder_needs_its_encoder(images, capsys):
  argv = ['stylize', '--model', images['stub'], images['content'], '--style-image', images['a']]
  assert cli.main(argv) == 2
  assert 'is a ported decoder: pass --encoder PATH' in capsys.readouterr().err
  assert cli.main(['stylize', images['content'], images['a'], '--style-image', images['a']]) == 2
  assert '--style-image need --model RUN' in capsys.readouterr().err


def test_mask_levels_and_resizing():
  """Grey levels -> style indices (white first), kept by a nearest resize with --content-size."""
  from jaxstyle.adain import cli as adain_cli
  from jaxstyle.adain.inference import mask_labels

  grey = np.array([[255, 200, 128], [100, 30, 0]], np.float64)
  np.testing.assert_array_equal(mask_labels(grey, 2), [[0, 0, 0], [1, 1, 1]])
  np.testing.assert_array_equal(mask_labels(grey, 3), [[0, 0, 1], [1, 2, 2]])
  mask = np.zeros((8, 12))
  mask[:, :6] = 255  # left half: style 0
  labels = adain_cli._labels(mask, np.zeros((8, 12, 3)), (4, 6), 2, 'c.png')
  np.testing.assert_array_equal(labels, np.repeat([[0, 0, 0, 1, 1, 1]], 4, axis=0))


def test_tiny_images_are_refused():
  from jaxstyle.adain.inference import _check_side
  from jaxstyle.errors import UserError

  _check_side(np.zeros((16, 40, 3)), 'ok')
  with pytest.raises(UserError, match='at least 16 pixels'):
    _check_side(np.zeros((15, 40, 3)), 'the content image')
