"""Input files for the error-boundary tests (issue #24): tiny valid files of every type a
sub-command reads, broken in each common way, and the one-line check every cell makes.

Importable as `input_files` (tests/ is on pytest's pythonpath); each test module makes its `root`
fixture with `make_root`.
"""

import io
import json
import logging
import os

import numpy as np
import pytest
from helpers import CYCLEGAN_SYNTHETIC, FIXTURES
from PIL import Image

from jaxstyle import cli

KINDS = ('wrong', 'empty', 'truncated', 'directory', 'unreadable', 'dangling')
IS_ROOT = hasattr(os, 'geteuid') and os.geteuid() == 0


def _png() -> bytes:
  buf = io.BytesIO()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(buf, format='PNG')
  return buf.getvalue()


def _npz() -> bytes:
  buf = io.BytesIO()
  np.savez(buf, mu=np.zeros(4), sigma=np.eye(4))
  return buf.getvalue()


def _h5(path) -> bytes:
  import h5py

  with h5py.File(path, 'w') as f:
    f.attrs['layer_names'] = np.array([b'block1_conv1'])
    f.create_dataset('block1_conv1/block1_conv1/kernel:0', data=np.ones((3, 3, 3, 2), np.float32))
  return path.read_bytes()


def _mp4(path) -> bytes:
  import imageio.v2 as iio

  with iio.get_writer(path, format='FFMPEG', fps=4, macro_block_size=1) as w:
    for i in range(4):
      w.append_data(np.full((16, 16, 3), 60 * i, np.uint8))
  return path.read_bytes()


def make_root(tmp_path_factory):
  """Good inputs under good/, and valid bytes of each slot type (broken by `bad`)."""
  d = tmp_path_factory.mktemp('input_matrix')
  good = d / 'good'
  good.mkdir()
  png = _png()
  for name in ('content.png', 'style.png'):
    (good / name).write_bytes(png)
  (good / 'images').mkdir()
  for i in range(2):
    (good / 'images' / f'{i}.png').write_bytes(png)
  (good / 'nst').mkdir()  # a stylize --workdir: one snapshot for figure 5-18
  (good / 'nst' / 'out_at_iteration_0.png').write_bytes(png)
  # Folders that claim to be a fast-style / AdaIN run: the bad inputs fail before a model loads.
  for task in ('fast_style', 'adain'):
    run = good / f'{task.split("_")[0]}_run'
    run.mkdir()
    (run / 'config.json').write_text(json.dumps({'task': task}))
  valid = {
    'png': png,
    'npz': _npz(),
    'py': open(CYCLEGAN_SYNTHETIC, 'rb').read(),
    'pth': (FIXTURES / 'vgg19_block1.pth').read_bytes(),
    'h5': _h5(d / 'tiny.h5'),
    'json': json.dumps({'task': 'fast_style', 'model': {}}).encode(),
  }
  try:
    valid['mp4'] = _mp4(d / 'tiny.mp4')
  except ImportError:  # jaxstyle[video] not installed: the video cells skip
    pass
  return d, valid


def bad(root, slot: str, kind: str) -> str:
  """A file of type `slot` (its extension) broken as `kind`, under root/<kind>/."""
  d, valid = root
  folder = d / kind
  folder.mkdir(exist_ok=True)
  path = folder / f'input.{slot}'
  if path.exists() or path.is_symlink():
    return str(path)
  data = valid[slot]
  if kind == 'wrong':
    path.write_text('this is a text file, not what the extension says\n')
  elif kind == 'empty':
    path.write_bytes(b'')
  elif kind == 'truncated':
    path.write_bytes(data[: len(data) // 2])
  elif kind == 'directory':
    path.mkdir()
  elif kind == 'unreadable':
    path.write_bytes(data)
    path.chmod(0)
  elif kind == 'dangling':
    path.symlink_to(folder / f'gone.{slot}')
  return str(path)


def bad_run(root, kind: str) -> str:
  """A run folder whose config.json is broken as `kind` (a run's "file" is its config)."""
  d, valid = root
  run = d / kind / 'run'
  if not run.exists():
    (run / 'samples').mkdir(parents=True)
    (run / 'samples' / 'step_000002.png').write_bytes(valid['png'])
    os.rename(bad(root, 'json', kind), run / 'config.json')
  return str(run)


def bad_weight_dir(root, kind: str) -> str:
  """A `port-weights` output folder whose jaxstyle.json is broken as `kind`."""
  d, _ = root
  folder = d / kind / 'ported'
  if not folder.exists():
    folder.mkdir(parents=True)
    os.rename(bad(root, 'json', kind), folder / 'jaxstyle.json')
  return str(folder)


def forbid_models(monkeypatch):
  """Every builder of a network (and the trainer's first JAX call) fails the cell if reached:
  a bad image, video, config or statistics file must be found before any of them."""
  from jaxstyle import parallel
  from jaxstyle.adain import inference as adain_inference
  from jaxstyle.cyclegan import translate
  from jaxstyle.fast_style import inference as fast_inference
  from jaxstyle.fid import weights as fid_weights
  from jaxstyle.nst import stylize

  def built(*args, **kwargs):
    raise AssertionError('a network was built before the bad input was found')

  monkeypatch.setattr(parallel, 'maybe_init_distributed', built)
  monkeypatch.setattr(stylize, 'stylize', built)
  monkeypatch.setattr(fast_inference.FastStyleModel, 'from_workdir', built)
  monkeypatch.setattr(adain_inference.AdainModel, 'load', built)
  monkeypatch.setattr(translate, 'load_generator', built)
  monkeypatch.setattr(fid_weights, 'load_params', built)


def check_one_line(argv, needle, capsys, caplog, monkeypatch):
  monkeypatch.delenv('JAXSTYLE_DEBUG', raising=False)
  caplog.set_level(logging.WARNING)
  try:
    code = cli.main(argv)
  except SystemExit as exit_:
    code = exit_.code
  err = capsys.readouterr().err
  lines = [line for line in err.splitlines() if line.strip()]
  # pytest holds the log handlers, so logged warnings reach caplog, not stderr: count them too.
  warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert code == 2, (argv, err, warned)
  assert 'Traceback' not in err
  assert len(lines) == 1 and not warned, (argv, lines, warned)
  assert lines[0].startswith(f'jaxstyle {argv[0]}: error: '), lines[0]
  assert needle in lines[0], (needle, lines[0])


def skip_unreadable(kind):
  if kind == 'unreadable' and IS_ROOT:
    pytest.skip('root reads any file: permissions cannot make it unreadable')
