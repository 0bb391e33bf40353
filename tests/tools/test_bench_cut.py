"""`jaxstyle bench cut`: the trainer's CUT step on tiny nets (seconds), and its PyTorch peer.

The peer runs only where peer-venv (torch) exists: CI has none, and then the line reports the
missing peer instead of failing.
"""

import argparse
import os

import pytest

from jaxstyle.errors import ConfigError
from jaxstyle.tools import bench, bench_cut, bench_peers

TINY = ['--size', '32', '--filters', '2', '--steps', '1', '--warmup', '0']


def _args(*extra):
  parser = argparse.ArgumentParser()
  bench.add_arguments(parser)
  return parser.parse_args(['cut', *TINY, '--no-peak', *extra])


@pytest.mark.slow  # ~60 s under load: one compile of the CUT step
def test_cut_line_and_missing_peer(tmp_path):
  args = _args('--mode', 'fastcut', '--with-peer', '--peer-python', str(tmp_path / 'no-py'))
  line = bench_cut.bench(args)
  assert line['bench'] == 'cut' and (line['size'], line['mode']) == (32, 'fastcut')
  assert line['images_per_s'] > 0 and line['gflop_per_step'] > 0 and line['loss_G'] > 0
  # The peer gets the same shape and mode: steps, batch, size, ngf, mode.
  assert 'peer_torch_cut.py 1 1 32 2 fastcut' in line['peer_error'] and 'ratio' not in line


def test_config_is_the_papers_at_the_benchs_shape():
  c = bench_cut.bench_config(_args('--mode', 'fastcut'))
  assert (c.data.image_size, c.model.gen_filters, c.model.n_blocks) == (32, 2, 9)
  assert (c.loss.lambda_nce, c.nce.flip_equivariance, c.nce.num_patches) == (10.0, True, 256)
  with pytest.raises(ConfigError, match='multiple of 4'):
    bench_cut.bench_config(_args('--size', '30'))


@pytest.mark.slow  # ~1 min under load, mostly torch's import and the two NCE passes
@pytest.mark.skipif(
  not os.path.exists(_args().peer_python), reason='no peer-venv (torch) in this checkout'
)
def test_peer_runs_and_reports_seconds():
  res = bench_peers.run_peer(_args(), 'peer_torch_cut.py', ['1', '1', '32', '2', 'cut'])
  assert 'peer_error' not in res, res
  assert res['peer_s'] > 0
