"""`jaxstyle bench adain`: AdaIN speed, one JSON line per case.

Two cases, the two costs a user pays: `forward` is one jitted stylisation of a `--size` content
(default 512²) with a `--size` style: both encoded to relu4_1, AdaIN, decoded (the reference
test.py's `style_transfer` at α = 1; frames/s), and `train` is one step of the trainer's own
program (`adain.step.make_train_step` under `parallel.compile_step` on a 1-device mesh: encoder on
content and style, decoder, encoder on the output, the reference loss, backward, Adam) at
`--train-size` (256²) batch `--batch` (8). Each: compile excluded, `--warmup` untimed calls,
median of `--steps` blocking calls. The encoder is our VGG19 (`models.adain.encode(kind=
'imagenet')`: zero padding, floor pools) on seeded random weights, the decoder randomly
initialised: speed does not depend on their values, so no file is needed.

The peer (`peers/peer_torch_adain.py`) runs the same networks, mode, size and batch in torch.
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
from jaxstyle.adain import presets
from jaxstyle.adain import step as adain_step
from jaxstyle.errors import positive_int
from jaxstyle.models import adain as adain_model
from jaxstyle.tools import bench_peers

DEFAULT_SIZE = 512  # forward: one photo / video frame, as the paper's 15 frames/s
DEFAULT_TRAIN_SIZE = 256  # the reference's 256² crops ...
DEFAULT_BATCH = 8  # ... at batch 8
DEFAULT_STEPS = 3
PEER = 'peer_torch_adain.py'


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Options only `jaxstyle bench adain` reads (--size, --batch, --steps are bench.py's)."""
  parser.add_argument(
    '--train-size',
    type=positive_int,
    default=DEFAULT_TRAIN_SIZE,
    help=f'adain: train-step crop side (default {DEFAULT_TRAIN_SIZE})',
  )


def bench_config(args: argparse.Namespace, size: int) -> ml_collections.ConfigDict:
  """The base preset on random VGG weights at `size`, with the bench's precision options."""
  c = presets.adain_base()
  c.vgg.source = 'random'
  c.data.load_size = c.data.image_size = size
  c.per_device_batch = args.batch or DEFAULT_BATCH  # the train case's; the forward uses 1
  c.model.dtype = args.dtype
  c.model.conv_impl = c.vgg.conv_impl = args.conv_impl
  return presets.validate(c)


def _peer(args: argparse.Namespace, size: int, batch: int, mode: str) -> tuple[str, list[str]]:
  """The peer's positional arguments: size steps batch mode."""
  return PEER, [str(size), str(args.peer_steps or args.steps), str(batch), mode]


def bench_forward(args: argparse.Namespace) -> dict[str, Any]:
  """Median seconds of one jitted stylisation (content and style encoded, AdaIN, decoded)."""
  size = args.size or DEFAULT_SIZE
  c = bench_config(args, size)
  decoder = adain_step.make_decoder(c)
  params = adain_step.init_state(c, jax.random.PRNGKey(c.seed))['params']['decoder']
  enc = adain_step.frozen_inputs(c)['vgg']
  rng = np.random.default_rng(0)
  content, style = (jnp.asarray(rng.uniform(0, 1, (1, size, size, 3)), jnp.float32) for _ in '12')

  def stylise(params, enc, content, style):
    f_c, f_s = (
      adain_model.encode(enc, x, adain_step.KIND, ('relu4_1',))['relu4_1'] for x in (content, style)
    )
    return decoder.apply({'params': params}, adain_model.adain(f_c, f_s))

  t0 = time.perf_counter()
  compiled = jax.jit(stylise).lower(params, enc, content, style).compile()
  compile_s = time.perf_counter() - t0
  times = bench_peers.time_calls(
    lambda: jax.block_until_ready(compiled(params, enc, content, style)), args.steps, args.warmup
  )
  out = bench_peers.report(
    args,
    'adain-forward',
    times,
    compile_s,
    bench_peers.xla_flops(compiled),
    _peer(args, size, 1, 'forward'),
    mode='forward',
    batch=1,
    size=size,
    dtype=args.dtype,
    flops_source='XLA cost analysis',
    unit='seconds per frame (content and style encoded)',
  )
  bench_peers.add_rate(out, 'frames_per_s')
  return out


def bench_train(args: argparse.Namespace) -> dict[str, Any]:
  """Median seconds of one compiled train step (state donated, so each call feeds the next)."""
  size = args.train_size
  c = bench_config(args, size)
  mesh = parallel.make_mesh(jax.devices()[:1])

  def init() -> tuple[Any, Any, Any]:
    frozen = jax.device_get(adain_step.frozen_inputs(c))
    state = jax.device_get(adain_step.init_state(c, jax.random.PRNGKey(c.seed)))  # as the trainer
    return frozen, state, adain_step.make_train_step(c)

  rng = np.random.default_rng(0)
  shape = (args.batch, size, size, 3)
  batch = {k: rng.uniform(0, 255, shape).astype(np.float32) for k in ('content', 'style')}
  timing = bench_peers.time_frozen_step(mesh, init, batch, args.steps, args.warmup)
  return bench_peers.step_report(
    args,
    'adain-train',
    timing,
    _peer(args, size, args.batch, 'train'),
    args.batch,
    'loss',
    unit='seconds per train step',
    mode='train',
    batch=args.batch,
    size=size,
    dtype=args.dtype,
  )


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
  """Both cases, forward first; one JSON line each (bench.py prints them)."""
  return [bench_forward(args), bench_train(args)]
