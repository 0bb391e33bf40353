"""`jaxstyle bench data --train-steps N`: the data-wait share of real training steps.

Images/s from `bench_data.time_stream` say what the pipeline can feed with nothing consuming it;
whether a run is input-bound depends on the step it feeds. So this runs the CycleGAN trainer
itself (`train.train`, in-process) for N steps on the bench's mock data, with the reference
augmentation at `--size`, the bench's `--batch` and `--arch` networks, and reads back what the
trainer logs: `train/data_wait_frac` (host time blocked on `next(stream)` / wall time) and
`train/steps_per_sec`. Every step is logged (log_every=1) so the first, compiling step can be left
out; that syncs the host each step, so the device queue is one step shorter than a real run's.
Samples, checkpoints and evaluation are pushed past the last step (the trainer still writes its
final sample grid and checkpoint after the last record, outside the timing).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import ml_collections
import numpy as np

from jaxstyle.cyclegan import presets
from jaxstyle.metrics import read_metrics
from jaxstyle.tools.bench_archs import bench_config

NEVER = 1 << 30  # a sample / checkpoint interval no bench run reaches


def train_config(
  args: argparse.Namespace, data_fields: dict[str, Any], size: int
) -> ml_collections.ConfigDict:
  """`bench cyclegan`'s config for `--arch` (book base + the arch's networks) on the mock data.

  Data: the reference augmentation (bicubic to 286/256 of `size`, random crop, flip) with the
  trainer's default prefetch and num_workers, so the wait is what a default run would see.
  """
  config = bench_config(args.arch, args.dtype, args.lambda_id, args.conv_impl)
  config.data = presets.data_config(
    **data_fields, image_size=size, load_size=0, augment='reference', epoch_rule='max'
  )
  config.per_device_batch = args.batch
  config.total_steps = args.train_steps
  config.log_every = 1
  config.sample_every = NEVER
  config.num_samples = 1  # the trainer stacks >= 1 test image for its (final) sample grid
  config.ckpt.every_steps = NEVER
  config.eval_at_end = False
  config.progress = False
  return presets.validate(config)


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
  """Means over the train records after the first (which includes compilation); None if none."""
  train = [r for r in records if 'train/data_wait_frac' in r]
  timed = train[1:]
  if not timed:
    return dict(timed_steps=0, step_s_mean=None, data_wait_frac_mean=None)
  step_s = [1.0 / r['train/steps_per_sec'] for r in timed]
  return dict(
    timed_steps=len(timed),
    first_step_s=round(1.0 / train[0]['train/steps_per_sec'], 3),
    step_s_mean=round(float(np.mean(step_s)), 4),
    data_wait_frac_mean=round(float(np.mean([r['train/data_wait_frac'] for r in timed])), 4),
  )


def time_training(
  args: argparse.Namespace, data_fields: dict[str, Any], size: int
) -> dict[str, Any]:
  """Trains `args.train_steps` steps in a temp workdir; steps, mean step s, mean data wait."""
  from jaxstyle.cyclegan import train  # heavy (jax, orbax): only when --train-steps > 0

  config = train_config(args, data_fields, size)
  with tempfile.TemporaryDirectory(prefix='jaxstyle-bench-train-') as workdir:
    t0 = time.perf_counter()
    train.train(config, workdir)
    wall_s = time.perf_counter() - t0
    records = read_metrics(workdir)
  return dict(
    steps=args.train_steps,
    arch=args.arch,
    batch_per_device=args.batch,
    size=size,
    num_workers=config.data.num_workers,
    prefetch=config.data.prefetch,
    wall_s=round(wall_s, 2),
    **summarize(records),
  )
