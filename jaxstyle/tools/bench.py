"""`jaxstyle bench`: speed benchmarks, each printing one JSON line (docs/performance.md).

  jaxstyle bench cyclegan --arch unet128|resnet256 --batch N   one training iteration (G then D)
  jaxstyle bench translate --arch unet128 --batch N            generator forward, images/s
  jaxstyle bench nst-eval --size 256                           one NST loss+gradient (bench_nst.py)
  jaxstyle bench nst-run --size 256 --outer 3                  a full L-BFGS NST run
  jaxstyle bench nst-sweep --size 256 --style-weights 10,100,1000  sweep vs N runs (bench_nst_sweep.py)
  jaxstyle bench fid --size 299 --batch 50                     Inception features, images/s (bench_fid.py)
  jaxstyle bench data --source both --workers 1,2,4            input pipeline, images/s (bench_data.py)
  jaxstyle bench fast-style --size 512 --train-size 256 --batch 4  net forward + train step (bench_fast_style.py)
  jaxstyle bench adain --size 512 --train-size 256 --batch 8   stylisation + train step (bench_adain.py)
  jaxstyle bench pix2pix --size 256 --batch 1                  one pix2pix training iteration (bench_pix2pix.py)
  jaxstyle bench cut --size 256 --mode cut|fastcut             one CUT training iteration (bench_cut.py)
  jaxstyle bench gemm                                          this machine's f32 GEMM peak
  jaxstyle bench preset --config configs/X.py                  a preset's step, projected wall time
  ... [--with-peer] [--peer-python P] [--peer-dir D]           + the PyTorch peer, same command
  ... --conv-impl xla|subpixel|cpu_fast|cpu_winograd            A/B of the conv implementation

Each benchmark is a sub-command with only the flags it reads (`jaxstyle bench BENCH --help`).

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
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import models, parallel
from jaxstyle.cyclegan import step as train_state
from jaxstyle.errors import UserError, nonnegative_int, positive_int
from jaxstyle.kernels import dispatch
from jaxstyle.tools import (
  bench_adain,
  bench_cut,
  bench_data,
  bench_fast_style,
  bench_fid,
  bench_nst,
  bench_nst_sweep,
  bench_peers,
  bench_pix2pix,
  bench_preset,
)
from jaxstyle.tools.bench_archs import ARCHS as ARCHS
from jaxstyle.tools.bench_archs import bench_config


def _timing(p: argparse.ArgumentParser, steps: int, peer: bool = True) -> None:
  """--steps/--warmup and the report's GEMM peak and PyTorch peer flags (bench_peers.report)."""
  p.add_argument('--steps', type=positive_int, default=steps, help=f'timed steps (default {steps})')
  p.add_argument('--warmup', type=nonnegative_int, default=2)
  bench_peers.add_common_arguments(p, peer=peer)


def _precision(p: argparse.ArgumentParser) -> None:
  p.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
  p.add_argument(
    '--conv-impl',
    default='auto',
    choices=('auto', *dispatch.CONV_IMPLS),
    help='conv implementation (kernels/dispatch.py); auto: by backend',
  )


def _model(
  p: argparse.ArgumentParser,
  batch: int = 1,
  batch_help: str = 'per-device batch',
  arch: bool = True,
  size_help: str = 'override the image side',
) -> None:
  """The network flags: --size, --batch, --dtype, --conv-impl (and the CycleGAN --arch, --lambda-id)."""
  if arch:
    p.add_argument('--arch', choices=list(ARCHS), default='unet128')
    p.add_argument('--lambda-id', type=float, default=5.0, help='0 skips the identity passes')
  p.add_argument('--size', type=nonnegative_int, default=0, help=size_help)
  p.add_argument(
    '--batch', type=positive_int, default=batch, help=f'{batch_help} (default {batch})'
  )
  _precision(p)


def _add_cyclegan(p: argparse.ArgumentParser) -> None:
  _model(p)
  p.add_argument(
    '--devices', type=nonnegative_int, default=1, help='data-parallel devices (0 = all)'
  )
  p.add_argument(
    '--profile',
    default='',
    help='write a jax.profiler trace of the timed steps to '
    'this directory (open with xprof / TensorBoard)',
  )
  _timing(p, 20)


def _add_translate(p: argparse.ArgumentParser) -> None:
  _model(p, batch_help='images per generator call')
  _timing(p, 20, peer=False)


def _add_nst(outer: bool) -> Callable[[argparse.ArgumentParser], None]:
  def add(p: argparse.ArgumentParser) -> None:
    p.add_argument('--size', type=positive_int, default=256, help='image side (default 256)')
    _precision(p)
    if outer:
      p.add_argument('--outer', type=positive_int, default=3, help='L-BFGS segments of 20')
    _timing(p, 20)

  return add


def _add_nst_sweep(p: argparse.ArgumentParser) -> None:
  p.add_argument('--size', type=nonnegative_int, default=0, help='output height (default 256)')
  bench_nst_sweep.add_arguments(p)


def _add_fid(p: argparse.ArgumentParser) -> None:
  p.add_argument('--size', type=nonnegative_int, default=0, help='image side (default 299)')
  p.add_argument(
    '--batch',
    type=positive_int,
    default=bench_fid.DEFAULT_BATCH,
    help=f'images per step over all devices (default {bench_fid.DEFAULT_BATCH})',
  )
  p.add_argument('--devices', type=nonnegative_int, default=1, help='devices (0 = all)')
  _timing(p, bench_fid.DEFAULT_STEPS)


def _add_forward_and_train(module: Any) -> Callable[[argparse.ArgumentParser], None]:
  """The flags of a feed-forward style bench (`bench_fast_style`, `bench_adain`): a forward at
  --size and a train step at --train-size, --batch."""

  def add(p: argparse.ArgumentParser) -> None:
    _model(
      p,
      batch=module.DEFAULT_BATCH,
      batch_help='train-step batch (the forward uses 1)',
      arch=False,
      size_help=f'forward frame side (default {module.DEFAULT_SIZE})',
    )
    module.add_arguments(p)
    _timing(p, module.DEFAULT_STEPS)

  return add


def _add_pix2pix(p: argparse.ArgumentParser) -> None:
  bench_pix2pix.add_arguments(p)
  _precision(p)
  _timing(p, bench_pix2pix.DEFAULT_STEPS)


def _add_cut(p: argparse.ArgumentParser) -> None:
  bench_cut.add_arguments(p)
  _precision(p)
  _timing(p, bench_cut.DEFAULT_STEPS)


def _add_data(p: argparse.ArgumentParser) -> None:
  _model(
    p, batch_help='batch of the streams (and of --train-steps)', size_help='crop side (default 256)'
  )
  bench_data.add_arguments(p)


def _gemm(args: argparse.Namespace) -> dict[str, Any]:
  return {'bench': 'gemm', 'gemm_peak_gflops': round(bench_peers.gemm_peak_gflops(), 2)}


def bench_translate(args: argparse.Namespace) -> dict[str, Any]:
  """Jitted generator forward on a batch (what `jaxstyle translate` pays per batch minus I/O)."""
  size = args.size or ARCHS[args.arch][0]
  cfg = bench_config(args.arch, args.dtype, args.lambda_id, args.conv_impl).model
  gen = models.make_generator(cfg)
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (args.batch, size, size, 3)), jnp.float32)
  params = jax.jit(gen.init)(jax.random.key(0), x)['params']
  t0 = time.perf_counter()
  compiled = jax.jit(lambda p, x: gen.apply({'params': p}, x)).lower(params, x).compile()
  compile_s = time.perf_counter() - t0
  times = bench_peers.time_calls(
    lambda: jax.block_until_ready(compiled(params, x)), args.steps, args.warmup
  )
  out = bench_peers.report(
    args,
    'translate',
    times,
    compile_s,
    bench_peers.xla_flops(compiled),
    None,
    arch=args.arch,
    batch=args.batch,
    size=size,
    flops_source='XLA cost analysis',
    peer_note='no translate peer',
  )
  out['images_per_s'] = round(args.batch / out['median_s'], 2)
  return out


def bench_cyclegan(args: argparse.Namespace) -> dict[str, Any]:
  """Build the state, compile the trainer's step, time `--steps` iterations."""
  n_dev = args.devices or jax.device_count()
  mesh = parallel.make_mesh(jax.devices()[:n_dev])
  size = args.size or ARCHS[args.arch][0]
  config = bench_config(args.arch, args.dtype, args.lambda_id, args.conv_impl)
  timing = bench_peers.time_gan_step(
    mesh,
    lambda: train_state.init_state(config, jax.random.key(0), size, n_dev),
    train_state.make_train_step(config, steps_per_epoch=1000),
    (args.batch * n_dev, size, size, config.model.in_channels),
    'AB',
    args.steps,
    args.warmup,
    profile=args.profile,
  )
  peer_args = [args.arch, str(args.peer_steps or args.steps), str(args.batch * n_dev), str(size)]
  return bench_peers.step_report(
    args,
    'cyclegan',
    timing,
    ('peer_torch_cyclegan.py', peer_args),
    args.batch * n_dev,
    'loss_G',
    flops_source='XLA cost analysis of the compiled step (executed FLOPs: Winograd '
    'layers count their own, smaller, GEMMs)',
    arch=args.arch,
    devices=n_dev,
    batch_per_device=args.batch,
    size=size,
    dtype=args.dtype,
    lambda_id=args.lambda_id,
  )


# name -> (help, add its flags, run: args -> one JSON line's dict, or a list of them).
BENCHES: dict[
  str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], Any]]
] = {
  'cyclegan': (
    "one CycleGAN training iteration (G then D), the trainer's step",
    _add_cyclegan,
    bench_cyclegan,
  ),
  'translate': ('generator forward, images/s', _add_translate, bench_translate),
  'nst-eval': ('one NST loss + gradient (bench_nst.py)', _add_nst(False), bench_nst.bench_eval),
  'nst-run': ('a full L-BFGS NST run', _add_nst(True), bench_nst.bench_run),
  'nst-sweep': (
    'a style-weight sweep vs N separate runs (bench_nst_sweep.py)',
    _add_nst_sweep,
    bench_nst_sweep.bench,
  ),
  'fid': ('Inception features, images/s (bench_fid.py)', _add_fid, bench_fid.bench),
  'fast-style': (
    'fast-style net forward + train step (bench_fast_style.py)',
    _add_forward_and_train(bench_fast_style),
    bench_fast_style.bench,
  ),
  'adain': (
    'AdaIN stylisation forward + train step (bench_adain.py)',
    _add_forward_and_train(bench_adain),
    bench_adain.bench,
  ),
  'pix2pix': (
    "one pix2pix training iteration (D then G), the trainer's step (bench_pix2pix.py)",
    _add_pix2pix,
    bench_pix2pix.bench,
  ),
  'cut': (
    "one CUT / FastCUT training iteration (D then G and F), the trainer's step (bench_cut.py)",
    _add_cut,
    bench_cut.bench,
  ),
  'data': ('input pipeline, images/s (bench_data.py)', _add_data, bench_data.bench),
  'gemm': ("this machine's f32 GEMM peak, GFLOP/s", lambda p: None, _gemm),
}
# Sub-commands that print their own line: `preset` (bench_preset.py) also takes --config.* extras.
COMMANDS = {
  'preset': (
    "a config's real step at its real shapes, and its projected wall time (bench_preset.py)",
    bench_preset,
  )
}
ACCEPTS_CONFIG_OVERRIDES = True  # for `preset`; `run` refuses extras for every other bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """One sub-command per benchmark, each with only the flags it reads (`jaxstyle bench B --help`)."""
  sub = parser.add_subparsers(dest='task', metavar='BENCH', required=True)
  entries = [(name, text, add, {'run_bench': fn}) for name, (text, add, fn) in BENCHES.items()]
  entries += [
    (name, text, module.add_arguments, {'run_command': module.run})
    for name, (text, module) in COMMANDS.items()
  ]
  for name, help_text, add, defaults in entries:
    p = sub.add_parser(name, help=help_text, description=help_text)
    add(p)
    p.add_argument(
      '--debug',
      action='store_true',
      default=argparse.SUPPRESS,
      help='show the full traceback of errors (also JAXSTYLE_DEBUG=1)',
    )
    p.set_defaults(**defaults)


def run(args: argparse.Namespace) -> int:
  """Runs the chosen bench and prints its JSON line(s), each with the conv implementation it ran."""
  if hasattr(args, 'run_command'):
    return args.run_command(args)
  if getattr(args, 'unknown', None):
    raise UserError(f'unrecognized arguments: {" ".join(args.unknown)}')
  result = args.run_bench(args)
  lines = result if isinstance(result, list) else [result]
  for line in lines:
    for key, value in dispatch.runtime_record(getattr(args, 'conv_impl', 'auto')).items():
      line.setdefault(key, value)  # a bench's own `devices` (those it used) wins
    print(json.dumps(line))
  return 0 if all(np.isfinite(line.get('loss_G', line.get('loss', 0.0))) for line in lines) else 1


if (
  __name__ == '__main__'
):  # `python -m jaxstyle.tools.bench cyclegan ...` == `jaxstyle bench cyclegan ...`
  import sys

  from jaxstyle import cli

  sys.exit(cli.main(['bench', *sys.argv[1:]]))
