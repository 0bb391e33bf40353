"""`jaxstyle bench`: speed benchmarks, each printing one JSON line (docs/performance.md).

  jaxstyle bench cyclegan --arch unet128|resnet256 --batch N   one training iteration (G then D)
  jaxstyle bench translate --arch unet128 --batch N            generator forward, images/s
  jaxstyle bench nst-eval --size 256                           one NST loss+gradient (bench_nst.py)
  jaxstyle bench nst-run --size 256 --outer 3                  a full L-BFGS NST run
  jaxstyle bench nst-sweep --size 256 --style-weights 10,100,1000  sweep vs N runs (bench_nst_sweep.py)
  jaxstyle bench fid --size 299 --batch 50                     Inception features, images/s (bench_fid.py)
  jaxstyle bench data --source both --workers 1,2,4            input pipeline, images/s (bench_data.py)
  jaxstyle bench fast-style --size 512 --train-size 256 --batch 4  net forward + train step (bench_fast_style.py)
  ... [--with-peer] [--peer-python P] [--peer-dir D]           + the PyTorch peer, same command
  ... --conv-impl xla|subpixel|cpu_fast|cpu_winograd            A/B of the conv implementation

`cyclegan` runs the trainer's own step (`train_state.make_train_step` under
`parallel.compile_step`, pool included) on random images: what training pays per iteration minus
input I/O. Each line has the conv implementation and versions it ran with, the median time, compile time, peak RSS, GFLOP/s and its fraction of an
f32 GEMM peak measured in the same process (bench_peers.py). CycleGAN at batch 1 is latency-bound:
expect far from peak FLOP/s.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import models, parallel
from jaxstyle.cyclegan import step as train_state
from jaxstyle.errors import nonnegative_int, positive_int
from jaxstyle.kernels import dispatch
from jaxstyle.tools import (
  bench_data,
  bench_fast_style,
  bench_fid,
  bench_nst,
  bench_nst_sweep,
  bench_peers,
)
from jaxstyle.tools.bench_archs import ARCHS as ARCHS
from jaxstyle.tools.bench_archs import bench_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Options of `jaxstyle bench`."""
  parser.add_argument('task', choices=['cyclegan', 'translate', 'nst-eval', 'nst-run', 'nst-sweep',
                                      'gemm', 'fid', 'data', 'fast-style'])
  parser.add_argument('--arch', choices=list(ARCHS), default='unet128')
  parser.add_argument('--batch', type=positive_int, default=None,
                      help='per-device batch (default 1); fid: over all devices (default 50); '
                           'fast-style: train step (default 4)')
  parser.add_argument('--devices', type=nonnegative_int, default=1, help='data-parallel devices (0 = all)')
  parser.add_argument('--size', type=nonnegative_int, default=0, help='override the image side')
  parser.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
  parser.add_argument('--lambda-id', type=float, default=5.0, help='0 skips the identity passes')
  parser.add_argument('--steps', type=positive_int, default=None,
                      help=f'timed steps (default 20; fid {bench_fid.DEFAULT_STEPS}; '
                           f'fast-style {bench_fast_style.DEFAULT_STEPS})')
  parser.add_argument('--warmup', type=nonnegative_int, default=2)
  parser.add_argument('--outer', type=positive_int, default=3, help='nst-run: L-BFGS segments of 20')
  parser.add_argument('--conv-impl', default='auto', choices=('auto', *dispatch.CONV_IMPLS),
                      help='conv implementation (kernels/dispatch.py); auto: by backend')
  parser.add_argument('--profile', default='', help='cyclegan: write a jax.profiler trace of the '
                      'timed steps to this directory (open with xprof / TensorBoard)')
  bench_peers.add_common_arguments(parser)
  bench_data.add_arguments(parser)
  bench_fast_style.add_arguments(parser)
  bench_nst_sweep.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
  """Dispatches to one bench and prints its JSON line."""
  fid = args.task == 'fid'
  batch, steps = {'fid': (bench_fid.DEFAULT_BATCH, bench_fid.DEFAULT_STEPS),
                  'fast-style': (bench_fast_style.DEFAULT_BATCH, bench_fast_style.DEFAULT_STEPS),
                  }.get(args.task, (1, 20))
  args.batch = args.batch or batch
  args.steps = args.steps or steps
  if fid:
    result = bench_fid.bench(args)
  elif args.task == 'fast-style':
    result = bench_fast_style.bench(args)  # a list: one line per case (forward, train step)
  elif args.task == 'data':
    result = bench_data.bench(args)
  elif args.task == 'nst-sweep':
    result = bench_nst_sweep.bench(args)
  elif args.task in ('nst-eval', 'nst-run'):
    args.size = args.size or 256
    result = (bench_nst.bench_eval if args.task == 'nst-eval' else bench_nst.bench_run)(args)
  elif args.task == 'gemm':
    result = {'bench': 'gemm', 'gemm_peak_gflops': round(bench_peers.gemm_peak_gflops(), 2)}
  elif args.task == 'translate':
    result = bench_translate(args)
  else:
    result = bench_cyclegan(args)
  lines = result if isinstance(result, list) else [result]
  for line in lines:
    for key, value in dispatch.runtime_record(args.conv_impl).items():
      line.setdefault(key, value)  # a bench's own `devices` (those it used) wins
    print(json.dumps(line))
  return 0 if all(np.isfinite(line.get('loss_G', line.get('loss', 0.0))) for line in lines) else 1


def bench_translate(args: argparse.Namespace) -> dict[str, Any]:
  """Jitted generator forward on a batch (what `jaxstyle translate` pays per batch minus I/O)."""
  size = args.size or ARCHS[args.arch][0]
  cfg = bench_config(args.arch, args.dtype, args.lambda_id, args.conv_impl).model
  gen = models.make_generator(cfg)
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (args.batch, size, size, 3)),
                  jnp.float32)
  params = jax.jit(gen.init)(jax.random.key(0), x)['params']
  t0 = time.perf_counter()
  compiled = jax.jit(lambda p, x: gen.apply({'params': p}, x)).lower(params, x).compile()
  compile_s = time.perf_counter() - t0
  times = bench_peers.time_calls(lambda: jax.block_until_ready(compiled(params, x)),
                                 args.steps, args.warmup)
  out = bench_peers.report(args, 'translate', times, compile_s, bench_peers.xla_flops(compiled),
                           None, arch=args.arch, batch=args.batch, size=size,
                           flops_source='XLA cost analysis', peer_note='no translate peer')
  out['images_per_s'] = round(args.batch / out['median_s'], 2)
  return out


def bench_cyclegan(args: argparse.Namespace) -> dict[str, Any]:
  """Build the state, compile the trainer's step, time `--steps` iterations."""
  n_dev = args.devices or jax.device_count()
  mesh = parallel.make_mesh(jax.devices()[:n_dev])
  size = args.size or ARCHS[args.arch][0]
  config = bench_config(args.arch, args.dtype, args.lambda_id, args.conv_impl)
  t0 = time.perf_counter()
  state = train_state.init_state(config, jax.random.key(0), size, n_dev)
  specs = parallel.state_specs(state)
  state = jax.block_until_ready(jax.device_put(state, parallel.shardings(mesh, specs)))
  init_s = time.perf_counter() - t0

  rng = np.random.default_rng(0)
  shape = (args.batch * n_dev, size, size, config.model.in_channels)
  batch = parallel.global_batch_from_local(
      mesh, {d: rng.uniform(-1, 1, shape).astype(np.float32) for d in 'AB'})
  step = parallel.compile_step(train_state.make_train_step(config, steps_per_epoch=1000),
                               mesh, specs)
  t0 = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0

  box = {'state': state}

  def one_step() -> None:
    box['state'], metrics = compiled(box['state'], batch)
    box['loss'] = float(jax.device_get(metrics['train/loss_G']))  # syncs: one step per timing

  if args.profile:
    one_step()  # warm outside the trace
    with jax.profiler.trace(args.profile):
      times = bench_peers.time_calls(one_step, args.steps, 0)
  else:
    times = bench_peers.time_calls(one_step, args.steps, args.warmup)
  peer_args = [args.arch, str(args.peer_steps or args.steps), str(args.batch * n_dev), str(size)]
  out = bench_peers.report(
      args, 'cyclegan', times, compile_s, bench_peers.xla_flops(compiled),
      ('peer_torch_cyclegan.py', peer_args), arch=args.arch, devices=n_dev,
      batch_per_device=args.batch, size=size, dtype=args.dtype, lambda_id=args.lambda_id,
      init_s=round(init_s, 2),
      flops_source='XLA cost analysis of the compiled step (executed FLOPs: Winograd '
                   'layers count their own, smaller, GEMMs)')
  out['images_per_s'] = round(args.batch * n_dev / out['median_s'], 2)
  out['loss_G'] = round(box['loss'], 4)
  return out


if __name__ == '__main__':  # `python -m jaxstyle.tools.bench cyclegan ...` == `jaxstyle bench cyclegan ...`
  import sys

  from jaxstyle import cli
  sys.exit(cli.main(['bench', *sys.argv[1:]]))
