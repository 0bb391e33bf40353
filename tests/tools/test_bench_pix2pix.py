"""`jaxstyle bench pix2pix`: the trainer's step on a tiny U-Net (seconds), and its PyTorch peer.

The peer runs only where peer-venv (torch) exists: CI has none, and then the line reports the
missing peer instead of failing.
"""

import argparse
import os

import pytest

from jaxstyle.tools import bench, bench_peers, bench_pix2pix

TINY = ['--size', '32', '--num-downs', '5', '--filters', '2', '--steps', '1', '--warmup', '0']


def _args(*extra):
  parser = argparse.ArgumentParser()
  bench.add_arguments(parser)
  return parser.parse_args(['pix2pix', *TINY, '--no-peak', *extra])


@pytest.mark.slow  # ~40 s under load: one compile of the U-Net + PatchGAN step
def test_pix2pix_line_and_missing_peer(tmp_path):
  args = _args('--with-peer', '--peer-python', str(tmp_path / 'no-py'))
  line = bench_pix2pix.bench(args)
  assert line['bench'] == 'pix2pix' and (line['size'], line['batch_per_device']) == (32, 1)
  assert line['images_per_s'] > 0 and line['gflop_per_step'] > 0 and line['loss_G'] > 0
  # The peer gets the same shape: steps, batch, size, ngf, num_downs.
  assert 'peer_torch_pix2pix.py 1 1 32 2 5' in line['peer_error'] and 'ratio' not in line


def test_size_must_fit_the_unet():
  with pytest.raises(bench.UserError, match='multiple of 32'):
    bench_pix2pix.bench_config(_args('--size', '48'))


@pytest.mark.slow  # ~20 s under load, mostly torch's import
@pytest.mark.skipif(
  not os.path.exists(_args().peer_python), reason='no peer-venv (torch) in this checkout'
)
def test_peer_runs_and_reports_seconds():
  res = bench_peers.run_peer(_args(), 'peer_torch_pix2pix.py', ['1', '1', '32', '2', '5'])
  assert 'peer_error' not in res, res
  assert res['peer_s'] > 0
