"""`jaxstyle bench cyclegan`: time one CycleGAN training iteration (G step then D step, Adam).

Runs the trainer's own step (`train_state.make_train_step` under `parallel.compile_step`, pool
included) on random images, so the number is what training pays per iteration minus input I/O.

  jaxstyle bench cyclegan --arch resnet256 --batch 1 [--devices 1] [--dtype bfloat16]

Prints init, compile and median step time. CycleGAN at batch 1 is latency-bound: expect far
from peak FLOP/s (spec §10).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxstyle import models, parallel, train_state

BOOK = dict(norm_eps=1e-3, eps_mode='std')
ARCHS: dict[str, tuple[int, dict[str, Any]]] = {  # name -> (image side, model_cfg overrides)
    'unet128': (128, dict(generator='unet_book', gen_filters=32, discriminator='patchgan_book',
                          disc_filters=32, init='keras', **BOOK)),          # book Example 5-1
    'resnet256': (256, dict(generator='resnet', n_blocks=9, discriminator='patchgan')),  # reference
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Options of `jaxstyle bench`."""
  parser.add_argument('task', choices=['cyclegan'])
  parser.add_argument('--arch', choices=list(ARCHS), default='unet128')
  parser.add_argument('--batch', type=int, default=1, help='per-device batch')
  parser.add_argument('--devices', type=int, default=1, help='data-parallel devices (0 = all)')
  parser.add_argument('--size', type=int, default=0, help='override the image side')
  parser.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
  parser.add_argument('--lambda-id', type=float, default=5.0, help='0 skips the identity passes')
  parser.add_argument('--steps', type=int, default=20, help='timed steps')
  parser.add_argument('--warmup', type=int, default=2)


def bench_config(arch: str, dtype: str, lambda_id: float) -> ml_collections.ConfigDict:
  """The subset of a CycleGAN config that `train_state` reads."""
  _, overrides = ARCHS[arch]
  return ml_collections.ConfigDict(dict(
      model=models.default_model_config(**overrides, dtype=dtype),
      loss=dict(lambda_gan=1.0, lambda_cycle=10.0, lambda_id=lambda_id),
      optim=dict(lr=2e-4, b1=0.5, b2=0.999, eps=1e-8, schedule='constant', n_epochs=100,
                 n_epochs_decay=100, epoch_count=1),
      pool_size=50, book_exact_d=False))


def run(args: argparse.Namespace) -> int:
  """Build the state, compile the step, time `--steps` iterations; print one JSON line."""
  n_dev = args.devices or jax.device_count()
  mesh = parallel.make_mesh(jax.devices()[:n_dev])
  size = args.size or ARCHS[args.arch][0]
  config = bench_config(args.arch, args.dtype, args.lambda_id)
  print(f'bench cyclegan {args.arch}: {n_dev} x {jax.devices()[0].device_kind}, '
        f'batch {args.batch}/device, {size}x{size}, {args.dtype}')

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

  times = []
  for i in range(args.warmup + args.steps):
    t0 = time.perf_counter()
    state, metrics = compiled(state, batch)
    loss = float(jax.device_get(metrics['train/loss_G']))  # syncs: one step per timing
    if i >= args.warmup:
      times.append(time.perf_counter() - t0)
  if not np.isfinite(loss):
    print(f'non-finite loss_G {loss}')
    return 1
  median = statistics.median(times)
  result = dict(arch=args.arch, device=jax.devices()[0].device_kind, devices=n_dev,
                batch_per_device=args.batch, size=size, dtype=args.dtype,
                lambda_id=args.lambda_id, init_s=round(init_s, 2), compile_s=round(compile_s, 2),
                step_ms_median=round(1e3 * median, 2), step_ms_min=round(1e3 * min(times), 2),
                images_per_s=round(args.batch * n_dev / median, 2), loss_G=round(loss, 4))
  print(json.dumps(result))
  return 0
