"""`jaxstyle bench nst-sweep`: one sweep process against separate stylize processes, end to end."""

import json

import pytest

from jaxstyle import cli


@pytest.mark.slow  # three tiny `jaxstyle stylize` processes (imports and compiles)
def test_sweep_bench_times_both_sides_and_gets_the_same_images(capsys):
  rc = cli.main(
    [
      'bench',
      'nst-sweep',
      '--size',
      '16',
      '--segments',
      '2',
      '--segment-iters',
      '1',
      '--style-weights',
      '1,100',
    ]
  )
  line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert rc == 0 and line['bench'] == 'nst-sweep'
  assert line['sweep_strategy'].split()[0] in ('concurrent', 'sequential')  # auto on a CPU
  assert [len(r['segments_s']) for r in line['separate_runs']] == [2, 2]
  assert len(line['sweep_run']['segments_s']) == 2
  # Both run each member through the same executable as its separate run.
  assert line['image_max_abs_diff_uint8'] == [0, 0]
  total = sum(r['wall_s'] for r in line['separate_runs'])
  assert line['separate_total_s'] == pytest.approx(total, abs=0.02)
  assert line['iterations_per_member'] == 2
  assert line['ratio'] == pytest.approx(line['sweep_total_s'] / total, abs=1e-3)
  assert 0 < line['steady_segments_ratio'] and line['target_ratio'] == 0.8
