"""Benchmark bookkeeping: the FLOP counts behind the GFLOP/s figures the README reports, the JSON lines."""

import json

import jax

from jaxstyle.tools import bench_nst


def test_nst_analytic_flops_match_xla_cost_analysis(monkeypatch):
  """The hand count (forward + input gradient, no weight gradients) is what XLA counts for direct convs.

  A first version counted the backward pass twice and overstated NST GFLOP/s by 1.5x. Winograd is off
  here (conv_impl='cpu_fast'): the count is of direct convs by definition (with it on, XLA counts the smaller GEMMs).
  """
  monkeypatch.delenv('JAXSTYLE_CONV_IMPL', raising=False)
  size = 128  # large enough that the SAME padding taps XLA does not count are < 1 %
  targets, loss_fn, params, x = bench_nst._objective(size, conv_impl='cpu_fast')
  value_and_grad = jax.jit(jax.value_and_grad(lambda x, t, p: loss_fn(x, t, p)[0]))
  cost = value_and_grad.lower(x, targets, params).cost_analysis()
  xla_flops = float(cost['flops'])
  assert abs(bench_nst.analytic_flops(size) - xla_flops) < 0.03 * xla_flops


def test_fid_bench_prints_images_per_s_and_survives_a_missing_peer(tmp_path, capsys):
  """`jaxstyle bench fid` on a tiny input: one JSON line; an absent peer venv is reported, not raised."""
  from jaxstyle import cli

  rc = cli.main(
    [
      'bench',
      'fid',
      '--size',
      '75',
      '--batch',
      '2',
      '--steps',
      '1',
      '--warmup',
      '0',
      '--no-peak',
      '--with-peer',
      '--peer-python',
      str(tmp_path / 'no-python'),
    ]
  )
  line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert rc == 0 and line['bench'] == 'fid'
  assert line['batch'] == 2 and line['size'] == 75 and line['images_per_s'] > 0
  assert line['gflop_per_step'] > 0  # XLA's count: ~11.4 GFLOP per image (resized to 299)
  assert 'no-python' in line['peer_error'] and 'ratio' not in line


def test_each_bench_is_a_sub_command_with_only_its_flags(capsys):
  """`--batch` is the fid batch over all devices under `fid`, and a CycleGAN flag is not a fid flag."""
  import argparse

  from jaxstyle import cli
  from jaxstyle.tools import bench, bench_preset

  parser = argparse.ArgumentParser()
  bench.add_arguments(parser)
  fid = parser.parse_args(['fid'])
  assert (fid.batch, fid.steps, fid.run_bench) == (
    50,
    bench.bench_fid.DEFAULT_STEPS,
    bench.bench_fid.bench,
  )
  assert not hasattr(fid, 'arch') and not hasattr(fid, 'outer')
  assert parser.parse_args(['cyclegan']).batch == 1 and parser.parse_args(['fast-style']).batch == 4
  assert parser.parse_args(['preset', '--config', 'c.py']).run_command is bench_preset.run
  for argv, flag in (
    (['fid', '--arch', 'unet128'], '--arch'),
    (['nst-sweep', '--with-peer'], '--with-peer'),
    (['translate', '--with-peer'], '--with-peer'),
    (['gemm', '--size', '8'], '--size'),
  ):
    assert cli.main(['bench', *argv]) == 2, argv
    assert f'unrecognized arguments: {flag}' in capsys.readouterr().err
