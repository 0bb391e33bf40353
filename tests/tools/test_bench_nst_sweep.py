"""`jaxstyle bench nst-sweep`: one sweep command against separate stylize commands, end to end.

The bench's three `jaxstyle stylize` command lines run in this process (through `cli.main`, the
console script's entry point) instead of three fresh Pythons: the same parsing, runs, files and
output, with imports and the compile paid once. That the sweep's images equal separate runs' is
proven in tests/nst/test_stylize.py; here it is the bench's own reading of them.
"""
import contextlib
import io
import json
import subprocess
import sys

import pytest

from jaxstyle import cli
from jaxstyle.tools import bench_nst_sweep

_RUN = subprocess.run


def _in_process(cmd, **kwargs):
  """subprocess.run, but `python -m jaxstyle.cli ...` runs in cli.main with its output captured."""
  if list(cmd[:3]) != [sys.executable, '-m', 'jaxstyle.cli']:
    return _RUN(cmd, **kwargs)  # anything else (a library probing the machine) runs as asked
  assert kwargs == dict(capture_output=True, text=True, check=False)
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    rc = cli.main(cmd[3:])
  return subprocess.CompletedProcess(cmd, rc, out.getvalue(), err.getvalue())


@pytest.mark.slow  # three tiny stylize runs
def test_sweep_bench_times_both_sides_and_gets_the_same_images(capsys, monkeypatch):
  monkeypatch.setattr(bench_nst_sweep.subprocess, 'run', _in_process)  # the module's: all callers
  rc = cli.main(['bench', 'nst-sweep', '--size', '16', '--segments', '2', '--segment-iters', '1',
                 '--style-weights', '1,100'])
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
