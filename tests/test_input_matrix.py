"""Every file a sub-command reads, made bad in every common way, is one line and exit 2 (issue #24).

The matrix: each input slot of each sub-command (images, videos, statistics, weights, configs,
run folders) × {wrong content under the right extension, empty, truncated (a valid file cut in
half), a directory, unreadable permissions, a dangling symlink}. Every cell must end in
`jaxstyle CMD: error: ...` naming the bad path, on one stderr line, exit code 2, no traceback, and
no WARNING logged before it (a user given one bad file gets one line, not a warning and then an
error). Cells run in-process through `jaxstyle.cli.main` (the console script's entry); inputs are
tiny valid files, broken here. The bad input is found before any network is built (the builders
fail the cell if reached, except where the bad file is the weights themselves), so every cell
costs milliseconds once the command's modules are imported.

Root reads any file, so the `unreadable` column skips as root; to run it in a root container:
`unshare --user --map-user=1000 --map-group=1000 pytest -n 0 tests/test_input_matrix.py`.
"""

import io
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import CONFIG_DIR, CYCLEGAN_SYNTHETIC, FIXTURES, NST_BOOK
from PIL import Image

from jaxstyle import cli

KINDS = ('wrong', 'empty', 'truncated', 'directory', 'unreadable', 'dangling')
FAST_STYLE = str(CONFIG_DIR / 'fast_style_johnson.py')
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


@pytest.fixture(scope='module')
def root(tmp_path_factory):
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


def _adain(g, t, style=None) -> list[str]:
  """`stylize --model` of an AdaIN run with one style image (`style`, else a good one)."""
  style = style or str(g / 'style.png')
  return [
    'stylize',
    '--model',
    str(g / 'adain_run'),
    '--style-image',
    style,
    '-o',
    str(t / 'o.png'),
  ]


# (id, slot, argv builder(bad path, good folder, fresh folder)); every sub-command that reads a file.
SITES = [
  ('train-config', 'py', lambda p, g, t: ['train', '--config', p, '--workdir', str(t / 'w')]),
  ('sweep-config', 'py', lambda p, g, t: ['sweep', '--config', p, '--workdir', str(t / 'w')]),
  ('bench-preset-config', 'py', lambda p, g, t: ['bench', 'preset', '--config', p]),
  (
    'stylize-config',
    'py',
    lambda p, g, t: ['stylize', str(g / 'content.png'), str(g / 'style.png'), '--config', p],
  ),
  ('stylize-content', 'png', lambda p, g, t: ['stylize', p, str(g / 'style.png')]),
  ('stylize-style', 'png', lambda p, g, t: ['stylize', str(g / 'content.png'), p]),
  (
    'stylize-init-image',
    'png',
    lambda p, g, t: [
      'stylize',
      str(g / 'content.png'),
      str(g / 'style.png'),
      '--init',
      'image',
      '--init-image',
      p,
    ],
  ),
  (
    'stylize-vgg19-pth',
    'pth',
    lambda p, g, t: ['stylize', str(g / 'content.png'), str(g / 'style.png'), '--vgg19', p],
  ),
  (
    'stylize-vgg19-h5',
    'h5',
    lambda p, g, t: ['stylize', str(g / 'content.png'), str(g / 'style.png'), '--vgg19', p],
  ),
  (
    'stylize-model-image',
    'png',
    lambda p, g, t: ['stylize', '--model', str(g / 'fast_run'), p, '-o', str(t / 'o.png')],
  ),
  (
    'stylize-model-video',
    'mp4',
    lambda p, g, t: [
      'stylize',
      '--model',
      str(g / 'fast_run'),
      '--video',
      p,
      '-o',
      str(t / 'o.mp4'),
    ],
  ),
  ('stylize-adain-content', 'png', lambda p, g, t: [*_adain(g, t), p]),
  ('stylize-adain-style', 'png', lambda p, g, t: [*_adain(g, t, p), str(g / 'content.png')]),
  (
    'stylize-adain-mask',
    'png',
    lambda p, g, t: (
      [*_adain(g, t), '--style-image', str(g / 'style.png'), '--mask', p] + [str(g / 'content.png')]
    ),
  ),
  (
    'translate-image',
    'png',
    lambda p, g, t: ['translate', '--weights', str(g / 'content.png'), '--out', str(t / 'out'), p],
  ),
  (
    'translate-weights',
    'pth',
    lambda p, g, t: ['translate', '--weights', p, '--out', str(t / 'out'), str(g / 'content.png')],
  ),
  ('fid-stats', 'npz', lambda p, g, t: ['fid', p, str(g / 'images')]),
  (
    'fid-inception',
    'pth',
    lambda p, g, t: ['fid', str(g / 'images'), str(g / 'images'), '--inception', p],
  ),
  ('port-weights-pth', 'pth', lambda p, g, t: ['port-weights', p, '-o', str(t / 'ported')]),
  ('port-weights-h5', 'h5', lambda p, g, t: ['port-weights', p, '-o', str(t / 'ported')]),
  (
    'figure-5-18-images',
    'png',
    lambda p, g, t: [
      'figure',
      '5-18',
      '--workdir',
      str(g / 'nst'),
      '--images',
      p,
      str(g / 'style.png'),
      '-o',
      str(t / 'f.png'),
    ],
  ),
  (
    'figure-style-mix-image',
    'png',
    lambda p, g, t: ['figure', 'style-mix', '--workdir', str(g / 'fast_run'), '--image', p],
  ),
  (
    'train-nst-content',
    'png',
    lambda p, g, t: [
      'train',
      '--config',
      f'{NST_BOOK}:content={p},style={g / "style.png"}',
      '--workdir',
      str(t / 'w'),
    ],
  ),
  (
    'train-fast-style-style',
    'png',
    lambda p, g, t: [
      'train',
      '--config',
      FAST_STYLE + ':runlocal',
      '--workdir',
      str(t / 'w'),
      f'--config.styles={p}',
    ],
  ),
  (
    'train-cyclegan-init',
    'pth',
    lambda p, g, t: [
      'train',
      '--config',
      CYCLEGAN_SYNTHETIC + ':runlocal',
      '--workdir',
      str(t / 'w'),
      f'--config.init={p}',
    ],
  ),
]

# Weight folders (their jaxstyle.json broken): readers of `port-weights` outputs.
DIR_SITES = [
  (
    'translate-weights-dir',
    lambda r, g, t: ['translate', '--weights', r, '--out', str(t / 'out'), str(g / 'content.png')],
  ),
  (
    'fid-inception-dir',
    lambda r, g, t: ['fid', str(g / 'images'), str(g / 'images'), '--inception', r],
  ),
]

# Run folders (their config.json broken): readers of a training run.
RUN_SITES = [
  ('stylize-model-run', lambda r, g, t: ['stylize', '--model', r, str(g / 'content.png')]),
  (
    'translate-workdir',
    lambda r, g, t: ['translate', '--workdir', r, '--out', str(t / 'out'), str(g / 'content.png')],
  ),
  ('evaluate-workdir', lambda r, g, t: ['evaluate', '--workdir', r]),
  ('figure-5-9-workdir', lambda r, g, t: ['figure', '5-9', '--workdir', r, '-o', str(t / 'f.png')]),
]


# Weight files are read when the network is built, so only these cells may reach a builder.
READ_BY_THE_MODEL = {'stylize-vgg19-pth', 'stylize-vgg19-h5', 'translate-weights', 'fid-inception'}


def _forbid_models(monkeypatch):
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


def _check_one_line(argv, needle, capsys, caplog, monkeypatch):
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


def _skip_unreadable(kind):
  if kind == 'unreadable' and IS_ROOT:
    pytest.skip('root reads any file: permissions cannot make it unreadable')


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('site', [s[0] for s in SITES])
def test_bad_input_is_one_line(root, site, kind, tmp_path, capsys, caplog, monkeypatch):
  _skip_unreadable(kind)
  _, slot, argv_of = next(s for s in SITES if s[0] == site)
  if slot not in root[1]:
    pytest.skip(f'no valid .{slot} could be made here (optional dependency missing)')
  path = bad(root, slot, kind)
  argv = argv_of(path, root[0] / 'good', tmp_path)
  if site not in READ_BY_THE_MODEL:
    _forbid_models(monkeypatch)
  _check_one_line(argv, os.path.basename(path), capsys, caplog, monkeypatch)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('site', [s[0] for s in RUN_SITES])
def test_bad_run_is_one_line(root, site, kind, tmp_path, capsys, caplog, monkeypatch):
  _skip_unreadable(kind)
  _, argv_of = next(s for s in RUN_SITES if s[0] == site)
  run = bad_run(root, kind)
  argv = argv_of(run, root[0] / 'good', tmp_path)
  _check_one_line(argv, 'config.json', capsys, caplog, monkeypatch)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('site', [s[0] for s in DIR_SITES])
def test_bad_weight_dir_is_one_line(root, site, kind, tmp_path, capsys, caplog, monkeypatch):
  _skip_unreadable(kind)
  _, argv_of = next(s for s in DIR_SITES if s[0] == site)
  argv = argv_of(bad_weight_dir(root, kind), root[0] / 'good', tmp_path)
  _check_one_line(argv, 'ported', capsys, caplog, monkeypatch)


# A bad image among good ones in an FID folder: found from the headers, before the weights load.
# (A truncated file has a good header: it fails when its features are computed. Sub-folders and
# dangling links are not inputs: FID reads the files directly in the folder, as pytorch-fid.)
@pytest.mark.parametrize('kind', ['wrong', 'empty', 'unreadable'])
def test_bad_image_in_fid_folder_is_one_line(root, kind, tmp_path, capsys, caplog, monkeypatch):
  _skip_unreadable(kind)
  d, valid = root
  folder = tmp_path / 'images'
  folder.mkdir()
  for i in range(2):
    (folder / f'{i}.png').write_bytes(valid['png'])
  os.rename(bad(root, 'png', kind), folder / 'input.png')
  argv = ['fid', str(folder), str(d / 'good' / 'images')]
  _check_one_line(argv, 'input.png', capsys, caplog, monkeypatch)


@pytest.fixture(scope='module')
def cyclegan_run(root):
  """A finished CycleGAN run (random generators, no compile) for evaluate's --inception cells."""
  import tiny_run

  config, _, params = tiny_run.small_run()
  return tiny_run.write_run(root[0] / 'cyclegan_run', config, params)


@pytest.mark.parametrize('kind', KINDS)
def test_bad_evaluate_inception_is_one_line(root, cyclegan_run, kind, capsys, caplog, monkeypatch):
  _skip_unreadable(kind)
  path = bad(root, 'pth', kind)
  argv = ['evaluate', '--workdir', str(cyclegan_run), '--inception', path]
  _check_one_line(argv, 'input.pth', capsys, caplog, monkeypatch)


@pytest.mark.parametrize('run', ['fast_run', 'adain_run'])
def test_folder_of_non_images_fails_before_the_model(
  root, run, tmp_path, capsys, caplog, monkeypatch
):
  """Several inputs: each unreadable one is a warning (the readable ones would still be
  stylised); when none is left the command stops before any network loads."""
  d, _ = root
  folder = tmp_path / 'photos'
  folder.mkdir()
  (folder / 'a.png').write_text('text')
  (folder / 'b.jpg').write_bytes(b'')
  _forbid_models(monkeypatch)
  caplog.set_level(logging.WARNING)
  argv = ['stylize', '--model', str(d / 'good' / run), str(folder), '-o', str(tmp_path / 'out')]
  if run == 'adain_run':
    argv += ['--style-image', str(d / 'good' / 'style.png')]
  assert cli.main(argv) == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and 'none of the 2 input' in lines[0], lines
  warned = sorted(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
  assert len(warned) == 2 and 'a.png' in warned[0] and 'b.jpg' in warned[1], warned


# Valid Python that is not a config: the file and (where it raised) the line, in one line.
CONFIG_CODE = {
  'no get_config': ('X = 1\n', 'defines no get_config'),
  'NameError': ('def get_config(arg=None):\n  return undefined_name\n', 'line 2: NameError'),
  'bad import': ('import jaxstyle.no_such_module\n', 'line 1: ModuleNotFoundError'),
  'not a ConfigDict': ('def get_config(arg=None):\n  return None\n', 'returned a NoneType'),
}


@pytest.mark.parametrize('case', sorted(CONFIG_CODE))
@pytest.mark.parametrize('command', ['train', 'sweep'])
def test_config_code_errors_are_one_line(case, command, tmp_path, capsys, caplog, monkeypatch):
  source, expected = CONFIG_CODE[case]
  config = tmp_path / 'my_config.py'
  sweep = "\n\ndef get_sweep():\n  return [{'seed': 1}]\n" if command == 'sweep' else ''
  config.write_text(source + sweep)  # a sweep reaches get_config through its get_sweep()
  argv = [command, '--config', str(config), '--workdir', str(tmp_path / 'w')]
  _check_one_line(argv, expected, capsys, caplog, monkeypatch)
  assert not (tmp_path / 'w').exists() or not os.listdir(tmp_path / 'w')


def test_a_bug_under_a_config_keeps_its_traceback(tmp_path, monkeypatch):
  """Only the config file's own lines are the user's: an exception from jaxstyle's code that a
  config calls is not turned into a one-line error."""
  from jaxstyle.cyclegan import presets

  def broken():
    raise ZeroDivisionError('a bug in the presets')

  monkeypatch.setattr(presets, 'cyclegan_base', broken)
  config = tmp_path / 'my_config.py'
  config.write_text(
    'from jaxstyle.cyclegan import presets\n\ndef get_config(arg=None):\n'
    '  return presets.cyclegan_base()\n'
  )
  with pytest.raises(ZeroDivisionError):
    cli.main(['train', '--config', str(config), '--workdir', str(tmp_path / 'w')])


def test_console_reports_the_issue_example_in_one_line(root, tmp_path):
  """The issue's escapee through the real console entry (its own logging, no pytest capture):
  a text file named .png given to `jaxstyle stylize` is one line, exit 2."""
  d, _ = root
  notimg = bad(root, 'png', 'wrong')
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'JAXSTYLE_DEBUG')}
  out = subprocess.run(
    [sys.executable, '-m', 'jaxstyle.cli', 'stylize', notimg, str(d / 'good' / 'style.png')]
    + ['-o', str(tmp_path / 'out.png')],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 2, out.stderr
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('jaxstyle stylize: error: cannot read '), lines
  assert notimg in lines[0] and not (tmp_path / 'out.png').exists()


def test_matrix_covers_every_reading_command():
  """Every sub-command that takes a file is in the matrix (demo reads none)."""
  covered = {argv_of('x', _Anywhere(), _Anywhere())[0] for _, _, argv_of in SITES}
  covered |= {argv_of('x', _Anywhere(), _Anywhere())[0] for _, argv_of in RUN_SITES}
  assert covered == set(cli.COMMANDS) - {'demo'}


class _Anywhere:
  def __truediv__(self, other):
    return other
