"""`jaxstyle demo`: build every CycleGAN network, run a jitted forward on random input, print a table.

A smoke test of the installation and the accelerator before any data or training is involved:
parameter counts should match docs/design/cyclegan.md (11,378,179 for the reference ResNet-9, and so on).

  jaxstyle demo --size 128 --batch 1 [--dtype bfloat16] [--fast-init]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import models
from jaxstyle.cyclegan import presets
from jaxstyle.errors import UserError, positive_int

# name -> overrides of presets.reference_model; the book nets use the book's norm (keras-contrib,
# eps 1e-3).
BOOK = dict(norm_eps=1e-3, eps_mode='std')
NETS: dict[str, dict[str, Any]] = {
  'G resnet-9 (reference)': dict(generator='resnet', n_blocks=9),
  'G resnet-6 (reference)': dict(generator='resnet', n_blocks=6),
  'G resnet-9 resize_conv': dict(generator='resnet', n_blocks=9, upsample='resize_conv'),
  'G resnet_book g32': dict(generator='resnet_book', gen_filters=32, **BOOK),
  'G unet_book g32': dict(generator='unet_book', gen_filters=32, init='keras', **BOOK),
  'D patchgan ndf64': dict(discriminator='patchgan'),
  'D patchgan_book f32': dict(discriminator='patchgan_book', disc_filters=32, **BOOK),
  'D patchgan_book f64': dict(discriminator='patchgan_book', disc_filters=64, **BOOK),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Options of `jaxstyle demo`."""
  parser.add_argument(
    '--size', type=positive_int, default=64, help='square input side (multiple of 16)'
  )
  parser.add_argument('--batch', type=positive_int, default=1)
  parser.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
  parser.add_argument('--repeats', type=positive_int, default=5, help='timed forwards per net')
  parser.add_argument(
    '--fast-init',
    action='store_true',
    help='fill params from NumPy instead of net.init (compiling the init is '
    'slow on CPU; the forward is the same)',
  )
  parser.add_argument('--only', default='', help='substring filter on the net names')


def _params(net: Any, x: jax.Array, fast: bool) -> Any:
  if not fast:
    return jax.jit(net.init)(jax.random.key(0), x)['params']
  abstract = jax.eval_shape(net.init, jax.random.key(0), x)['params']
  rng = np.random.default_rng(0)
  return jax.tree.map(
    lambda a: jnp.asarray(0.02 * rng.standard_normal(a.shape), jnp.float32), abstract
  )


def run(args: argparse.Namespace) -> int:
  """Print name, parameter count, output shape, compile and forward time of every network."""
  if args.size % 16:
    raise UserError(f'--size must be a multiple of 16 (the book U-Net), got {args.size}')
  print(f'devices: {jax.devices()}  input: {args.batch}x{args.size}x{args.size}x3 {args.dtype}')
  header = f'{"network":26s} {"params":>12s} {"output":>18s} {"compile s":>10s} {"forward ms":>11s}'
  print(header)
  print('-' * len(header))
  x = jax.random.uniform(
    jax.random.key(1), (args.batch, args.size, args.size, 3), minval=-1, maxval=1
  )
  for name, overrides in NETS.items():
    if args.only and args.only not in name:
      continue
    cfg = presets.reference_model(**overrides, dtype=args.dtype)
    net = models.make_generator(cfg) if 'generator' in overrides else models.make_discriminator(cfg)
    params = _params(net, x, args.fast_init)
    n_params = sum(p.size for p in jax.tree.leaves(params))
    forward = jax.jit(net.apply)
    t0 = time.perf_counter()
    y = jax.block_until_ready(forward({'params': params}, x))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(max(args.repeats, 1)):
      t0 = time.perf_counter()
      jax.block_until_ready(forward({'params': params}, x))
      times.append(1e3 * (time.perf_counter() - t0))
    if not bool(jnp.all(jnp.isfinite(y))):
      print(f'{name}: non-finite output')
      return 1
    print(
      f'{name:26s} {n_params:12,d} {str(tuple(y.shape)):>18s} {compile_s:10.2f} '
      f'{statistics.median(times):11.2f}'
    )
  return 0
