"""The error boundary's input cases beyond the matrix (issue #24): a bad file among good ones,
evaluate's --inception, config files that are Python but not configs, and the issue's own example
through the real console entry. Inputs and the one-line check come from tests/input_files.py.
"""

import logging
import os
import subprocess
import sys

import pytest
from input_files import KINDS, bad, check_one_line, forbid_models, make_root, skip_unreadable

from jaxstyle import cli


@pytest.fixture(scope='module')
def root(tmp_path_factory):
  return make_root(tmp_path_factory)


# A bad image among good ones in an FID folder: found from the headers, before the weights load.
# (A truncated file has a good header: it fails when its features are computed. Sub-folders and
# dangling links are not inputs: FID reads the files directly in the folder, as pytorch-fid.)
@pytest.mark.parametrize('kind', ['wrong', 'empty', 'unreadable'])
def test_bad_image_in_fid_folder_is_one_line(root, kind, tmp_path, capsys, caplog, monkeypatch):
  skip_unreadable(kind)
  d, valid = root
  folder = tmp_path / 'images'
  folder.mkdir()
  for i in range(2):
    (folder / f'{i}.png').write_bytes(valid['png'])
  os.rename(bad(root, 'png', kind), folder / 'input.png')
  argv = ['fid', str(folder), str(d / 'good' / 'images')]
  check_one_line(argv, 'input.png', capsys, caplog, monkeypatch)


@pytest.fixture(scope='module')
def cyclegan_run(root):
  """A finished CycleGAN run (random generators, no compile) for evaluate's --inception cells."""
  import tiny_run

  config, _, params = tiny_run.small_run()
  return tiny_run.write_run(root[0] / 'cyclegan_run', config, params)


@pytest.mark.parametrize('kind', KINDS)
def test_bad_evaluate_inception_is_one_line(root, cyclegan_run, kind, capsys, caplog, monkeypatch):
  skip_unreadable(kind)
  path = bad(root, 'pth', kind)
  argv = ['evaluate', '--workdir', str(cyclegan_run), '--inception', path]
  check_one_line(argv, 'input.pth', capsys, caplog, monkeypatch)


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
  forbid_models(monkeypatch)
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
  check_one_line(argv, expected, capsys, caplog, monkeypatch)
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
