"""Input pipeline: determinism, host sharding, resume, order, augmentation, folders and TFDS."""

import logging

import numpy as np
import pytest
from PIL import Image

from jaxstyle.cyclegan import data, presets


def data_config(**overrides):
  """The synthetic source with the reference epoch order (max), as these tests were written for."""
  return presets.data_config(
    **{'source': 'synthetic', 'epoch_rule': 'max', 'image_size': 32, **overrides}
  )


class ArraySource:
  """A tiny in-memory source whose images are easy to recognise."""

  def __init__(self, images):
    self.images = [np.asarray(x, np.uint8) for x in images]

  def __len__(self):
    return len(self.images)

  def image(self, i):
    return self.images[i]


def _ramp(h, w, offset=0):
  """An asymmetric image: a flip or a crop offset changes it."""
  y, x = np.mgrid[:h, :w]
  return np.stack([(x * 7 + offset) % 256, (y * 5) % 256, (x * y + offset) % 256], -1).astype(
    np.uint8
  )


@pytest.fixture(scope='module')
def synth():
  cfg = data_config(image_size=16, synthetic_size=40, seed=3)
  return cfg, data.make_sources(cfg, 'train')


def test_synthetic_sources(synth):
  cfg, src = synth
  assert set(src) == {'A', 'B'} and len(src['A']) == len(src['B']) == 40
  img, mask = src['A'].image(5), src['B'].mask(7)
  assert img.shape == (16, 16, 3) and img.dtype == np.uint8
  assert mask.shape == (16, 16) and mask.dtype == bool and mask.any()


def test_batch_at_is_pure_and_normalised(synth):
  cfg, src = synth
  b1 = data.batch_at(cfg, src, 11, 6)
  b2 = data.batch_at(cfg, src, 11, 6)
  for d in 'AB':
    assert b1[d].shape == (6, 16, 16, 3) and b1[d].dtype == np.float32
    np.testing.assert_array_equal(b1[d], b2[d])
    assert -1.0 <= b1[d].min() and b1[d].max() <= 1.0
  b3 = data.batch_at(cfg, src, 12, 6)
  assert not np.array_equal(b1['A'], b3['A'])


@pytest.mark.parametrize('count', [2, 3])
def test_host_shards_concatenate_to_global_batch(synth, count):
  cfg, src = synth
  full = data.batch_at(cfg, src, 4, 6)
  parts = [
    data.batch_at(cfg, src, 4, 6, process_index=p, process_count=count) for p in range(count)
  ]
  for d in 'AB':
    assert parts[0][d].shape[0] == 6 // count
    np.testing.assert_array_equal(np.concatenate([p[d] for p in parts]), full[d])
  with pytest.raises(ValueError, match='divisible'):
    data.batch_at(cfg, src, 4, 6, process_index=0, process_count=4)


def test_train_stream_resumes_exactly(synth):
  cfg, src = synth
  with data.TrainStream(cfg, src, start_step=7, global_batch=4, prefetch=3) as stream:
    for k in range(7, 11):
      assert stream.step == k
      got, want = next(stream), data.batch_at(cfg, src, k, 4)
      for d in 'AB':
        np.testing.assert_array_equal(got[d], want[d])
  with pytest.raises(StopIteration):
    next(stream)
  # Synchronous mode and a host shard behave the same.
  stream = data.TrainStream(cfg, src, 3, 4, process_index=1, process_count=2, prefetch=0)
  np.testing.assert_array_equal(next(stream)['B'], data.batch_at(cfg, src, 3, 4, 1, 2)['B'])
  stream.close()


def test_train_stream_surfaces_worker_errors(synth):
  cfg, _ = synth

  class Broken(ArraySource):
    def image(self, i):
      raise OSError('disk on fire')

  src = {'A': Broken([_ramp(16, 16)]), 'B': Broken([_ramp(16, 16)])}
  with data.TrainStream(cfg, src, 0, 2) as stream, pytest.raises(OSError, match='disk on fire'):
    next(stream)


def test_epoch_order_reference_and_book():
  src = {'A': ArraySource([_ramp(8, 8)] * 5), 'B': ArraySource([_ramp(8, 8)] * 3)}
  cfg = data_config(image_size=8, seed=1)
  assert data.steps_per_epoch(cfg, src, 1) == 5 and data.steps_per_epoch(cfg, src, 2) == 2
  orders = [
    [data.item_indices(cfg, src, s, 1, range(1))[0][0] for s in range(e * 5, e * 5 + 5)]
    for e in range(4)
  ]
  for order in orders:  # each epoch visits every A exactly once
    assert sorted(order) == list(range(5))
  assert len({tuple(o) for o in orders}) > 1  # ... in a fresh order
  b = [data.item_indices(cfg, src, s, 1, range(1))[1][0] for s in range(60)]
  assert set(b) == {0, 1, 2}

  cfg.epoch_rule = 'min'
  assert data.steps_per_epoch(cfg, src, 1) == 3
  first = [data.item_indices(cfg, src, s, 1, range(1))[0][0] for s in range(3)]
  assert len(set(first)) == 3  # a random subset of A without repeats

  cfg.epoch_rule, cfg.serial_batches = 'max', True
  pairs = [data.item_indices(cfg, src, s, 1, range(1)) for s in range(7)]
  assert [a[0] for a, _ in pairs] == [0, 1, 2, 3, 4, 0, 1]  # index % size, within the epoch
  assert [b[0] for _, b in pairs] == [0, 1, 2, 0, 1, 0, 1]


def test_reference_augmentation_is_a_crop_of_the_bicubic_resize():
  src = {'A': ArraySource([_ramp(20, 24)]), 'B': ArraySource([_ramp(20, 24, 50)])}
  cfg = data_config(image_size=16, load_size=18, augment='reference', seed=2)
  big = {
    d: np.asarray(Image.fromarray(src[d].image(0)).resize((18, 18), Image.BICUBIC)) for d in 'AB'
  }
  seen_offsets, flips = set(), []
  for step in range(12):
    batch = data.batch_at(cfg, src, step, 2)
    for d in 'AB':
      for view in np.rint((batch[d] + 1) * 127.5).astype(np.uint8):
        hits = [
          (oy, ox, f)
          for oy in range(3)
          for ox in range(3)
          for f in (0, 1)
          if np.array_equal(view, (big[d][oy : oy + 16, ox : ox + 16])[:, :: -1 if f else 1])
        ]
        assert len(hits) == 1
        seen_offsets.add(hits[0][:2])
        flips.append(hits[0][2])
  assert len(seen_offsets) > 3 and 0.2 < np.mean(flips) < 0.8


def _flips(cfg, steps=20):
  """Per item, (A flipped, B flipped) for a source whose A and B are the same ramp."""
  img = _ramp(8, 8)
  src = {'A': ArraySource([img]), 'B': ArraySource([img])}
  out = []
  for step in range(steps):
    batch = data.batch_at(cfg, src, step, 2)
    for j in range(2):
      out.append(tuple(not np.array_equal(np.rint((batch[d][j] + 1) * 127.5), img) for d in 'AB'))
  return out


def test_book_flip_coins_independent_unless_exact():
  cfg = data_config(image_size=8, augment='book')
  flips = _flips(cfg)
  assert any(a != b for a, b in flips) and any(a for a, _ in flips)
  cfg.book_exact_flip = True
  flips = _flips(cfg)
  assert all(a == b for a, b in flips) and any(a for a, _ in flips) and not all(a for a, _ in flips)


def test_book_resize_is_bilinear():
  img = _ramp(24, 20)
  src = {'A': ArraySource([img]), 'B': ArraySource([img])}
  cfg = data_config(image_size=16, augment='book')
  want = np.asarray(Image.fromarray(img).resize((16, 16), Image.BILINEAR))
  got = np.rint((data.batch_at(cfg, src, 0, 1)['A'][0] + 1) * 127.5).astype(np.uint8)
  assert np.array_equal(got, want) or np.array_equal(got, want[:, ::-1])
  cfg.augment = 'none'
  got = np.rint((data.batch_at(cfg, src, 0, 1)['A'][0] + 1) * 127.5).astype(np.uint8)
  np.testing.assert_array_equal(
    got, np.asarray(Image.fromarray(img).resize((16, 16), Image.BICUBIC))
  )


#### Folders


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  root = tmp_path_factory.mktemp('folder')
  a = root / 'trainA'
  (a / 'sub').mkdir(parents=True)
  (root / 'trainB').mkdir()
  Image.fromarray(np.full((4, 6), 77, np.uint8), 'L').save(a / 'gray.png')
  rgba = np.zeros((4, 6, 4), np.uint8)
  rgba[..., 0], rgba[..., 3] = 200, 10
  Image.fromarray(rgba, 'RGBA').save(a / 'rgba.png')
  pal = Image.new('P', (6, 4))
  pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
  pal.putpixel((1, 1), 1)
  pal.save(a / 'pal.png')
  Image.fromarray(np.array([[0, 65535], [32896, 257]], np.uint16)).save(a / 'sub' / 'deep16.png')
  # A 2x4 (HxW) JPEG whose EXIF says "rotate 90 degrees clockwise to display".
  left = np.zeros((16, 32, 3), np.uint8)
  left[:, :16] = (255, 0, 0)
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.fromarray(left).save(a / 'rotated.jpg', exif=exif, quality=95)
  (a / 'corrupt.png').write_bytes(b'this is not an image')
  (a / 'notes.txt').write_text('ignored: not an image extension')
  (root / 'trainB' / 'truncated.png').write_bytes(_png_bytes(_ramp(64, 64))[:200])
  Image.fromarray(_ramp(8, 8)).save(root / 'trainB' / 'z_good.png')
  return root


def _png_bytes(img):
  import io

  buf = io.BytesIO()
  Image.fromarray(img).save(buf, 'PNG')
  return buf.getvalue()


def test_folder_conversions_and_skip(folder, caplog):
  root = folder
  cfg = data_config(source='folder', root=str(root), image_size=8)
  with caplog.at_level(logging.WARNING):
    src = data.make_sources(cfg, 'train')
  assert 'corrupt.png' in caplog.text
  names = [p.split('trainA/')[1] for p in src['A'].paths]
  assert names == ['gray.png', 'pal.png', 'rgba.png', 'rotated.jpg', 'sub/deep16.png']
  imgs = {n: src['A'].image(i) for i, n in enumerate(names)}
  for img in imgs.values():
    assert img.ndim == 3 and img.shape[-1] == 3 and img.dtype == np.uint8
  assert (imgs['gray.png'] == 77).all()
  assert (imgs['rgba.png'] == (200, 0, 0)).all()  # alpha dropped, as the reference does
  assert tuple(imgs['pal.png'][1, 1]) == (10, 20, 30) and tuple(imgs['pal.png'][0, 0]) == (0, 0, 0)
  np.testing.assert_array_equal(imgs['sub/deep16.png'][..., 0], [[0, 255], [128, 1]])
  rot = imgs['rotated.jpg']
  assert rot.shape == (32, 16, 3)  # transposed by the EXIF orientation
  assert rot[:16, :, 0].mean() > 200 and rot[16:, :, 0].mean() < 50  # red half is now on top
  # The truncated PNG passes the header check and fails at decode: skipped for the next file.
  with caplog.at_level(logging.WARNING):
    img_b = src['B'].image(0)
  assert 'truncated.png' in caplog.text
  np.testing.assert_array_equal(img_b, _ramp(8, 8))
  assert data.batch_at(cfg, src, 0, 2)['A'].shape == (2, 8, 8, 3)


def test_folder_bad_file_is_fatal_when_asked(folder):
  root = folder
  with pytest.raises(ValueError, match=r'trainA/corrupt\.png'):
    data.FolderSource(str(root / 'trainA'), on_bad_file='error')
  src = data.FolderSource(str(root / 'trainB'), on_bad_file='error')
  with pytest.raises(ValueError, match=r'trainB/truncated\.png'):
    src.image(0)
  with pytest.raises(FileNotFoundError):
    data.make_sources(data_config(source='folder', root=str(root)), 'test')


#### TFDS


def test_tfds_source_with_mock_data():
  tfds = pytest.importorskip('tensorflow_datasets')
  cfg = data_config(source='tfds', name='horse2zebra', image_size=16)
  with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
    src = data.make_sources(cfg, 'train')
    assert len(src['A']) == len(src['B']) == 4
    img = src['B'].image(2)
    assert img.ndim == 3 and img.shape[-1] == 3 and img.dtype == np.uint8
    batch = data.batch_at(cfg, src, 5, 4)
  assert batch['A'].shape == (4, 16, 16, 3) and np.isfinite(batch['A']).all()


def test_tfds_unprepared_dataset_says_how_to_prepare(tmp_path):
  with pytest.raises(
    RuntimeError, match='tfds build cycle_gan/apple2orange --file_format=array_record'
  ):
    data.TfdsSource('apple2orange', 'trainA', str(tmp_path), download=False)
