"""Every user mistake is one line `jaxstyle CMD: error: ...`, exit code 2, no traceback (issue #13).

Most invocations run in-process through `jaxstyle.cli.main` (what the console script calls), so
the file costs seconds; a few run the real console entry in a subprocess to check what a user
sees, `--debug`, `JAXSTYLE_DEBUG=1`, and that a real bug keeps its traceback.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tiny_run
from helpers import CYCLEGAN_SYNTHETIC as SYNTH
from helpers import NST_BOOK, ROOT
from PIL import Image

from jaxstyle import checkpoint, cli


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  """Paths the bad invocations point at: images, junk files, a weights dir, an empty run."""
  d = tmp_path_factory.mktemp('cli_errors')
  rng = np.random.default_rng(0)
  for name in ('content.png', 'style.png'):
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), np.uint8)).save(d / name)
  (d / 'notes.png').write_text('not an image')
  (d / 'junk.pth').write_bytes(b'\x00garbage' * 10)
  (d / 'junk.bin').write_bytes(b'neither HDF5 nor torch' * 10)
  (d / 'a_file').write_text('x')
  (d / 'empty_dir').mkdir()
  (d / 'text_only').mkdir()
  (d / 'text_only' / 'x.png').write_text('text')
  for name, n in (('one_image', 1), ('two_images', 2)):
    (d / name).mkdir()
    for i in range(n):
      Image.fromarray(rng.integers(0, 255, (24, 24, 3), np.uint8)).save(d / name / f'{i}.png')
  np.savez(d / 'bad_keys.npz', mean=np.zeros(3), cov=np.eye(3))
  config, _, params = tiny_run.small_run()
  checkpoint.save_params(
    str(d / 'gen'), params['G_A'], {'kind': 'generator', 'model_cfg': config['model']}
  )
  # A weights dir whose params do not fit its model config (2 blocks declared, 1 stored).
  checkpoint.save_params(
    str(d / 'mismatch'),
    params['G_A'],
    {'kind': 'generator', 'model_cfg': {**config['model'], 'n_blocks': 2}},
  )
  return d


def _cases(d):
  """(argv, a piece of the expected message) for each bad invocation."""
  c, s, w = str(d / 'content.png'), str(d / 'style.png'), str(d / 'work')
  train = ['train', '--config', SYNTH, '--workdir', w]
  return [
    (['nosuch'], "unknown command 'nosuch'"),
    (['train', '--workdir', w], '--config'),
    (['train', '--config', str(d / 'nope.py'), '--workdir', w], 'does not exist'),
    (['train', '--config', SYNTH + ':runlokal', '--workdir', w], 'did you mean runlocal'),
    (train + ['--config.per_device_batch=-2'], 'per_device_batch=-2 must be an integer ≥ 1'),
    (train + ['--config.per_device_batch=0'], 'per_device_batch=0 must be an integer ≥ 1'),
    (train + ['--config.optim.lrr=1e-4'], 'did you mean optim.lr'),
    (train + ['--config.optim.lr=fast'], 'expected float'),
    (train + ['--config.optim.lr=-1'], 'optim.lr=-1.0 must be a number > 0'),
    (train + ['--config.model.generator=unet'], "model.generator='unet' is not one of"),
    (train + ['--config.data.image_size=20'], 'multiple of 16'),
    (train + ['--config.total_steps=-5'], 'total_steps=-5'),
    (train + ['--bogus'], "unrecognised argument '--bogus'"),
    (['train', '--config', SYNTH, '--workdir', str(d / 'a_file')], 'not a directory'),
    (['train', '--config', NST_BOOK, '--workdir', w], 'needs a content image'),
    (['translate', '--workdir', str(d / 'empty_dir'), '--out', w, c], 'empty_dir'),
    (['translate', '--weights', str(d / 'gen'), '--out', w, str(d / 'missing.png')], 'missing.png'),
    (['translate', '--weights', str(d / 'gen'), '--out', w, str(d / 'text_only')], 'x.png'),
    (['translate', '--weights', str(d / 'gen'), '--out', w, '--batch-size', '0', c], '≥ 1'),
    (['translate', '--weights', str(d / 'gen'), '--out', str(d / 'a_file'), c], 'not a directory'),
    (['translate', '--weights', str(d / 'mismatch'), '--out', w, c], 'mismatch'),
    (['translate', '--weights', str(d / 'junk.pth'), '--out', w, c], 'junk.pth'),
    (['evaluate', '--workdir', str(d / 'empty_dir')], 'empty_dir'),
    (['evaluate', '--workdir', w, '--max-images', '-1'], '≥ 1'),
    (['stylize', str(d / 'missing.jpg'), s], 'content image'),
    (['stylize', c, s, '--style-weight', 'abc'], 'invalid float value'),
    (['stylize', c, s, '--content-layers', 'relu9_9'], 'unknown VGG19 layers'),
    (['stylize', c, s, '--config.loss.style_weigth=3'], 'did you mean loss.style_weight'),
    (['stylize', c, s, '--height', '100', '--max-side', '100'], 'not both'),
    (['stylize', c, s, '--iterations', '0'], 'optim.segments=0'),
    (['stylize', c, s, '--vgg19', str(d / 'junk.bin'), '-o', str(d / 'o.png')], 'junk.bin'),
    (['stylize', c, s, '-o', str(d / 'a_file' / 'out.png')], 'a_file'),
    (['port-weights', str(d / 'missing.pth'), '-o', w], 'does not exist'),
    (['port-weights', str(d / 'junk.pth'), '-o', w], 'junk.pth'),
    (['fid', str(d / 'empty_dir'), str(d / 'two_images')], 'no images'),
    (['fid', str(d / 'two_images'), str(d / 'empty_dir')], 'no images'),  # before the weights
    (['fid', str(d / 'text_only'), str(d / 'two_images')], 'cannot read'),
    (['fid', str(d / 'one_image'), str(d / 'two_images')], 'at least 2 images'),
    (['fid', str(d / 'nope'), str(d / 'two_images')], 'not a folder of images'),
    (['fid', str(d / 'bad_keys.npz'), str(d / 'two_images')], "'mu' and 'sigma'"),
    (['fid', str(d / 'junk.pth'), str(d / 'two_images')], 'not a folder'),
    (['fid', str(d / 'two_images')], 'give two PATHs'),
    (['fid', str(d / 'two_images'), str(d / 'two_images'), '--save-stats', w], 'exactly one'),
    (
      ['fid', str(d / 'two_images'), str(d / 'two_images'), '--inception', str(d / 'junk.pth')],
      'junk.pth',
    ),
    (['fid', str(d / 'two_images'), str(d / 'two_images')], 'JAXSTYLE_OFFLINE'),
    (['bench', 'cyclegan', '--batch', '0'], '≥ 1'),
    (['bench', 'nosuchtask'], 'invalid choice'),
    (['bench', 'cyclegan', '--bogus'], 'unrecognized arguments: --bogus'),
    (['sweep', '--workdir', w], '--config is required'),
    (['sweep', '--config', SYNTH, '--workdir', w, '--config.nope=1'], "no field 'nope'"),
    (['figure', '5-8', '-o', str(d / 'f.png')], '--workdir'),
    (['figure', '5-8', '--workdir', str(d / 'empty_dir'), '-o', str(d / 'f.png')], 'no samples'),
    (
      ['figure', '5-12', '--workdir', w, '--steps', 'a,b', '-o', str(d / 'f.png')],
      'comma-separated integers',
    ),
    (['figure', '5-8', '--bogus', '-o', str(d / 'f.png')], 'unrecognized arguments: --bogus'),
    (['demo', '--size', '20'], 'multiple of 16'),
    (['demo', '--bogus'], 'unrecognized arguments: --bogus'),
  ]


N_CASES = 56


def test_case_count(files):
  """The issue asks for at least 25 bad invocations across all sub-commands."""
  cases = _cases(files)
  assert len(cases) == N_CASES >= 25
  assert {argv[0] for argv, _ in cases} >= set(cli.COMMANDS)


@pytest.mark.parametrize('index', range(N_CASES))
def test_bad_invocation_is_one_line(files, index, capsys, monkeypatch):
  argv, expected = _cases(files)[index]
  monkeypatch.delenv('JAXSTYLE_DEBUG', raising=False)
  try:
    code = cli.main(argv)
  except SystemExit as exit_:  # argparse errors exit from inside the parser
    code = exit_.code
  err = capsys.readouterr().err
  lines = [line for line in err.splitlines() if line.strip()]
  assert code == 2, (argv, err)
  assert 'Traceback' not in err
  assert len(lines) == 1, (argv, err)
  head = f'jaxstyle {argv[0]}' if argv[0] in cli.COMMANDS else 'jaxstyle'
  # a sub-command's parser names itself: `jaxstyle bench cyclegan: error: ...`
  assert lines[0].startswith((f'{head}: error: ', f'{head} {" ".join(argv[1:2])}: error: ')), lines[
    0
  ]
  assert expected in lines[0], (expected, lines[0])


def _console(args, env_extra=None, cwd=ROOT):
  env = {**os.environ, **(env_extra or {})}
  env.pop('XLA_FLAGS', None)
  return subprocess.run(
    [sys.executable, '-m', 'jaxstyle.cli', *args],
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )


def test_console_script_one_line(tmp_path):
  out = _console(
    ['train', '--config', SYNTH, '--workdir', str(tmp_path), '--config.per_device_batch=0']
  )
  assert out.returncode == 2
  assert out.stderr.strip().splitlines() == [
    'jaxstyle train: error: invalid config: per_device_batch=0 must be an integer ≥ 1'
  ]


@pytest.mark.parametrize('how', ['flag', 'flag-first', 'env'])
def test_debug_shows_the_traceback(tmp_path, how):
  args = ['train', '--config', SYNTH, '--workdir', str(tmp_path), '--config.per_device_batch=0']
  env = {}
  if how == 'flag':
    args.append('--debug')
  elif how == 'flag-first':
    args.insert(0, '--debug')
  else:
    env['JAXSTYLE_DEBUG'] = '1'
  out = _console(args, env)
  assert out.returncode == 1
  assert 'Traceback' in out.stderr and 'ConfigError' in out.stderr


def test_real_bug_keeps_its_traceback(monkeypatch):
  """Only user errors are caught: anything else propagates (the console prints its traceback)."""
  from jaxstyle.tools import demo

  def broken(args):
    raise ZeroDivisionError('a bug')

  monkeypatch.setattr(demo, 'run', broken)
  with pytest.raises(ZeroDivisionError):
    cli.main(['demo'])


def test_help_still_works(capsys):
  assert cli.main([]) == 0
  assert 'train' in capsys.readouterr().out
