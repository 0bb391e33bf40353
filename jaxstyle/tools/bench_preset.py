"""`jaxstyle bench preset --config configs/X.py`: a preset's real step at its real shapes.

What a config file's "Wall time" rests on when its data or weights cannot be had offline: the
preset's own trainer step (CycleGAN, fast style: `parallel.compile_step` of the task's
`make_train_step`, state donated) or NST objective (`nst.stylize.make_loss`: value and gradient of
the preset's loss at each of its scales), built from the config exactly as a run builds it, fed
same-shaped stand-in data: random images, random-initialised VGG19 (`vgg.source='random'`; speed
does not depend on weight values). Prints one JSON line: seconds per step (median of `--steps`
after `--warmup`), compile seconds, peak RSS of the process, the config's step count and the
projected wall time (steps x s/step; input I/O, samples, checkpoints and evals not included).

An NST "step" is one objective evaluation; the projection counts one evaluation per L-BFGS
iteration (a lower bound: line searches may add some). A CycleGAN epoch on TFDS data is counted
from the catalog's split sizes (TFDS_TRAIN_SIZES), so nothing is downloaded.

  jaxstyle bench preset --config configs/cyclegan_reference.py --steps 2
  python -m jaxstyle.tools.bench_preset --config configs/cyclegan_reference.py --steps 2  # the same
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from typing import Any

import jax
import numpy as np

from jaxstyle import cli, parallel
from jaxstyle import main as jaxstyle_main
from jaxstyle.cyclegan import data
from jaxstyle.cyclegan import step as train_state
from jaxstyle.errors import UserError, nonnegative_int, positive_int
from jaxstyle.fast_style import presets as fs_presets
from jaxstyle.fast_style import step as fs_step
from jaxstyle.kernels import dispatch
from jaxstyle.nst import image as nst_image
from jaxstyle.nst import stylize
from jaxstyle.nst import weights as nst_weights
from jaxstyle.tools import bench_peers

# Accept `--config.a.b=v` overrides, as `jaxstyle train` does (cli.py passes them in args.unknown).
ACCEPTS_CONFIG_OVERRIDES = True

# TFDS cycle_gan/* train split sizes (trainA, trainB) from the TFDS catalog: an epoch without
# downloading the data.
TFDS_TRAIN_SIZES = {
  'apple2orange': (995, 1019),
  'monet2photo': (1072, 6287),
  'horse2zebra': (1067, 1334),
  'summer2winter_yosemite': (1231, 962),
  'vangogh2photo': (400, 6287),
  'cezanne2photo': (525, 6287),
  'ukiyoe2photo': (562, 6287),
  'iphone2dslr_flower': (1812, 3325),
}
# NST stand-in content: a 4:3 landscape photo (the book's 400 px height gives 400x533).
NST_CONTENT_HW = (768, 1024)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Options of `bench preset`."""
  parser.add_argument(
    '--config', required=True, help='config file (with :args), e.g. configs/cyclegan_reference.py'
  )
  parser.add_argument('--steps', type=positive_int, default=3, help='timed steps (default 3)')
  parser.add_argument(
    '--warmup', type=nonnegative_int, default=1, help='untimed steps after the compile (default 1)'
  )
  parser.add_argument(
    '--content-hw',
    default='x'.join(map(str, NST_CONTENT_HW)),
    help='NST: stand-in content image HxW (default %(default)s, 4:3)',
  )


def _cyclegan(config: Any, steps: int, warmup: int) -> dict[str, Any]:
  """The CycleGAN trainer's step (pool included) on random images at the preset's size and batch."""
  mesh = parallel.make_mesh(jax.devices()[:1])
  size, batch = config.data.image_size, config.per_device_batch
  if config.data.source == 'tfds':
    sizes = TFDS_TRAIN_SIZES.get(config.data.name)
  else:  # synthetic (generated lazily) or a folder listing: cheap to count
    sources = data.make_sources(config.data, 'train')
    sizes = (len(sources['A']), len(sources['B']))
  spe = (
    None
    if sizes is None
    else max(1, (max(sizes) if config.data.epoch_rule == 'max' else min(sizes)) // batch)
  )
  total = (
    config.total_steps
    if config.total_steps > 0
    else None
    if spe is None
    else int(round(config.num_epochs * spe))
  )
  state = jax.device_get(train_state.init_state(config, jax.random.PRNGKey(config.seed), size, 1))
  specs = parallel.state_specs(state)
  state = parallel.place(state, parallel.shardings(mesh, specs))
  rng = np.random.default_rng(0)
  shape = (batch, size, size, config.model.in_channels)
  images = parallel.global_batch_from_local(
    mesh, {d: rng.uniform(-1, 1, shape).astype(np.float32) for d in 'AB'}
  )
  step = parallel.compile_step(train_state.make_train_step(config, spe or 1000), mesh, specs)
  t0 = time.perf_counter()
  compiled = step.lower(state, images).compile()
  compile_s = time.perf_counter() - t0
  box = {'state': state}

  def one() -> None:
    box['state'], metrics = compiled(box['state'], images)
    box['loss'] = float(jax.device_get(metrics['train/loss_G']))

  times = bench_peers.time_calls(one, steps, warmup)
  return dict(
    shape=f'{batch}x{size}x{size} per domain',
    times=times,
    compile_s=compile_s,
    total_steps=total,
    steps_per_epoch=spe,
    conv_impl=config.model.conv_impl,
    loss=box['loss'],
    stand_in='uniform random images in [-1, 1]',
  )


def _fast_style(config: Any, steps: int, warmup: int) -> dict[str, Any]:
  """The fast-style trainer's step on random content crops, random VGG19 and random style images."""
  mesh = parallel.make_mesh(jax.devices()[:1])
  size, batch = config.data.image_size, config.per_device_batch
  n_styles = fs_presets.n_styles(config)
  vgg_params, prep = fs_step.load_vgg(config)
  rng = np.random.default_rng(0)
  side = config.style_size or size
  styles = [rng.integers(0, 256, (side, side, 3), np.uint8) for _ in range(n_styles)]
  frozen = jax.device_get(fs_step.frozen_inputs(config, vgg_params, prep, styles))
  frozen = parallel.place(frozen, parallel.shardings(mesh, parallel.state_specs(frozen, ())))
  state = jax.device_get(fs_step.init_state(config, jax.random.PRNGKey(config.seed)))
  specs = parallel.state_specs(state, ())
  state = parallel.place(state, parallel.shardings(mesh, specs))
  feed = parallel.global_batch_from_local(
    mesh,
    {
      'content': rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32),
      'style': (np.arange(batch) % n_styles).astype(np.int32),
    },
  )
  step = parallel.compile_step(fs_step.make_train_step(config, prep), mesh, specs, n_frozen=1)
  t0 = time.perf_counter()
  compiled = step.lower(state, feed, frozen).compile()
  compile_s = time.perf_counter() - t0
  box = {'state': state}

  def one() -> None:
    box['state'], metrics = compiled(box['state'], feed, frozen)
    box['loss'] = float(jax.device_get(metrics['train/loss']))

  times = bench_peers.time_calls(one, steps, warmup)
  return dict(
    shape=f'{batch}x{size}x{size}, {n_styles} style(s) of {side}x{side}',
    times=times,
    compile_s=compile_s,
    total_steps=config.total_steps,
    conv_impl=config.model.conv_impl,
    loss=box['loss'],
    stand_in='uniform random content crops and style images, random-initialised VGG19',
  )


def _nst(config: Any, steps: int, warmup: int, content_hw: tuple[int, int]) -> dict[str, Any]:
  """Value and gradient of the preset's objective at each of its scales (random VGG19, images)."""
  vgg_params, prep = nst_weights.get_vgg19(
    config.vgg.source, path=config.vgg.path or None, seed=config.seed
  )
  rng = np.random.default_rng(0)
  content = rng.uniform(0, 255, (*content_hw, 3)).astype(np.float32)
  style = rng.uniform(0, 255, (*content_hw, 3)).astype(np.float32)
  out_size = nst_image.output_size(content.shape, config.image.height, config.image.max_side)
  weights = stylize.weights_of(config)
  iters = config.optim.segments * config.optim.segment_iters
  per_scale, all_times, compile_s, projected = [], [], 0.0, 0.0
  for size in nst_image.scale_sizes(out_size, config.scales):
    times, seconds = _nst_scale(
      config, vgg_params, prep, content, style, size, weights, steps, warmup
    )
    compile_s += seconds
    median = float(np.median(times))
    per_scale.append({'size': f'{size[0]}x{size[1]}', 'median_s': round(median, 4)})
    all_times += times
    projected += iters * median
  return dict(
    shape=' -> '.join(s['size'] for s in per_scale),
    times=all_times,
    compile_s=compile_s,
    total_steps=iters * len(per_scale),
    scales=per_scale,
    projected_s=projected,
    conv_impl=config.vgg.conv_impl,
    stand_in=f'uniform random {content_hw[0]}x{content_hw[1]} content and style images, '
    'random-initialised VGG19',
    step_unit='one objective evaluation (value and gradient); projection counts one '
    'per L-BFGS iteration, a lower bound',
  )


def _nst_scale(
  config: Any,
  vgg_params: Any,
  prep: Any,
  content: np.ndarray,
  style: np.ndarray,
  size: tuple[int, int],
  weights: Any,
  steps: int,
  warmup: int,
) -> tuple[list[float], float]:
  """(times, compile seconds) of the objective's value and gradient at one output size."""
  targets, loss_fn, x = stylize.make_loss(config, vgg_params, prep, content, [style], size)
  vg = jax.jit(jax.value_and_grad(lambda z, t, p, w: loss_fn(z, t, p, w)[0]))
  t0 = time.perf_counter()
  compiled = vg.lower(x, targets, vgg_params, weights).compile()
  compile_s = time.perf_counter() - t0
  times = bench_peers.time_calls(
    lambda: jax.block_until_ready(compiled(x, targets, vgg_params, weights)), steps, warmup
  )
  return times, compile_s


def _human(seconds: float) -> str:
  """`3 d 4 h`, `5 h 12 min`, `4 min 10 s`, `12 s`."""
  s = int(round(seconds))
  d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
  if d:
    return f'{d} d {h} h'
  if h:
    return f'{h} h {m} min'
  return f'{m} min {s % 60} s' if m else f'{s} s'


def bench(
  config: Any,
  spec: str,
  steps: int = 3,
  warmup: int = 1,
  content_hw: tuple[int, int] = NST_CONTENT_HW,
) -> dict[str, Any]:
  """Times `config`'s step at its shapes on stand-in data; returns the JSON line's fields."""
  task = config.get('task', 'cyclegan')
  with config.unlocked():
    if task in ('nst', 'fast_style'):
      config.vgg.source = 'random'  # speed does not depend on the weights' values
  if task == 'cyclegan':
    res = _cyclegan(config, steps, warmup)
  elif task == 'fast_style':
    res = _fast_style(config, steps, warmup)
  else:
    res = _nst(config, steps, warmup, content_hw)
  times = res.pop('times')
  median = float(np.median(times))
  total = res.pop('total_steps')
  projected = res.pop('projected_s', None)
  if projected is None and total is not None:
    projected = total * median
  out: dict[str, Any] = dict(
    bench='preset',
    config=spec,
    task=task,
    shape=res.pop('shape'),
    s_per_step=round(median, 4),
    min_s=round(min(times), 4),
    timed_steps=len(times),
    compile_s=round(res.pop('compile_s'), 2),
    peak_rss_mb=round(bench_peers.peak_rss_mb(), 1),
    total_steps=total,
    projected_wall_s=None if projected is None else round(projected, 1),
    projected_wall=None if projected is None else _human(projected),
  )
  if 'loss' in res:
    out['loss'] = round(float(res.pop('loss')), 4)
  out.update(res)
  out.update(dispatch.runtime_record(str(out.pop('conv_impl'))))
  out.update(
    device=jax.devices()[0].device_kind,
    cpu_count=_cpu_count(),
    date=datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC'),
  )
  return out


def _cpu_count() -> int:
  return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1


def _parse_hw(text: str) -> tuple[int, int]:
  try:
    h, w = (int(v) for v in text.lower().split('x'))
  except ValueError:
    raise UserError(f'--content-hw {text!r}: expected HxW, e.g. 768x1024') from None
  if h < 16 or w < 16:
    raise UserError(f'--content-hw {text!r}: both sides must be >= 16')
  return h, w


def run(args: argparse.Namespace) -> int:
  """Builds the config as `jaxstyle train` does, benches it, prints one JSON line."""
  hw = _parse_hw(args.content_hw)
  config = jaxstyle_main.build_config(args.config, list(getattr(args, 'unknown', None) or []))
  line = bench(config, args.config, args.steps, args.warmup, hw)
  print(json.dumps(line))
  loss = line.get('loss')
  return 0 if loss is None or np.isfinite(loss) else 1


def main(argv: list[str] | None = None) -> int:
  """`python -m jaxstyle.tools.bench_preset ...`, with the CLI's error boundary."""
  parser = cli.ArgumentParser(prog='jaxstyle bench preset', description=__doc__.splitlines()[0])
  add_arguments(parser)
  args, unknown = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
  args.unknown = unknown
  try:
    return run(args)
  except Exception as err:  # the boundary's rule: user errors one line, bugs keep the traceback
    if isinstance(err, UserError) and not cli.debug_enabled():
      return cli.report('jaxstyle bench preset', err)
    raise


if __name__ == '__main__':
  sys.exit(main())
