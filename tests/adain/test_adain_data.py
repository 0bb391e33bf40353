"""The AdaIN input stream: a pure function of (seed, step), split across processes, crops as the
reference's transform, style folders and held-out pattern variants. NumPy only (no compile)."""

import numpy as np
import pytest
from helpers import CONFIG_DIR
from PIL import Image

from jaxstyle import config_lib, errors
from jaxstyle.adain import data, presets

CONFIG = str(CONFIG_DIR / 'adain.py') + ':runlocal'


def config(**overrides):
  c = config_lib.load_config(CONFIG)
  base = {'data.image_size': 16, 'data.load_size': 24, 'data.synthetic_size': 16}
  config_lib.apply_overrides(c, {**base, 'style.synthetic_size': 8, **overrides})
  return presets.validate(c)


def sources(c):
  return data.make_source(c.data, 'train'), data.make_style_source(c, 'train')


def test_batches_are_a_function_of_step():
  c = config()
  src = sources(c)
  a = data.batch_at(c, src, 5, 8)
  assert a['content'].shape == a['style'].shape == (8, 16, 16, 3)
  assert a['style'].dtype == np.float32 and 0 <= a['style'].min() and a['style'].max() <= 255
  halves = [data.batch_at(c, src, 5, 8, p, 2) for p in range(2)]
  for key in a:
    np.testing.assert_array_equal(a[key], np.concatenate([h[key] for h in halves]))
  assert not np.array_equal(a['style'], data.batch_at(c, src, 6, 8)['style'])
  with data.make_stream(c, src, 5, 8, 0, 1) as stream:
    np.testing.assert_array_equal(next(stream)['style'], a['style'])
  # Held-out styles are other pattern variants than the training ones.
  held = data.make_style_source(c, 'test')
  assert not any(np.array_equal(held.image(0), src[1].image(i)) for i in range(8))


def test_train_view_is_the_reference_squash_and_crop():
  """Resize((load, load)) then a crop inside it: a 2:1 image keeps all its columns, squashed."""
  img = np.zeros((20, 40, 3), np.uint8)
  img[:, 20:] = 255  # right half white
  view = data.train_view(img, 24, 16, np.random.default_rng(0))
  assert view.shape == (16, 16, 3)
  squashed = np.asarray(Image.fromarray(img).resize((24, 24), Image.BILINEAR))
  hits = [
    (y, x)
    for y in range(9)
    for x in range(9)
    if np.array_equal(squashed[y : y + 16, x : x + 16], view)
  ]
  assert hits


def test_style_folder_is_read_recursively(tmp_path):
  rng = np.random.RandomState(0)
  for sub, name in (('artist_a', 'x.png'), ('artist_b', 'y.jpg'), ('artist_b', 'z.png')):
    (tmp_path / sub).mkdir(exist_ok=True)
    Image.fromarray((rng.rand(30, 20, 3) * 255).astype(np.uint8)).save(tmp_path / sub / name)
  c = config(**{'style.source': 'folder', 'style.root': str(tmp_path)})
  content, styles = sources(c)
  assert len(styles) == 3
  batch = data.batch_at(c, (content, styles), 0, 6)
  assert batch['style'].shape == (6, 16, 16, 3)
  # Held out: the first of root when style.test_root is empty.
  held = data.held_out(data.make_style_source(c, 'test'), 2, 16)
  assert held.shape == (2, 16, 16, 3)


def test_config_errors_name_the_field():
  with pytest.raises(errors.ConfigError, match='needs style.root'):
    config(**{'style.source': 'folder'})
  with pytest.raises(errors.ConfigError, match='multiple of 8'):
    config(**{'data.image_size': 20})
  with pytest.raises(errors.ConfigError, match='load_size=8 must be ≥ data.image_size=16'):
    config(**{'data.load_size': 8})
