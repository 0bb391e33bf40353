"""Peak host memory of NST at high resolution, with and without VGG remat.

`python -m jaxstyle.nst.memory --sizes 1024,2048 --iters 1` runs each (size, remat) case in a fresh
subprocess (ru_maxrss is a per-process high-water mark) with random VGG19 weights and the book's
layers/losses, and prints the table of docs/performance.md ("NST memory"). On CPU the backend allocates from
host RAM, so
peak RSS is the whole footprint: weights, targets, activations kept for the backward pass, and the
optimiser state (L-BFGS keeps 2*m image-sized vectors on top of Adam's 2). "remat on" is the
objective built on `vgg.block_losses` (each block recomputed in the backward pass, losses inside it).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _hw(size: int | str) -> tuple[int, int]:
  """`1024` -> (1024, 1024); `3840x2160` (W x H, like a screen) -> (2160, 3840)."""
  w, _, h = str(size).partition('x')
  return (int(h or w), int(w))


def _case(size: int | str, remat: bool, iters: int, optimizer: str) -> dict[str, float]:
  """Runs the measured work in this process (call it in a fresh subprocess).

  jax and the NST stack are imported here, not at module level: the parent only spawns and
  tabulates, and each child's peak RSS must include their import.
  """
  import jax
  import numpy as np

  from jaxstyle.models.vgg import init_params
  from jaxstyle.nst import optim as nst_optim
  from jaxstyle.nst import presets, stylize
  from jaxstyle.nst.weights import PREPROCESSING

  config = presets.nst_base('', '')  # book losses (block5_conv2 content), style stretched
  config.vgg.remat = 'on' if remat else 'off'
  params = jax.device_put(init_params(jax.random.key(0)))
  prep = PREPROCESSING['keras']
  rng = np.random.default_rng(0)
  hw = _hw(size)
  content = rng.uniform(0, 255, (*hw, 3)).astype(np.float32)
  style = rng.uniform(0, 255, (*hw, 3)).astype(np.float32)
  base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  start = time.perf_counter()
  targets, loss_fn, x = stylize.make_loss(config, params, prep, content, [style], hw)
  runner = nst_optim.SegmentRunner(loss_fn, optimizer, iters, lr=1.0, linesearch_steps=2)
  x, stats = runner(x, targets, params, stylize.weights_of(config))
  jax.block_until_ready(x)
  wall = time.perf_counter() - start
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return {
    'size': f'{hw[1]}x{hw[0]}',
    'remat': remat,
    'iters': iters,
    'optimizer': optimizer,
    'evals': int(stats['evals']),
    'peak_rss_mib': peak / 1024,
    'import_rss_mib': base_rss / 1024,
    'wall_s': wall,
  }


def compiled_memory(size: int | str, remat: bool, optimizer: str = 'adam') -> dict[str, float]:
  """XLA's own buffer plan for one segment at `size`, from compilation alone (nothing runs).

  Cheap enough for 4K on a laptop CPU; `measure_peak_rss` at a small size checks it against
  reality. Targets are given as shapes, so not even the target forward passes run.
  """
  import jax
  import jax.numpy as jnp
  import numpy as np

  from jaxstyle.models.vgg import CHANNELS, VGG19, init_params
  from jaxstyle.nst import optim as nst_optim
  from jaxstyle.nst import presets, stylize
  from jaxstyle.nst.weights import PREPROCESSING

  config = presets.nst_base('', '')  # book losses (block5_conv2 content), style stretched
  config.vgg.remat = 'on' if remat else 'off'
  params = init_params(jax.random.key(0))
  small = np.full((32, 32, 3), 128.0, np.float32)
  _, loss_fn, _ = stylize.make_loss(
    config, params, PREPROCESSING['keras'], small, [small], (32, 32)
  )
  hw = _hw(size)
  x = jax.ShapeDtypeStruct((1, *hw, 3), jnp.float32)
  net = VGG19(outputs=config.loss.content_layers)
  content = jax.eval_shape(lambda p, z: net.apply({'params': p}, z), params, x)
  targets = {
    'content': content,
    'style': {
      n: jax.ShapeDtypeStruct((1, CHANNELS[n], CHANNELS[n]), jnp.float32)
      for n in config.loss.style_layers
    },
  }
  runner = nst_optim.SegmentRunner(loss_fn, optimizer, 1, linesearch_steps=2)
  opt_state = jax.eval_shape(runner._init, x)
  weights = stylize.weights_of(config)
  compiled = runner._segment.lower(x, opt_state, targets, params, weights).compile()
  m = compiled.memory_analysis()
  mib = lambda b: b / 2**20
  return {
    'size': f'{hw[1]}x{hw[0]}',
    'remat': remat,
    'optimizer': optimizer,
    'temp_mib': mib(m.temp_size_in_bytes),
    'argument_mib': mib(m.argument_size_in_bytes),
    'output_mib': mib(m.output_size_in_bytes),
    'total_mib': mib(m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes),
  }


def measure_peak_rss(
  size: int | str, remat: bool, iters: int = 1, optimizer: str = 'adam'
) -> dict[str, float]:
  """Peak RSS (MiB) of `iters` NST iterations at `size` (1024 or 3840x2160), in a fresh subprocess."""
  cmd = [
    sys.executable,
    '-m',
    'jaxstyle.nst.memory',
    '--child',
    str(size),
    str(int(remat)),
    str(iters),
    optimizer,
  ]
  out = subprocess.run(cmd, check=True, capture_output=True, text=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sizes', default='1024,2048')
  parser.add_argument('--iters', type=int, default=1)
  parser.add_argument('--optimizer', default='adam', choices=('adam', 'lbfgs'))
  parser.add_argument('--remat', default='both', choices=('both', 'on', 'off'))
  parser.add_argument('--child', nargs=4, help=argparse.SUPPRESS)
  parser.add_argument(
    '--compiled',
    action='store_true',
    help="report XLA's compiled buffer sizes instead of running (fast, any size)",
  )
  args = parser.parse_args(argv)
  remats = (False, True) if args.remat == 'both' else (args.remat == 'on',)
  if args.compiled:
    print('| size | remat | optimizer | XLA temp (MiB) | args+outputs (MiB) | total (MiB) |')
    print('|---|---|---|---|---|---|')
    for size in args.sizes.split(','):
      for remat in remats:
        r = compiled_memory(size, remat, args.optimizer)
        print(
          f'| {r["size"]} | {"on" if remat else "off"} | {r["optimizer"]} | '
          f'{r["temp_mib"]:.0f} | {r["argument_mib"] + r["output_mib"]:.0f} | '
          f'{r["total_mib"]:.0f} |',
          flush=True,
        )
    return 0
  if args.child:
    size, remat, iters, opt = args.child
    print(json.dumps(_case(size, bool(int(remat)), int(iters), opt)))
    return 0
  print('| size | remat | optimizer | evals | peak RSS (MiB) | wall (s) |')
  print('|---|---|---|---|---|---|')
  for size in args.sizes.split(','):
    for remat in remats:
      r = measure_peak_rss(size, remat, args.iters, args.optimizer)
      print(
        f'| {size} | {"on" if remat else "off"} | {r["optimizer"]} | {r["evals"]} | '
        f'{r["peak_rss_mib"]:.0f} | {r["wall_s"]:.1f} |',
        flush=True,
      )
  return 0


if __name__ == '__main__':
  sys.exit(main())
