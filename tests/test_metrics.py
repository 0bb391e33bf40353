"""metrics.jsonl / TensorBoard writer and the Figure 5-8 sample grid."""

import glob
import json
import os
import struct

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxstyle import metrics
from jaxstyle.cyclegan import samples

# ---------------------------------------------------------------------------- metrics


def test_writer_jsonl_and_tensorboard(tmp_path):
  w = metrics.MetricWriter(str(tmp_path), enabled=True)
  w.write(1, {'train/loss_G': np.float32(1.5), 'train/lr': 2e-4, 'train/count': np.int32(3)})
  # Flushed per line: readable before close (what survives a kill).
  lines = (tmp_path / 'metrics.jsonl').read_text().splitlines()
  assert json.loads(lines[0]) == {
    'step': 1,
    'train/loss_G': 1.5,
    'train/lr': 2e-4,
    'train/count': 3,
  }
  w.write(2, {'train/loss_G': jnp.float32(0.25)})
  w.write_image(2, 'samples', np.zeros((8, 8, 3), np.uint8))
  with pytest.raises(ValueError, match='uint8'):
    w.write_image(2, 'bad', np.zeros((8, 8, 3), np.float32))
  w.close()
  assert [r['step'] for r in metrics.read_metrics(str(tmp_path))] == [1, 2]
  events = glob.glob(str(tmp_path / 'tb' / 'events.out.tfevents.*'))
  assert len(events) == 1
  scalars, images = _read_events(events[0])
  assert scalars['train/loss_G'] == [(1, 1.5), (2, 0.25)]
  assert scalars['train/count'] == [(1, 3.0)]
  assert images == {'samples': [2]}


def _read_events(path):
  """Minimal TFRecord reader (tensorboard itself is not a dependency): {tag: [(step, value)]}."""
  from tensorboardX.proto import event_pb2

  scalars, images = {}, {}
  data = open(path, 'rb').read()
  pos = 0
  while pos < len(data):
    (n,) = struct.unpack('<Q', data[pos : pos + 8])
    event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + n])
    pos += 12 + n + 4
    for v in event.summary.value:
      if v.HasField('image'):
        images.setdefault(v.tag, []).append(event.step)
      else:
        scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
  return scalars, images


def test_disabled_writer_creates_nothing(tmp_path):
  w = metrics.MetricWriter(str(tmp_path / 'run'), enabled=False)
  w.write(1, {'a': 1.0})
  w.write_image(1, 'x', np.zeros((4, 4, 3), np.uint8))
  w.close()
  assert not (tmp_path / 'run').exists()


def test_no_tensorboard_writes_only_jsonl(tmp_path):
  with metrics.MetricWriter(str(tmp_path), enabled=True, tensorboard=False) as w:
    w.write(3, {'x': 1.0})
  assert sorted(os.listdir(tmp_path)) == ['metrics.jsonl']


def test_read_metrics_truncated_line_and_resume(tmp_path):
  with metrics.MetricWriter(str(tmp_path), enabled=True, tensorboard=False) as w:
    for s in (10, 20, 30):
      w.write(s, {'loss': float(s)})
  with open(tmp_path / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 40, "lo')  # killed mid-line
  assert [r['step'] for r in metrics.read_metrics(str(tmp_path))] == [10, 20, 30]
  # Resume from a step-20 checkpoint: the rolled-back step 30 is superseded, same-step records kept.
  with metrics.MetricWriter(str(tmp_path), enabled=True, tensorboard=False) as w:
    w.write(30, {'loss': -30.0})
    w.write(30, {'eval/fid': 5.0})
    w.write(40, {'loss': -40.0})
  got = metrics.read_metrics(str(tmp_path))
  assert got == [
    {'step': 10, 'loss': 10.0},
    {'step': 20, 'loss': 20.0},
    {'step': 30, 'loss': -30.0},
    {'step': 30, 'eval/fid': 5.0},
    {'step': 40, 'loss': -40.0},
  ]


def test_format_metrics():
  s = metrics.format_metrics({'train/loss_G': 1.23456789, 'train/lr': np.float32(2e-4), 'step': 7})
  assert s == 'loss_G=1.235 lr=0.0002 step=7'


# ---------------------------------------------------------------------------- samples

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
  want = samples.to_uint8(np.asarray(rgb, np.float32))
  ys, xs = np.nonzero(np.all(img == want, axis=-1))
  assert ys.size, f'colour {rgb} not found'
  return ys.min(), xs.min(), ys.max() + 1, xs.max() + 1


def test_to_uint8_matches_book_mapping():
  x = np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0], np.float32)
  expected = np.round(np.clip(x * 0.5 + 0.5, 0, 1) * 255).astype(np.uint8)
  np.testing.assert_array_equal(samples.to_uint8(x), expected)
  assert expected.tolist() == [0, 0, 128, 191, 255, 255]


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
  # Column titles are drawn above the first row (dark pixels in the title band).
  title_band = img[: boxes[('A', 0)][0]]
  assert title_band.size and (title_band.min(axis=-1) < 100).sum() > 50


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
