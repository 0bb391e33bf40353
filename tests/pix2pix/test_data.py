"""pix2pix data: one crop and flip per pair, aligned / two-folder sources and their errors."""

import numpy as np
import pytest
from PIL import Image

from jaxstyle.errors import UserError
from jaxstyle.pix2pix import data, presets, synthetic


def _cfg(**data_overrides):
  c = presets.pix2pix_base()
  c.data.update(dict(source='synthetic', image_size=32, load_size=40, synthetic_size=8))
  c.data.update(data_overrides)
  return c.data


def _coordinates(size: int) -> np.ndarray:
  """A pattern whose every pixel names its own position: R = x, G = y (scaled), B = 128. Any
  shift or mirror between two views of it shows as a difference in R or G."""
  ys, xs = np.mgrid[0:size, 0:size]
  return np.stack(
    [xs * 255 // (size - 1), ys * 255 // (size - 1), np.full_like(xs, 128)], -1
  ).astype(np.uint8)


class _PatternPairs:
  """A and B are the same coordinate pattern, B with inverted colours: aligned views stay inverse."""

  def __init__(self, n=16, size=40):
    self.a = _coordinates(size)

  def __len__(self):
    return 16

  def pair(self, i):
    return self.a, 255 - self.a

  def name(self, i):
    return f'{i}.png'


def test_both_halves_get_the_same_crop_and_flip():
  cfg = _cfg(image_size=32, load_size=40, direction='AtoB')
  src = _PatternPairs()
  crops, flips = set(), set()
  for step in range(12):
    batch = data.batch_at(cfg, src, step, 4)
    x = (batch['input'] + 1) / 2  # back to [0, 1]
    y = (batch['target'] + 1) / 2
    # B is 255 - A pixel for pixel: any misalignment breaks x + y == 1 (to uint8 rounding).
    np.testing.assert_allclose(x + y, 1.0, atol=1e-6)
    for img in x:
      crops.add((round(float(img[0, 0, 1]) * 39), round(float(img[0, :, 0].min()) * 39)))
      flips.add(bool(img[0, 0, 0] > img[0, -1, 0]))
  assert len(crops) > 4 and flips == {True, False}  # the test saw real crops and both flips


def test_the_stream_is_a_function_of_step_and_direction_swaps():
  cfg = _cfg(direction='AtoB')
  src = data.make_source(cfg, 'train')
  a, b = data.batch_at(cfg, src, 5, 4), data.batch_at(cfg, src, 5, 4)
  np.testing.assert_array_equal(a['input'], b['input'])
  # Two processes of 2 items each read the two halves of the same global batch.
  halves = [data.batch_at(cfg, src, 5, 4, p, 2)['input'] for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves), a['input'])
  cfg.direction = 'BtoA'
  c = data.batch_at(cfg, src, 5, 4)
  np.testing.assert_array_equal(c['input'], a['target'])
  # A is the label map: flat palette colours only (its crops are resized, so check one pixel).
  labels = np.rint((a['input'] + 1) * 127.5).astype(np.uint8)
  assert synthetic.decode_labels(labels).max() <= 3


def _save(path, img):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(img).save(path)


def test_aligned_source_splits_ab_images(tmp_path):
  a, b = _coordinates(16), np.full((16, 16, 3), 7, np.uint8)
  _save(tmp_path / 'train' / 'x.png', np.concatenate([a, b], axis=1))
  src = data.make_source(_cfg(source='aligned', root=str(tmp_path)), 'train')
  got_a, got_b = src.pair(0)
  np.testing.assert_array_equal(got_a, a)
  np.testing.assert_array_equal(got_b, b)
  assert len(src) == 1 and src.name(0) == 'x.png'


def test_folder_pairs_match_by_name_and_name_the_first_unmatched(tmp_path):
  for name in ('a', 'b', 'c'):
    _save(tmp_path / 'trainA' / f'{name}.png', _coordinates(8))
  for name in ('a', 'c'):
    _save(tmp_path / 'trainB' / f'{name}.jpg', np.zeros((8, 8, 3), np.uint8))
  cfg = _cfg(source='folders', root=str(tmp_path))
  with pytest.raises(data.PairingError, match=r'trainA/b\.png has no partner in .*trainB') as err:
    data.make_source(cfg, 'train')
  assert isinstance(err.value, UserError) and '\n' not in str(err.value)
  _save(tmp_path / 'trainB' / 'b.jpg', np.zeros((8, 8, 3), np.uint8))
  src = data.make_source(cfg, 'train')
  assert len(src) == 3 and src.name(1) == 'b.png'
  np.testing.assert_array_equal(src.pair(1)[0], _coordinates(8))


def test_missing_data_is_one_line(tmp_path):
  with pytest.raises(data.DatasetMissingError, match='not found'):
    data.make_source(_cfg(source='aligned', root=str(tmp_path)), 'train')
  # No root and nothing in the cache: says how to get it, and never downloads by itself.
  with pytest.raises(data.DatasetMissingError, match='data.download=True'):
    data.make_source(_cfg(source='aligned', root=''), 'train')
  with pytest.raises(data.DatasetMissingError, match='license'):
    data.download('cityscapes', str(tmp_path / 'c'))


def test_presets_refuse_bad_fields():
  c = presets.pix2pix_base()
  c.data.update(dict(image_size=100, name='nope', download=True))
  c.loss.gan_mode = 'hinge'
  with pytest.raises(UserError) as err:
    presets.validate(c)
  assert 'multiple of 256' in str(err.value) and 'gan_mode' in str(err.value)
  assert "data.name='nope'" in str(err.value)
  assert presets.dataset_config('maps').data.direction == 'AtoB'
  assert presets.dataset_config('facades').data.direction == 'BtoA'


def _archive(tmp_path, name, payload=b''):
  """A `NAME.tar.gz` holding NAME/train/x.png (an AB image), plus `payload` appended raw."""
  import io
  import tarfile

  buf = io.BytesIO()
  Image.fromarray(np.concatenate([_coordinates(8), _coordinates(8)], 1)).save(buf, 'PNG')
  path = tmp_path / f'{name}.tar.gz'
  with tarfile.open(path, 'w:gz') as tar:
    info = tarfile.TarInfo(f'{name}/train/x.png')
    info.size = len(buf.getvalue())
    tar.addfile(info, io.BytesIO(buf.getvalue()))
  path.write_bytes(path.read_bytes() + payload)
  return path


def test_download_on_request_extracts_and_renames_only_when_complete(tmp_path, monkeypatch):
  # A file:// URL stands in for the reference's server (the tests' offline mode allows only it).
  src = tmp_path / 'server'
  src.mkdir()
  _archive(src, 'facades')
  monkeypatch.setattr(presets, 'DATASET_URL', f'file://{src}/{{name}}.tar.gz')
  monkeypatch.setitem(presets.DATASETS, 'facades', ('BtoA', (1, 1 << 20), ''))
  root = tmp_path / 'cache' / 'facades'
  assert data.download('facades', str(root)) == str(root)
  assert len(data.AlignedSource(str(root / 'train'))) == 1
  assert [p.name for p in (tmp_path / 'cache').iterdir()] == ['facades']  # no temp left
  # Outside the size range (an error page, a cut-off body): refused, nothing kept.
  monkeypatch.setitem(presets.DATASETS, 'facades', ('BtoA', (1 << 20, 1 << 30), ''))
  with pytest.raises(UserError, match='outside'):
    data.download('facades', str(tmp_path / 'c2' / 'facades'))
  assert not list((tmp_path / 'c2').iterdir())
  # Not a tar.gz at all: refused, nothing kept.
  (src / 'facades.tar.gz').write_bytes(b'<html>not found</html>' * 10)
  monkeypatch.setitem(presets.DATASETS, 'facades', ('BtoA', (1, 1 << 20), ''))
  with pytest.raises(UserError, match='not a readable'):
    data.download('facades', str(tmp_path / 'c3' / 'facades'))
  assert not list((tmp_path / 'c3').iterdir())


def test_no_download_at_test_time(tmp_path):
  # The tests run with JAXSTYLE_OFFLINE=1: the reference's http URL is refused before any request.
  with pytest.raises(data.DatasetMissingError, match='disabled.*data.root') as err:
    data.download('maps', str(tmp_path / 'maps'))
  assert '\n' not in str(err.value) and not list(tmp_path.iterdir())
