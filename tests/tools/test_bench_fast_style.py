"""`jaxstyle bench fast-style`: options and the forward case on a tiny frame (seconds).

The train case is left out: its compile (VGG19 + backward) alone takes ~30 s on a small CPU.
"""

import argparse

from jaxstyle.tools import bench, bench_fast_style


def test_fast_style_forward_line_and_missing_peer(tmp_path):
  parser = argparse.ArgumentParser()
  bench.add_arguments(parser)
  args = parser.parse_args(
    [
      'fast-style',
      '--size',
      '32',
      '--steps',
      '1',
      '--warmup',
      '0',
      '--no-peak',
      '--with-peer',
      '--peer-python',
      str(tmp_path / 'no-py'),
    ]
  )
  assert (args.train_size, args.upsample, args.batch) == (256, 'resize', 4)  # the train step's
  line = bench_fast_style.bench_forward(args)
  assert line['bench'] == 'fast-style-forward' and (line['size'], line['batch']) == (32, 1)
  assert line['output'] == 'tanh' and line['frames_per_s'] > 0 and line['gflop_per_step'] > 0
  assert '32 1 1 resize forward' in line['peer_error'] and 'ratio' not in line
