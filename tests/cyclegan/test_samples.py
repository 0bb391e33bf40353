"""The Figure 5-8 sample grid: cell placement, several examples per domain, grey input, errors."""

import numpy as np
import pytest
from PIL import Image

from jaxstyle.cyclegan import samples

# Eight saturated colours in [-1, 1], one per cell: (A|B) x (Original, Translated, Recon., ID).
_COLOURS = {
  ('A', 0): (1, -1, -1),
  ('A', 1): (-1, 1, -1),
  ('A', 2): (-1, -1, 1),
  ('A', 3): (1, 1, -1),
  ('B', 0): (1, -1, 1),
  ('B', 1): (-1, 1, 1),
  ('B', 2): (1, 0, -1),
  ('B', 3): (0, -1, 1),
}


def _solid(rgb, n=1, size=20):
  return np.broadcast_to(np.asarray(rgb, np.float32), (n, size, size, 3)).copy()


def _grid_args(n=1, size=20):
  return [_solid(_COLOURS[(d, c)], n, size) for d in 'AB' for c in range(4)]


def _box(img, rgb):
  """Bounding box (y0, x0, y1, x1) of the pixels exactly equal to the uint8 version of rgb."""
  want = np.asarray([{-1: 0, 0: 128, 1: 255}[v] for v in rgb], np.uint8)  # clip(0.5x + 0.5) * 255
  ys, xs = np.nonzero(np.all(img == want, axis=-1))
  assert ys.size, f'colour {rgb} not found'
  return ys.min(), xs.min(), ys.max() + 1, xs.max() + 1


def test_grid_cells_land_in_figure_5_8_layout():
  img = samples.sample_grid(*_grid_args(size=20), min_cell=64)  # 20 px -> scale 4 -> 80 px cells
  assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[-1] == 3
  boxes = {k: _box(img, rgb) for k, rgb in _COLOURS.items()}
  for y0, x0, y1, x1 in boxes.values():
    assert (y1 - y0, x1 - x0) == (80, 80)  # whole cell, enlarged by an integer factor
  for c in range(4):  # domain A row above domain B row, same column x
    assert boxes[('A', c)][2] <= boxes[('B', c)][0]
    assert boxes[('A', c)][1] == boxes[('B', c)][1]
  for d in 'AB':  # columns left to right in the book order, same row y
    xs = [boxes[(d, c)][1] for c in range(4)]
    assert xs == sorted(xs) and len(set(xs)) == 4
    assert len({boxes[(d, c)][0] for c in range(4)}) == 1
  # Column titles are drawn above the first row (dark pixels in the title band), the row labels
  # A and B left of the first column, level with their rows.
  title_band = img[: boxes[('A', 0)][0]]
  assert title_band.size and (title_band.min(axis=-1) < 100).sum() > 50
  for d in 'AB':
    y0, x0, y1, _ = boxes[(d, 0)]
    assert (img[y0:y1, :x0].min(axis=-1) < 100).sum() > 5


def test_grid_several_examples_and_grayscale(tmp_path):
  args = _grid_args(n=2, size=16)
  args[0][1] = -1.0  # second A original: black, must land in row 2, column 0
  gray = [a[..., :1] for a in args]  # C=1 input is shown as gray
  img = samples.sample_grid(*args, min_cell=16)
  y0, x0, y1, x1 = _box(img, _COLOURS[('A', 0)])
  assert (y1 - y0, x1 - x0) == (16, 16)  # only the first row keeps red
  orig_b = _box(img, _COLOURS[('B', 0)])
  assert orig_b[0] > y1 and orig_b[2] - orig_b[0] > 16 + 16  # two B rows below, stacked
  black_row2 = img[y1 : orig_b[0], x0:x1]
  assert (np.all(black_row2 == 0, axis=-1)).sum() == 16 * 16
  g = samples.sample_grid(*gray, min_cell=16)
  assert g.shape[-1] == 3 and np.array_equal(g[..., 0], g[..., 1])
  path = tmp_path / 'sub' / 'grid.png'
  out = samples.save_sample_grid(str(path), *args, min_cell=16)
  np.testing.assert_array_equal(np.asarray(Image.open(path)), out)


def test_grid_rejects_mismatched_counts():
  args = _grid_args(n=2)
  args[1] = args[1][:1]
  with pytest.raises(ValueError, match='same number'):
    samples.sample_grid(*args)
