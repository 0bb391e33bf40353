"""`jaxstyle bench fast-style`: Johnson fast-style net speed, one JSON line per case.

Two cases, the two costs a user pays: `forward` is one jitted net forward on a batch-1 `--size`
frame (default 512², what `jaxstyle fast-style stylize` / video pay per frame minus I/O; frames/s),
and `train` is one step of the trainer's own program (`fast_style.step.make_train_step` under
`parallel.compile_step` on a 1-device mesh: net forward, frozen VGG19 to block4_conv3 on output
and content, Johnson perceptual loss, backward, Adam) at `--train-size` (256²) batch `--batch` (4).
Each: compile excluded, `--warmup` untimed calls, median of `--steps` blocking calls.
Weights are random (VGG `source='random'`, seeded He init; a random uint8 style image): speed
does not depend on their values, so no file is needed.

The peer (`peers/peer_torch_fast_style.py`) runs the same mode, size, batch and upsampling. Its
train mode uses the tanh head like ours; its forward mode always uses the linear head (no option
selects it) while ours uses `model.output='tanh'`: one elementwise tanh on a 3-channel output,
negligible next to the convs.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxstyle import parallel
from jaxstyle.errors import positive_int
from jaxstyle.fast_style import presets
from jaxstyle.fast_style import step as fs_step
from jaxstyle.tools import bench_peers

DEFAULT_SIZE = 512  # forward: one video/photo frame
DEFAULT_TRAIN_SIZE = 256  # Johnson et al.'s 256² crops
DEFAULT_BATCH = 4  # ... at batch 4
DEFAULT_STEPS = 3  # a 512² forward and a batch-4 step take seconds each on a small CPU
PEER = 'peer_torch_fast_style.py'


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Options only `jaxstyle bench fast-style` reads (--size, --batch, --steps are bench.py's)."""
  parser.add_argument(
    '--train-size',
    type=positive_int,
    default=DEFAULT_TRAIN_SIZE,
    help=f'fast-style: train-step crop side (default {DEFAULT_TRAIN_SIZE})',
  )
  parser.add_argument(
    '--upsample',
    choices=presets.UPSAMPLES,
    default='resize',
    help='fast-style: resize-conv or transposed-conv ups (peer too)',
  )


def bench_config(args: argparse.Namespace, size: int) -> ml_collections.ConfigDict:
  """The base preset on random VGG weights at `size`, with the bench's model options."""
  c = presets.fast_style_base()
  c.vgg.source = 'random'
  c.data.image_size = size
  c.per_device_batch = args.batch or DEFAULT_BATCH  # the train case's; the forward uses 1
  c.model.upsample = args.upsample
  c.model.dtype = args.dtype
  c.model.conv_impl = c.vgg.conv_impl = args.conv_impl
  return presets.validate(c)


def _peer(args: argparse.Namespace, size: int, batch: int, mode: str) -> tuple[str, list[str]]:
  """The peer's positional arguments: size steps batch upsample mode."""
  steps = args.peer_steps or args.steps
  return PEER, [str(size), str(steps), str(batch), args.upsample, mode]


def bench_forward(args: argparse.Namespace) -> dict[str, Any]:
  """Median seconds of one jitted net forward on a batch-1 frame; frames/s."""
  size = args.size or DEFAULT_SIZE
  c = bench_config(args, size)
  net = fs_step.make_net(c)
  params = fs_step.init_state(c, jax.random.PRNGKey(c.seed))['params']['net']
  x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)), jnp.float32)
  t0 = time.perf_counter()
  compiled = jax.jit(lambda p, x: net.apply({'params': p}, x)).lower(params, x).compile()
  compile_s = time.perf_counter() - t0
  times = bench_peers.time_calls(
    lambda: jax.block_until_ready(compiled(params, x)), args.steps, args.warmup
  )
  out = bench_peers.report(
    args,
    'fast-style-forward',
    times,
    compile_s,
    bench_peers.xla_flops(compiled),
    _peer(args, size, 1, 'forward'),
    mode='forward',
    batch=1,
    size=size,
    upsample=args.upsample,
    output=c.model.output,
    dtype=args.dtype,
    flops_source='XLA cost analysis',
    unit='seconds per frame',
  )
  bench_peers.add_rate(out, 'frames_per_s')
  return out


def bench_train(args: argparse.Namespace) -> dict[str, Any]:
  """Median seconds of one compiled train step (state donated, so each call feeds the next)."""
  size = args.train_size
  c = bench_config(args, size)
  mesh = parallel.make_mesh(jax.devices()[:1])

  def init() -> tuple[Any, Any, Any]:
    vgg_params, prep = fs_step.load_vgg(c)
    style = np.random.default_rng(1).integers(0, 256, (c.style_size, c.style_size, 3), np.uint8)
    frozen = jax.device_get(fs_step.frozen_inputs(c, vgg_params, prep, [style]))
    state = jax.device_get(fs_step.init_state(c, jax.random.PRNGKey(c.seed)))  # as the trainer
    return frozen, state, fs_step.make_train_step(c, prep)

  rng = np.random.default_rng(0)
  batch = {
    'content': rng.uniform(0, 255, (args.batch, size, size, 3)).astype(np.float32),
    'style': np.zeros((args.batch,), np.int32),
  }
  timing = bench_peers.time_frozen_step(mesh, init, batch, args.steps, args.warmup)
  return bench_peers.step_report(
    args,
    'fast-style-train',
    timing,
    _peer(args, size, args.batch, 'train'),
    args.batch,
    'loss',
    unit='seconds per train step',
    mode='train',
    batch=args.batch,
    size=size,
    upsample=args.upsample,
    output=c.model.output,
    dtype=args.dtype,
  )


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
  """Both cases, forward first; one JSON line each (bench.py prints them)."""
  return [bench_forward(args), bench_train(args)]
