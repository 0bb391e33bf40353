"""`bench preset`: a preset's real step at its shapes gives the JSON line the config docstrings quote."""

import json

import pytest
from helpers import CYCLEGAN_SYNTHETIC, NST_BOOK

from jaxstyle.tools import bench_preset

FIELDS = {
  'bench',
  'config',
  'task',
  'shape',
  's_per_step',
  'compile_s',
  'peak_rss_mb',
  'total_steps',
  'projected_wall_s',
  'projected_wall',
  'conv_impl',
  'jaxlib',
  'date',
}


@pytest.mark.slow  # one tiny CycleGAN compile: 10-35 s on 2 shared cores
def test_cyclegan_runlocal_line_and_projection(capsys):
  spec = CYCLEGAN_SYNTHETIC + ':runlocal'
  rc = bench_preset.main(
    ['--config', spec, '--steps', '2', '--warmup', '0', '--config.per_device_batch=2']
  )
  line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert rc == 0 and FIELDS <= set(line)
  assert (line['bench'], line['task'], line['shape']) == (
    'preset',
    'cyclegan',
    '2x16x16 per domain',
  )
  # runlocal: 64 synthetic images per domain, epoch = max(#A, #B) // batch 2 = 32; 0.5 epochs
  assert (line['steps_per_epoch'], line['total_steps'], line['timed_steps']) == (32, 16, 2)
  assert line['s_per_step'] > 0 and line['compile_s'] > 0 and line['peak_rss_mb'] > 100
  assert line['projected_wall_s'] == pytest.approx(16 * line['s_per_step'], rel=0.01, abs=0.1)


def test_tfds_epoch_comes_from_the_catalog_table():
  """The presets on TFDS data project their step count without the data (spec: 200 epochs)."""
  n_a, n_b = bench_preset.TFDS_TRAIN_SIZES['horse2zebra']
  assert 200 * max(n_a, n_b) == 266_800  # cyclegan_reference's docstring count


def test_human_durations():
  assert [bench_preset._human(s) for s in (12.4, 250, 18_720, 3 * 86400 + 4 * 3600 + 5)] == [
    '12 s',
    '4 min 10 s',
    '5 h 12 min',
    '3 d 4 h',
  ]


@pytest.mark.parametrize('entry', ['module', 'cli'])
def test_bad_content_shape_is_one_line_exit_2(capsys, entry):
  from jaxstyle import cli

  argv = ['--config', NST_BOOK, '--content-hw', '400']
  rc = bench_preset.main(argv) if entry == 'module' else cli.main(['bench', 'preset', *argv])
  assert rc == 2
  err = capsys.readouterr().err.strip()
  assert err.count('\n') == 0 and '--content-hw' in err and 'HxW' in err
