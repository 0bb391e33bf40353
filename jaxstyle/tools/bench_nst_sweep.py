"""`jaxstyle bench nst-sweep`: one style-weight sweep command vs N separate commands, end to end.

Both sides are real `jaxstyle stylize` processes with the book config (configs/nst_book.py) at
`--size` px high (`--segments` of `--segment-iters` L-BFGS iterations) on random VGG19 weights (`--weights-source random`: the speed of the real network,
no download): process start and imports, weights, targets, compile, the L-BFGS segments and the PNGs.
That is what a researcher waits for when sweeping the style weight by hand or with `--style-weights`.
Each process writes metrics.jsonl, so the line also splits the wall time into the segments (the
optimisation, compile included in the first) and the rest, and compares the steady segments alone.
The sweep's images are compared with the separate runs' PNGs (identical for the sequential strategy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
from PIL import Image

import jaxstyle
from jaxstyle.nst import presets

BOOK_CONFIG = os.path.join(
  os.path.dirname(os.path.dirname(jaxstyle.__file__)), 'configs', 'nst_book.py'
)
DEFAULT_WEIGHTS = '10,100,1000'  # the book preset's get_sweep() around its 100
DEFAULT_SEGMENTS = 2
TARGET_RATIO = 0.8  # issue: a sweep of N costs <= 0.8x N separate runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Options of `jaxstyle bench nst-sweep` (`--size` is bench.py's: the output height)."""
  parser.add_argument(
    '--style-weights',
    default=DEFAULT_WEIGHTS,
    help=f'nst-sweep: the swept style weights (default {DEFAULT_WEIGHTS})',
  )
  parser.add_argument(
    '--segments',
    type=int,
    default=DEFAULT_SEGMENTS,
    help=f'nst-sweep: book segments of 20 L-BFGS iterations (default {DEFAULT_SEGMENTS})',
  )
  parser.add_argument(
    '--segment-iters',
    type=int,
    default=20,
    help="nst-sweep: L-BFGS iterations per segment (default 20, the book's)",
  )
  parser.add_argument(
    '--sweep',
    choices=presets.SWEEP_STRATEGIES,
    default='auto',
    help='nst-sweep: the strategy of the one-command sweep (default auto)',
  )


def _write_images(root: str) -> tuple[str, str]:
  """A smooth 400×300 content photo and a 256² high-frequency style image."""
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:300, 0:400]
  content = np.stack([xx * 0.6, yy * 0.8, 128 + 60 * np.sin(xx / 30.0)], -1)
  content = np.clip(content + rng.normal(0, 4, content.shape), 0, 255).astype(np.uint8)
  style = rng.integers(0, 256, (32, 32, 3), np.uint8).repeat(8, 0).repeat(8, 1)
  paths = os.path.join(root, 'content.png'), os.path.join(root, 'style.png')
  Image.fromarray(content).save(paths[0])
  Image.fromarray(style).save(paths[1])
  return paths


def _stylize(
  args: argparse.Namespace, images: tuple[str, str], workdir: str, flags: list[str]
) -> dict[str, Any]:
  """One `jaxstyle stylize` process: its wall time and the segment seconds it logged."""
  cmd = [
    sys.executable,
    '-m',
    'jaxstyle.cli',
    'stylize',
    *images,
    '-o',
    os.path.join(workdir, 'out.png'),
    '--config',
    BOOK_CONFIG,
    '--weights-source',
    'random',
    '--height',
    str(args.size),
    '--iterations',
    str(args.segments),
    '--segment-iters',
    str(args.segment_iters),
    '--no-progress',
    '--no-snapshots',
    '--workdir',
    workdir,
    *flags,
  ]
  t0 = time.perf_counter()
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  wall = time.perf_counter() - t0
  if proc.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}')
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f if line.strip()]
  segments = [r['nst/segment_sec'] for r in records if 'nst/segment_sec' in r]
  strategy = next(
    (
      line.split(': ', 1)[1]
      for line in (proc.stdout + proc.stderr).splitlines()
      if line.startswith('sweep of ')
    ),
    '',
  )
  return dict(
    wall_s=round(wall, 2),
    segments_s=[round(s, 2) for s in segments],
    outside_segments_s=round(wall - sum(segments), 2),
    strategy=strategy,
    evals=[r.get('nst/evals') for r in records if 'nst/evals' in r],
  )


def _pixels(path: str) -> np.ndarray:
  return np.asarray(Image.open(path).convert('RGB'), np.int16)


def bench(args: argparse.Namespace) -> dict[str, Any]:
  """N separate stylize processes, then the sweep in one; the JSON line's fields."""
  weights = [float(w) for w in str(args.style_weights).split(',') if w.strip()]
  if len(weights) < 2 or min(weights) <= 0 or args.segments < 1 or args.segment_iters < 1:
    raise ValueError(
      '--style-weights needs >= 2 positive weights, --segments and --segment-iters >= 1'
    )
  args.size = args.size or 256
  out: dict[str, Any] = dict(
    bench='nst-sweep',
    config='configs/nst_book.py',
    height=args.size,
    style_weights=weights,
    segments=args.segments,
    segment_iters=args.segment_iters,
    iterations_per_member=args.segment_iters * args.segments,
    vgg='random',
    cpu_count=os.cpu_count(),
  )
  with tempfile.TemporaryDirectory(prefix='jaxstyle-bench-sweep-') as tmp:
    images = _write_images(tmp)
    separate = []
    for k, w in enumerate(weights):
      work = os.path.join(tmp, f'separate{k}')
      separate.append(_stylize(args, images, work, ['--style-weight', f'{w:g}']))
      separate[-1]['image'] = os.path.join(work, 'out.png')
    work = os.path.join(tmp, 'sweep')
    sweep = _stylize(
      args,
      images,
      work,
      ['--style-weights', ','.join(f'{w:g}' for w in weights), '--sweep', args.sweep],
    )
    diffs = [
      int(np.abs(_pixels(os.path.join(work, f'out_sw{w:g}.png')) - _pixels(s['image'])).max())
      for w, s in zip(weights, separate)
    ]
  separate_wall = sum(s['wall_s'] for s in separate)
  steady_separate = sum(sum(s['segments_s'][1:]) for s in separate)
  out.update(
    separate_runs=[
      {k: v for k, v in s.items() if k not in ('image', 'strategy')} for s in separate
    ],
    sweep_run={k: v for k, v in sweep.items() if k != 'strategy'},
    sweep_strategy=sweep['strategy'],
    separate_total_s=round(separate_wall, 2),
    sweep_total_s=sweep['wall_s'],
    ratio=round(sweep['wall_s'] / separate_wall, 3),
    target_ratio=TARGET_RATIO,
    image_max_abs_diff_uint8=diffs,
  )
  if args.segments > 1:  # segments after the first: the optimisation alone, no compile
    out['steady_segments_ratio'] = round(sum(sweep['segments_s'][1:]) / steady_separate, 3)
  out['load_avg_1m'] = round(os.getloadavg()[0], 2)
  return out
