"""`jaxstyle bench adain`: options and the forward case on a tiny frame (seconds).

The train case is left out of the test: its compile (encoder, decoder, encoder + backward) alone
takes ~30 s on a small CPU; `jaxstyle bench adain` runs it (docs/adain.md, "Training").
"""

import argparse

from jaxstyle.tools import bench, bench_adain


def test_adain_forward_line_and_missing_peer(tmp_path):
  parser = argparse.ArgumentParser()
  bench.add_arguments(parser)
  argv = ['adain', '--size', '32', '--steps', '1', '--warmup', '0', '--no-peak', '--with-peer']
  args = parser.parse_args([*argv, '--peer-python', str(tmp_path / 'no-py')])
  assert (args.train_size, args.batch) == (256, 8)  # the reference's crops and batch
  line = bench_adain.bench_forward(args)
  assert line['bench'] == 'adain-forward' and (line['size'], line['batch']) == (32, 1)
  assert line['frames_per_s'] > 0 and line['gflop_per_step'] > 0
  assert 'peer_torch_adain.py 32 1 1 forward' in line['peer_error'] and 'ratio' not in line
