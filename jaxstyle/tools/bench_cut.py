"""`jaxstyle bench cut`: one CUT (or FastCUT) training iteration, the trainer's own step.

The CUT task's step (`cut.step`: one generator pass, D on the detached fake, then G and F through
the new D with PatchNCE) at the paper's shape (anti-aliased ResNet-9 g64, PatchGAN d64, 256²,
batch 1, 256 patches on the taps 0, 4, 8, 12, 16) on random images: what training pays per
iteration minus input I/O. `--with-peer` runs `peers/peer_torch_cut.py` (the same networks,
losses and Adam in PyTorch, as the reference computes them) right after, in the same command, and
prints the ratio jaxstyle / PyTorch. `--filters` shrinks G and D (and the peer's) for a quick
check on a loaded machine.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax

from jaxstyle import parallel
from jaxstyle.errors import nonnegative_int, positive_int
from jaxstyle.tools import bench_peers

DEFAULT_STEPS = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
  """The flags this bench reads (the timing and peer flags come from `bench._timing`)."""
  p.add_argument('--size', type=positive_int, default=256, help='image side (default 256)')
  p.add_argument('--batch', type=positive_int, default=1, help='per-device batch (default 1)')
  p.add_argument(
    '--filters', type=positive_int, default=64, help='ngf = ndf (default 64, the reference)'
  )
  p.add_argument('--mode', choices=('cut', 'fastcut'), default='cut', help='CUT or FastCUT')
  p.add_argument('--devices', type=nonnegative_int, default=1, help='devices (0 = all)')


def bench_config(args: argparse.Namespace) -> Any:
  """The paper's preset with the bench's shape, mode, precision and conv implementation."""
  from jaxstyle.cut import presets

  c = presets.cut_base()
  if args.mode == 'fastcut':
    presets.fastcut(c)
  c.data.update(dict(source='synthetic', image_size=args.size, load_size=0))
  c.model.update(
    dict(
      gen_filters=args.filters,
      disc_filters=args.filters,
      dtype=args.dtype,
      conv_impl=args.conv_impl,
    )
  )
  c.per_device_batch = args.batch
  return presets.validate(c)


def bench(args: argparse.Namespace) -> dict[str, Any]:
  """Build the state, compile the trainer's step, time `--steps` iterations."""
  from jaxstyle.cut import step as cut_step

  n_dev = args.devices or jax.device_count()
  mesh = parallel.make_mesh(jax.devices()[:n_dev])
  config = bench_config(args)
  timing = bench_peers.time_gan_step(
    mesh,
    lambda: cut_step.init_state(config, jax.random.key(0), args.size, n_dev),
    cut_step.make_train_step(config, steps_per_epoch=1000),
    (args.batch * n_dev, args.size, args.size, 3),
    'AB',
    args.steps,
    args.warmup,
  )
  peer_steps = str(args.peer_steps or args.steps)
  peer_args = [peer_steps, str(args.batch * n_dev), str(args.size), str(args.filters), args.mode]
  return bench_peers.step_report(
    args,
    'cut',
    timing,
    ('peer_torch_cut.py', peer_args),
    args.batch * n_dev,
    'loss_G',
    mode=args.mode,
    devices=n_dev,
    batch_per_device=args.batch,
    size=args.size,
    filters=args.filters,
    dtype=args.dtype,
  )
