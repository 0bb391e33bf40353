"""`jaxstyle bench pix2pix`: one pix2pix training iteration, the trainer's own step.

The pix2pix task's step (`pix2pix.step`: G's forward, D on (real, detached fake), then G through
the new D; batch norm with its running statistics in the state, dropout on) at the reference's
shape (unet_256, 256x256, batch 1) on random pairs: what training pays per iteration minus input
I/O. `--with-peer` runs `peers/peer_torch_pix2pix.py` (the same networks, losses and Adam in
PyTorch) right after, in the same command, and prints the ratio jaxstyle / PyTorch.
`--filters` shrinks both G and D (and the peer's) for a quick check on a loaded machine.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax

from jaxstyle import parallel
from jaxstyle.errors import UserError, nonnegative_int, positive_int
from jaxstyle.tools import bench_peers

DEFAULT_STEPS = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
  """The flags this bench reads (the timing and peer flags come from `bench._timing`)."""
  p.add_argument('--size', type=positive_int, default=256, help='image side (default 256)')
  p.add_argument('--batch', type=positive_int, default=1, help='per-device batch (default 1)')
  p.add_argument(
    '--filters', type=positive_int, default=64, help='ngf = ndf (default 64, the reference)'
  )
  p.add_argument('--num-downs', type=positive_int, default=8, help='U-Net depth (8 = unet_256)')
  p.add_argument('--devices', type=nonnegative_int, default=1, help='devices (0 = all)')


def bench_config(args: argparse.Namespace) -> Any:
  """The reference preset with the bench's shape, precision and conv implementation."""
  from jaxstyle.pix2pix import presets

  c = presets.pix2pix_base()
  c.data.update(dict(source='synthetic', image_size=args.size, load_size=args.size))
  c.model.update(
    dict(
      num_downs=args.num_downs,
      gen_filters=args.filters,
      disc_filters=args.filters,
      dtype=args.dtype,
      conv_impl=args.conv_impl,
    )
  )
  c.per_device_batch = args.batch
  if args.size % 2**args.num_downs:
    raise UserError(f'--size {args.size} must be a multiple of {2**args.num_downs} (--num-downs)')
  return c


def bench(args: argparse.Namespace) -> dict[str, Any]:
  """Build the state, compile the trainer's step, time `--steps` iterations."""
  from jaxstyle.pix2pix import step as pix2pix_step

  n_dev = args.devices or jax.device_count()
  mesh = parallel.make_mesh(jax.devices()[:n_dev])
  config = bench_config(args)
  timing = bench_peers.time_gan_step(
    mesh,
    lambda: pix2pix_step.init_state(config, jax.random.key(0), args.size),
    pix2pix_step.make_train_step(config, steps_per_epoch=1000),
    (args.batch * n_dev, args.size, args.size, 3),
    ('input', 'target'),
    args.steps,
    args.warmup,
  )
  peer_steps = str(args.peer_steps or args.steps)
  peer_args = [peer_steps, str(args.batch * n_dev), str(args.size), str(args.filters)]
  peer_args.append(str(args.num_downs))
  return bench_peers.step_report(
    args,
    'pix2pix',
    timing,
    ('peer_torch_pix2pix.py', peer_args),
    args.batch * n_dev,
    'loss_G',
    devices=n_dev,
    batch_per_device=args.batch,
    size=args.size,
    filters=args.filters,
    num_downs=args.num_downs,
    dtype=args.dtype,
  )
