"""image_io: decoding (EXIF, modes, 16-bit), errors, range round trips, saving, the grid layout."""

import numpy as np
import pytest
from PIL import Image

from jaxstyle import image_io

#### Decoding


def _blocks(h, w):
  """A JPEG-friendly image: 8x8 blocks of distinct flat colours, so every rotation looks different."""
  yy, xx = np.mgrid[0:h, 0:w] // 8
  return np.stack([40 * yy + 20, 30 * xx + 10, 90 + 0 * xx], -1).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize('orientation, k', [(6, -1), (8, 1), (3, 2)])
def test_exif_orientation_gives_the_upright_image(tmp_path, orientation, k):
  stored = _blocks(24, 40)
  exif = Image.Exif()
  exif[0x0112] = orientation  # 6: rotate 90 clockwise to display, 8: counter-clockwise, 3: 180
  path = tmp_path / f'o{orientation}.jpg'
  Image.fromarray(stored).save(path, exif=exif, quality=95)
  got = image_io.load_rgb(str(path))
  upright = np.rot90(stored, k)  # numpy: k=1 is counter-clockwise
  assert got.shape == upright.shape and got.dtype == np.uint8
  assert np.abs(got.astype(int) - upright).mean() < 3  # JPEG noise only
  if k != 2:
    assert got.shape != stored.shape


def test_modes_become_rgb(tmp_path):
  Image.fromarray(np.full((4, 6), 77, np.uint8), 'L').save(tmp_path / 'gray.png')
  rgba = np.zeros((4, 6, 4), np.uint8)
  rgba[..., 0], rgba[..., 1], rgba[..., 3] = 200, 30, 10
  Image.fromarray(rgba, 'RGBA').save(tmp_path / 'rgba.png')
  la = np.stack([np.full((4, 6), 90, np.uint8), np.zeros((4, 6), np.uint8)], -1)
  Image.fromarray(la, 'LA').save(tmp_path / 'la.png')
  pal = Image.new('P', (6, 4))
  pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
  pal.putpixel((1, 1), 1)
  pal.save(tmp_path / 'pal.png')
  imgs = {p.name: image_io.load_rgb(str(p)) for p in tmp_path.iterdir()}
  for img in imgs.values():
    assert img.shape == (4, 6, 3) and img.dtype == np.uint8
  assert (imgs['gray.png'] == 77).all()
  assert (imgs['rgba.png'] == (200, 30, 0)).all()  # alpha dropped, not composited on white
  assert (imgs['la.png'] == 90).all()
  assert tuple(imgs['pal.png'][1, 1]) == (10, 20, 30) and tuple(imgs['pal.png'][0, 0]) == (0, 0, 0)


def test_sixteen_bit_and_int_modes_scale_to_8_bit(tmp_path):
  Image.fromarray(np.array([[0, 65535], [32896, 257]], np.uint16)).save(tmp_path / 'd16.png')
  np.testing.assert_array_equal(
    image_io.load_rgb(str(tmp_path / 'd16.png'))[..., 1], [[0, 255], [128, 1]]
  )  # v * 255 / 65535, rounded
  # 32-bit 'I' holding 8-bit values is taken as is; larger values are 16-bit data.
  Image.fromarray(np.array([[0, 200]], np.int32), 'I').save(tmp_path / 'small.tif')
  np.testing.assert_array_equal(image_io.load_rgb(str(tmp_path / 'small.tif'))[0, :, 2], [0, 200])
  Image.fromarray(np.array([[0, 65535]], np.int32), 'I').save(tmp_path / 'big.tif')
  np.testing.assert_array_equal(image_io.load_rgb(str(tmp_path / 'big.tif'))[0, :, 0], [0, 255])


def test_unreadable_files_name_the_path(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'missing\.png.*does not exist; try this'):
    image_io.load_rgb(str(tmp_path / 'missing.png'), hint='try this')
  (tmp_path / 'junk.png').write_text('not an image')
  with pytest.raises(ValueError, match=r'junk\.png.*convert it to PNG or JPEG'):
    image_io.load_rgb(str(tmp_path / 'junk.png'))
  good = tmp_path / 'good.png'
  Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
  (tmp_path / 'cut.png').write_bytes(good.read_bytes()[:300])
  with pytest.raises(ValueError, match=r'cut\.png'):
    image_io.load_rgb(str(tmp_path / 'cut.png'))


def test_as_rgb_shapes():
  gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
  for x in (gray, gray[..., None]):
    out = image_io.as_rgb(x)
    assert out.shape == (2, 3, 3) and (out == gray[..., None]).all()
  rgba = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
  np.testing.assert_array_equal(image_io.as_rgb(rgba), rgba[..., :3])


#### Ranges and saving


def test_float_uint8_round_trip_and_book_mapping():
  every = np.arange(256, dtype=np.uint8)
  f = image_io.to_float(every)
  assert f.dtype == np.float32 and f[0] == -1.0 and f[-1] == 1.0
  np.testing.assert_array_equal(image_io.to_uint8(f), every)
  x = np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0], np.float32)
  expected = np.round(np.clip(x * 0.5 + 0.5, 0, 1) * 255).astype(np.uint8)  # the book's display
  np.testing.assert_array_equal(image_io.to_uint8(x), expected)
  assert expected.tolist() == [0, 0, 128, 191, 255, 255]


def test_clip_uint8():
  x = np.array([-5.0, 0.4, 0.6, 127.5, 254.6, 300.0], np.float32)
  assert image_io.clip_uint8(x).tolist() == [0, 0, 1, 128, 255, 255]  # 127.5: half to even
  u = np.array([3, 250], np.uint8)
  assert image_io.clip_uint8(u) is u


def test_save_round_trips_and_creates_folders(tmp_path):
  img = np.random.default_rng(1).integers(0, 256, (5, 7, 3), np.uint8)
  path = image_io.save(str(tmp_path / 'a' / 'b' / 'x.png'), img)
  np.testing.assert_array_equal(np.asarray(Image.open(path)), img)
  image_io.save(str(tmp_path / 'f.png'), img.astype(np.float32) + 0.3)  # float 0-255: rounded
  np.testing.assert_array_equal(image_io.load_rgb(str(tmp_path / 'f.png')), img)
  image_io.save(str(tmp_path / 'g.png'), img[..., :1])
  assert Image.open(tmp_path / 'g.png').mode == 'L'


def test_scale_to_height_keeps_aspect():
  img = np.zeros((10, 25, 3), np.uint8)
  assert image_io.scale_to_height(img, 20).shape == (20, 50, 3)
  assert image_io.scale_to_height(img, 4).shape == (4, 10, 3)
  np.testing.assert_array_equal(image_io.scale_to_height(img, 10), img)


#### The grid


def _solid(colour, h, w):
  return np.broadcast_to(np.asarray(colour, np.uint8), (h, w, 3)).copy()


def _box(img, colour):
  ys, xs = np.nonzero(np.all(img == colour, axis=-1))
  assert ys.size, f'{colour} not found'
  return ys.min(), xs.min(), ys.max() + 1, xs.max() + 1


RED, GREEN, BLUE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)


def test_grid_without_labels_is_a_padded_table():
  pad = 5
  rows = [[_solid(RED, 10, 20), _solid(GREEN, 16, 8)], [_solid(BLUE, 6, 6)]]  # ragged
  g = image_io.grid(rows, pad=pad)
  # Column widths 20 and 8, row heights 16 and 6; pad around and between everything.
  assert g.shape == (pad + 16 + pad + 6 + pad, pad + 20 + pad + 8 + pad, 3)
  assert _box(g, RED) == (pad + 3, pad, pad + 13, pad + 20)  # centred in its 16-px row
  assert _box(g, GREEN) == (pad, 2 * pad + 20, pad + 16, 2 * pad + 28)
  assert _box(g, BLUE) == (2 * pad + 16, pad + 7, 2 * pad + 22, pad + 13)  # centred in 20 px
  background = np.ones(g.shape[:2], bool)
  for c in (RED, GREEN, BLUE):
    y0, x0, y1, x1 = _box(g, c)
    background[y0:y1, x0:x1] = False
  assert (g[background] == 255).all()  # nothing drawn but the cells


def test_grid_labels_title_and_scaling():
  rows = [[_solid(RED, 8, 8), _solid(GREEN, 8, 8)], [_solid(BLUE, 8, 8), _solid(GREY, 8, 8)]]
  plain = image_io.grid(rows, min_cell=32, pad=4)
  assert (_box(plain, RED)[2] - _box(plain, RED)[0]) == 32  # 8 px x 4, nearest neighbour
  g = image_io.grid(
    rows,
    labels=[['a very long caption', 'b']],
    row_labels=['row 1', 'row 2'],
    title='Title',
    min_cell=32,
    pad=4,
  )
  red, green, blue = _box(g, RED), _box(g, GREEN), _box(g, BLUE)
  # Captions only on the first row: a band above it, none between the rows.
  assert blue[0] == red[2] + 4
  assert (g[: red[0], red[1] : red[3]].min(-1) < 100).any()
  # The long caption widens its column (no overlap with the next caption): cells stay centred.
  assert green[1] - red[3] > 2 * 4 + 32 and red[3] - red[1] == 32
  # Row labels left of each row, the title in the top band.
  for y0, x0, y1, _ in (red, blue):
    assert (g[y0:y1, :x0].min(-1) < 100).sum() > 5
  assert (g[: 4 + 12].min(-1) < 100).any()
  assert g.shape[0] > plain.shape[0] and g.shape[1] > plain.shape[1]


def test_grid_rejects_float_images():
  with pytest.raises(ValueError, match=r'\[0\]\[1\].*uint8'):
    image_io.grid([[_solid(RED, 4, 4), np.zeros((4, 4, 3), np.float32)]])
  with pytest.raises(ValueError, match='at least one'):
    image_io.grid([[]])


@pytest.mark.parametrize('orientation', [1, 3, 6, 8])
def test_upright_size_is_the_decoded_size_without_decoding(tmp_path, orientation):
  path = tmp_path / 'o.jpg'
  exif = Image.Exif()
  exif[0x0112] = orientation
  Image.fromarray(np.zeros((6, 10, 3), np.uint8)).save(path, exif=exif)
  assert image_io.upright_size(str(path)) == image_io.load_rgb(str(path)).shape[:2]


def test_upright_size_and_load_rgb_explain_empty_and_bomb_files(tmp_path, monkeypatch):
  (tmp_path / 'empty.png').write_bytes(b'')
  for read in (image_io.upright_size, image_io.load_rgb):
    with pytest.raises(ValueError, match=r'empty\.png.*the file is empty'):
      read(str(tmp_path / 'empty.png'))
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / 'big.png')
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)  # refused at open: 4096 > 2 * 1000 px
  with pytest.raises(ValueError, match=r'big\.png.*decompression.bomb'):
    image_io.upright_size(str(tmp_path / 'big.png'))
  (tmp_path / 'text.png').write_text('not an image')
  with pytest.raises(ValueError, match=r'text\.png.*convert it to PNG or JPEG'):
    image_io.upright_size(str(tmp_path / 'text.png'))
