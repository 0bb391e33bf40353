"""`translate`: generators on images of any size (pad / crop), and the `jaxstyle translate` CLI."""

import argparse
import logging

import numpy as np
import pytest
import tiny_run
from PIL import Image
from tiny_run import as_uint8, noise

from jaxstyle import checkpoint, cli, image_io
from jaxstyle.cyclegan import translate
from jaxstyle.errors import BadInputError, UserError


@pytest.fixture(scope='module')
def small_run():
  return tiny_run.small_run()


def test_pad_to_multiple_reflects_bottom_right():
  x = np.arange(3 * 5, dtype=np.float32).reshape(1, 3, 5, 1)
  padded, (h, w) = translate.pad_to_multiple(x, 4)
  assert (h, w) == (3, 5) and padded.shape == (1, 4, 8, 1)
  np.testing.assert_array_equal(padded[:, :3, :5], x)  # pixel (0, 0) stays put
  np.testing.assert_array_equal(padded[0, 3, :5, 0], x[0, 1, :, 0])  # reflect: row 3 mirrors row 1
  np.testing.assert_array_equal(padded[0, :3, 5, 0], x[0, :, 3, 0])


def test_translate_images_any_size(small_run):
  _, g, params = small_run
  imgs = [noise(s, i) for i, s in enumerate([(13, 14, 3), (16, 16, 3), (15, 16, 3)])]
  outs = translate.translate_images(g, params['G_A'], imgs, batch_size=2, multiple=4)
  assert [o.shape for o in outs] == [i.shape for i in imgs]
  for img, out in zip(imgs, outs):  # equals reflect-pad -> G -> crop, image by image
    h, w = img.shape[:2]
    x = np.pad(image_io.to_float(img), ((0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode='reflect')
    y = np.asarray(translate._apply_jit(g, params['G_A'], np.stack([x, x])))
    assert np.abs(out.astype(int) - as_uint8(y[0, :h, :w])).max() <= 1


def test_translate_cli(small_run, tmp_path):
  config, g, params = small_run
  run = tiny_run.write_run(tmp_path / 'run', config, params)
  inputs = tmp_path / 'in'
  (inputs / 'sub').mkdir(parents=True)
  Image.fromarray(noise((13, 14, 3), 1)).save(inputs / 'a.jpg')
  Image.fromarray(noise((15, 16), 2), 'L').save(inputs / 'sub' / 'b.png')
  exif = Image.Exif()
  exif[0x0112] = 6  # stored 14x13 (HxW), shown rotated 90 degrees clockwise: 13x14
  Image.fromarray(noise((14, 13, 3), 4)).save(inputs / 'rot.jpg', exif=exif)
  single = tmp_path / 'c.png'
  c = noise((16, 15, 3), 3)
  Image.fromarray(c).save(single)

  out = tmp_path / 'out'
  assert (
    cli.main(
      [
        'translate',
        '--workdir',
        str(run),
        '--direction',
        'BtoA',
        '--out',
        str(out),
        '--batch-size',
        '2',
        str(inputs),
        str(single),
      ]
    )
    == 0
  )
  assert Image.open(out / 'in' / 'a.png').size == (14, 13)
  assert Image.open(out / 'in' / 'sub' / 'b.png').size == (16, 15)
  assert Image.open(out / 'in' / 'rot.png').size == (14, 13)  # translated upright
  want = translate.translate_images(g, params['G_B'], [c], 2, 4)[0]
  np.testing.assert_array_equal(np.asarray(Image.open(out / 'c.png')), want)

  weights = tmp_path / 'weights'
  checkpoint.save_params(
    str(weights), params['G_A'], {'kind': 'junyanz-G', 'model_cfg': config['model']}
  )
  assert (
    cli.main(
      [
        'translate',
        '--weights',
        str(weights),
        '--out',
        str(tmp_path / 'o2'),
        '--batch-size',
        '2',
        str(single),
      ]
    )
    == 0
  )
  want = translate.translate_images(g, params['G_A'], [c], 2, 4)[0]
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'o2' / 'c.png')), want)
  assert (
    cli.main(
      [
        'translate',
        '--weights',
        str(weights),
        '--out',
        str(tmp_path / 'o3'),
        str(tmp_path / 'missing.png'),
      ]
    )
    == 2
  )


#### Unreadable inputs, batch sizes, argument and weight errors


def _args(*argv):
  parser = argparse.ArgumentParser()
  translate.add_arguments(parser)
  return parser.parse_args([str(a) for a in argv])


@pytest.fixture(scope='module')
def weights_dir(small_run, tmp_path_factory):
  config, _, params = small_run
  path = tmp_path_factory.mktemp('weights') / 'G'
  checkpoint.save_params(
    str(path), params['G_A'], {'kind': 'junyanz-G', 'model_cfg': config['model']}
  )
  return path


def _truncated_jpeg(path):
  """A JPEG whose header parses but whose pixel data stops early."""
  Image.fromarray(noise((13, 14, 3), 7)).save(path)
  data = path.read_bytes()
  path.write_bytes(data[: len(data) - 80])
  assert image_io.upright_size(str(path)) == (13, 14)
  with pytest.raises(ValueError, match='truncated'):
    image_io.load_rgb(str(path))


def _bad_folder(root, monkeypatch):
  """Two good 13x14 images, a truncated JPEG, text named .png, an empty file and a bomb."""
  root.mkdir()
  Image.fromarray(noise((13, 14, 3), 1)).save(root / 'good1.png')
  Image.fromarray(noise((13, 14, 3), 2)).save(root / 'good2.jpg')
  _truncated_jpeg(root / 'truncated.jpg')
  (root / 'text.png').write_text('not an image\n')
  (root / 'empty.png').write_bytes(b'')
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / 'bomb.png')
  # Pillow refuses images over 2x MAX_IMAGE_PIXELS at open (4096 > 2 * 1000 px).
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)
  return ['truncated.jpg', 'text.png', 'empty.png', 'bomb.png']


def test_translate_skips_unreadable_files(
  small_run, weights_dir, tmp_path, monkeypatch, caplog, capsys
):
  _, g, params = small_run
  bad = _bad_folder(tmp_path / 'in', monkeypatch)
  out = tmp_path / 'out'
  with caplog.at_level(logging.WARNING, logger=translate.__name__):
    assert translate.run(_args('--weights', weights_dir, '--out', out, tmp_path / 'in')) == 0
  assert sorted(p.name for p in out.iterdir()) == ['good1.png', 'good2.png']  # one folder: = --out
  assert 'translated 2, skipped 4' in capsys.readouterr().out
  warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warned) == 4 and all(any(name in w for w in warned) for name in bad)
  assert any('bomb.png' in w and 'decompression bomb' in w for w in warned)
  assert any('empty.png' in w and 'the file is empty' in w for w in warned)
  want = translate.translate_images(g, params['G_A'], [noise((13, 14, 3), 1)], None, 4)[0]
  np.testing.assert_array_equal(np.asarray(Image.open(out / 'good1.png')), want)


def test_nothing_translated_is_a_user_error(weights_dir, tmp_path, monkeypatch):
  bad = tmp_path / 'bad'
  bad.mkdir()
  (bad / 'text.png').write_text('nope')
  (bad / 'empty.jpg').write_bytes(b'')

  def no_model(*a, **k):
    raise AssertionError('loaded the model although no input has a readable header')

  monkeypatch.setattr(translate, 'load_generator', no_model)
  with pytest.raises(BadInputError, match='none of the 2 input file'):
    translate.run(_args('--weights', weights_dir, '--out', tmp_path / 'o', bad))
  monkeypatch.undo()
  only = tmp_path / 'only'
  only.mkdir()
  _truncated_jpeg(only / 't.jpg')
  _truncated_jpeg(only / 'u.jpg')  # two: a lone input fails before the model (test_input_matrix)
  with pytest.raises(BadInputError, match='nothing translated'):
    translate.run(_args('--weights', weights_dir, '--out', tmp_path / 'o', only))
  assert list((tmp_path / 'o').iterdir()) == []


def test_default_batch_follows_input_count(weights_dir, tmp_path, monkeypatch):
  shapes = []

  def spy(generator, params, x):  # records the batch shape; no compile needed
    shapes.append(x.shape)
    return np.zeros_like(x)

  monkeypatch.setattr(translate, '_apply_jit', spy)
  one = tmp_path / 'one.png'
  Image.fromarray(noise((13, 14, 3), 1)).save(one)
  translate.run(_args('--weights', weights_dir, '--out', tmp_path / 'o1', one))
  assert shapes == [(1, 16, 16, 3)]  # not padded with copies to 8

  folder = tmp_path / 'many'
  folder.mkdir()
  for i in range(9):  # nine of one padded size: two equal batches of 5, one compile
    Image.fromarray(noise((13, 14, 3), i)).save(folder / f'a{i}.png')
  Image.fromarray(noise((20, 16, 3), 9)).save(folder / 'b.png')
  shapes.clear()
  translate.run(_args('--weights', weights_dir, '--out', tmp_path / 'o2', folder))
  assert sorted(shapes) == [(1, 20, 16, 3), (5, 16, 16, 3), (5, 16, 16, 3)]
  shapes.clear()
  translate.run(
    _args('--weights', weights_dir, '--out', tmp_path / 'o3', '--batch-size', 4, folder)
  )
  assert sorted(shapes) == [(4, 16, 16, 3)] * 3 + [(4, 20, 16, 3)]
  assert [translate.auto_batch(n) for n in (1, 3, 8, 9, 16, 17)] == [1, 3, 8, 5, 8, 6]


def test_argument_errors_before_the_model_loads(weights_dir, tmp_path, monkeypatch):
  img = tmp_path / 'a.png'
  Image.fromarray(noise((13, 14, 3), 1)).save(img)
  monkeypatch.setattr(translate, 'load_generator', lambda *a: pytest.fail('model loaded'))
  with pytest.raises(UserError, match='missing.png.*does not exist'):
    translate.run(
      _args('--weights', weights_dir, '--out', tmp_path / 'o', tmp_path / 'missing.png')
    )
  blocker = tmp_path / 'file'
  blocker.write_text('x')
  with pytest.raises(UserError, match='--out directory'):
    translate.run(_args('--weights', weights_dir, '--out', blocker, img))
  with pytest.raises(UserError, match='cannot create'):
    translate.run(_args('--weights', weights_dir, '--out', blocker / 'sub', img))
  for bad in ('0', '-2', 'x'):
    with pytest.raises(SystemExit):
      _args('--weights', weights_dir, '--out', tmp_path / 'o', '--batch-size', bad, img)


def test_bad_weights_are_one_user_error(small_run, tmp_path):
  config, _, params = small_run
  wrong = tmp_path / 'wrong'  # params of gen_filters=4, n_blocks=1 under a config saying 8, 2
  checkpoint.save_params(
    str(wrong),
    params['G_A'],
    {'kind': 'junyanz-G', 'model_cfg': dict(config['model'], gen_filters=8, n_blocks=2)},
  )
  with pytest.raises(BadInputError, match='do not match their model config') as e:
    translate.load_generator(weights=str(wrong))
  assert str(wrong) in str(e.value) and 'block_1' in str(e.value)
  garbage = tmp_path / 'g.pth'
  garbage.write_text('not a checkpoint')
  with pytest.raises(UserError, match='g.pth'):
    translate.load_generator(weights=str(garbage))
  unsafe = tmp_path / 'evil.pth'  # a legacy pickle naming os.system: refused, never called
  unsafe.write_bytes(b'\x80\x02cposix\nsystem\nq\x00.')
  with pytest.raises(UserError, match='posix.system'):
    translate.load_generator(weights=str(unsafe))
  with pytest.raises(UserError, match='does not exist'):
    translate.load_generator(weights=str(tmp_path / 'nope'))
  incomplete = tmp_path / 'incomplete'
  incomplete.mkdir()
  with pytest.raises(UserError, match='incomplete'):
    translate.load_generator(weights=str(incomplete))
