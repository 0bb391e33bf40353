"""Every file a sub-command reads, made bad in every common way, is one line and exit 2 (issue #24).

The matrix: each input slot of each sub-command (images, videos, statistics, weights, configs,
run folders) × {wrong content under the right extension, empty, truncated (a valid file cut in
half), a directory, unreadable permissions, a dangling symlink}. Every cell must end in
`jaxstyle CMD: error: ...` naming the bad path, on one stderr line, exit code 2, no traceback, and
no WARNING logged before it (a user given one bad file gets one line, not a warning and then an
error). Cells run in-process through `jaxstyle.cli.main` (the console script's entry); inputs are
tiny valid files, broken by tests/input_files.py. The bad input is found before any network is built (the builders
fail the cell if reached, except where the bad file is the weights themselves), so every cell
costs milliseconds once the command's modules are imported.

Root reads any file, so the `unreadable` column skips as root; to run it in a root container:
`unshare --user --map-user=1000 --map-group=1000 pytest -n 0 tests/test_input_*.py`.
"""

import os

import pytest
from helpers import CONFIG_DIR, CYCLEGAN_SYNTHETIC, NST_BOOK
from input_files import (
  KINDS,
  bad,
  bad_run,
  bad_weight_dir,
  check_one_line,
  forbid_models,
  make_root,
  skip_unreadable,
)

from jaxstyle import cli

FAST_STYLE = str(CONFIG_DIR / 'fast_style_johnson.py')


@pytest.fixture(scope='module')
def root(tmp_path_factory):
  return make_root(tmp_path_factory)


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


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('site', [s[0] for s in SITES])
def test_bad_input_is_one_line(root, site, kind, tmp_path, capsys, caplog, monkeypatch):
  skip_unreadable(kind)
  _, slot, argv_of = next(s for s in SITES if s[0] == site)
  if slot not in root[1]:
    pytest.skip(f'no valid .{slot} could be made here (optional dependency missing)')
  path = bad(root, slot, kind)
  argv = argv_of(path, root[0] / 'good', tmp_path)
  if site not in READ_BY_THE_MODEL:
    forbid_models(monkeypatch)
  check_one_line(argv, os.path.basename(path), capsys, caplog, monkeypatch)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('site', [s[0] for s in RUN_SITES])
def test_bad_run_is_one_line(root, site, kind, tmp_path, capsys, caplog, monkeypatch):
  skip_unreadable(kind)
  _, argv_of = next(s for s in RUN_SITES if s[0] == site)
  run = bad_run(root, kind)
  argv = argv_of(run, root[0] / 'good', tmp_path)
  check_one_line(argv, 'config.json', capsys, caplog, monkeypatch)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('site', [s[0] for s in DIR_SITES])
def test_bad_weight_dir_is_one_line(root, site, kind, tmp_path, capsys, caplog, monkeypatch):
  skip_unreadable(kind)
  _, argv_of = next(s for s in DIR_SITES if s[0] == site)
  argv = argv_of(bad_weight_dir(root, kind), root[0] / 'good', tmp_path)
  check_one_line(argv, 'ported', capsys, caplog, monkeypatch)


def test_matrix_covers_every_reading_command():
  """Every sub-command that takes a file is in the matrix (demo reads none)."""
  covered = {argv_of('x', _Anywhere(), _Anywhere())[0] for _, _, argv_of in SITES}
  covered |= {argv_of('x', _Anywhere(), _Anywhere())[0] for _, argv_of in RUN_SITES}
  assert covered == set(cli.COMMANDS) - {'demo'}


class _Anywhere:
  def __truediv__(self, other):
    return other
