"""`jaxstyle figure`: re-draw the book's chapter-5 figures from run outputs alone.

Figures are rebuilt from what the runs already write (sample PNGs, metrics.jsonl, config.json,
NST snapshots), never by re-running a model, so a figure can be regenerated on a laptop from a
fetched workdir (`launch/tpu.py fetch`).

  jaxstyle figure 5-8  --workdir runs/5_1 [--steps 2000] -o fig5_8.png     # one sample grid
  jaxstyle figure 5-9  --workdir runs/idt  -o fig5_9.png       # sweep base dir or --workdirs ...
  jaxstyle figure 5-12 --workdir runs/monet --steps 1000,5000,20000 -o fig5_12.png
  jaxstyle figure 5-18 --workdir runs/nst --iterations 0,4,9 -o fig5_18.png
  jaxstyle figure loss --workdir runs/5_1 [--workdirs runs/b ...] -o loss.png
  jaxstyle figure style-grid --workdir runs/multi --images a.jpg b.jpg    # figures_fast_style
  jaxstyle figure style-mix  --workdir runs/multi --image a.jpg --styles 0,1 --steps 5
  jaxstyle figure adain-grid --workdir runs/adain --images a.jpg --style-images s.jpg  # figures_adain
  jaxstyle figure cut-compare --workdirs runs/synthetic runs/cut runs/fastcut -o cmp.png  # figures_cut
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # Figure + savefig needs no pyplot and no display (Agg)
from PIL import Image

from jaxstyle import errors, image_io, metrics
from jaxstyle.errors import BadInputError, UserError
from jaxstyle.tools import figures_adain, figures_cut, figures_fast_style

FIGURES = (
  '5-8',
  '5-9',
  '5-12',
  '5-13',
  '5-18',
  'loss',
  *figures_fast_style.FIGURES,
  *figures_adain.FIGURES,
  *figures_cut.FIGURES,
)
DPI = 100
MAX_WIDTH_PX = 3000  # keeps side-by-side figures of many large grids at a sane size
_STEP_RE = re.compile(r'step_(\d+)\.png$')
_ITER_RE = re.compile(r'^(.*)_at_iteration_(\d+)\.png$')


################ Inputs: what the runs wrote ################


def sample_steps(workdir: str) -> dict[int, str]:
  """`{step: path}` of `{workdir}/samples/step_{N:06d}.png`."""
  found = {}
  for path in glob.glob(os.path.join(workdir, 'samples', 'step_*.png')):
    match = _STEP_RE.search(os.path.basename(path))
    if match:
      found[int(match.group(1))] = path
  return dict(sorted(found.items()))


def pick_sample(workdir: str, step: int | None = None) -> tuple[int, str]:
  """The sample grid at `step`, or the latest one."""
  steps = sample_steps(workdir)
  if not steps:
    raise FileNotFoundError(f'no samples/step_*.png in {workdir}')
  if step is None:
    step = max(steps)
  if step not in steps:
    raise FileNotFoundError(f'no sample at step {step} in {workdir}; have {list(steps)}')
  return step, steps[step]


def read_config(workdir: str) -> dict[str, Any]:
  """The run's config.json (empty if absent: figures still work, with plainer labels)."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.lexists(path):  # a dangling link is a damaged run, not a missing config
    return {}
  try:
    with open(path) as f:
      config = json.load(f)
  except (OSError, ValueError) as err:  # cut short or edited by hand: one line naming it
    raise BadInputError(f'{path} cannot be read as a run config ({err})') from err
  if not isinstance(config, dict):
    raise BadInputError(f'{path} is not a run config (a JSON object)')
  return config


def run_label(workdir: str) -> str:
  """`lambda_id = 5.0` when the run's config has it (identity ablation), else the dir name."""
  lambda_id = read_config(workdir).get('loss', {}).get('lambda_id')
  name = os.path.basename(os.path.normpath(workdir))
  return f'lambda_id = {lambda_id:g}' if isinstance(lambda_id, (int, float)) else name


def _spread(values: list[int], n: int) -> list[int]:
  """Up to `n` values spread evenly over `values`, always with the first and last."""
  if len(values) <= n:
    return list(values)
  idx = np.linspace(0, len(values) - 1, n).round().astype(int)
  return [values[i] for i in sorted(set(idx))]


################ Drawing ################


def save_panels(
  panels: list[tuple[np.ndarray, str]], out: str, ncols: int, title: str | None = None
) -> str:
  """Images in a grid (`image_io.grid`), each captioned, at native resolution unless `ncols`
  of them would exceed MAX_WIDTH_PX: then every panel shrinks by the same factor (Lanczos)."""
  w = max(img.shape[1] for img, _ in panels)
  scale = min(1.0, MAX_WIDTH_PX / (ncols * w))
  imgs = [
    image_io.scale_to_height(img, max(1, round(img.shape[0] * scale)), Image.LANCZOS)
    for img, _ in panels
  ]
  rows = [imgs[i : i + ncols] for i in range(0, len(imgs), ncols)]
  labels = [[label for _, label in panels[i : i + ncols]] for i in range(0, len(panels), ncols)]
  image_io.save(out, image_io.grid(rows, labels=labels, title=title, font_size=16))
  return out


def _savefig(fig: Figure, out: str) -> None:
  if os.path.dirname(out):
    os.makedirs(os.path.dirname(out), exist_ok=True)
  fig.savefig(out, format='png')


################ The figures ################


def figure_samples(workdir: str, out: str, step: int | None = None) -> str:
  """Figure 5-8: the Original / Translated / Reconstructed / ID grid of one step."""
  step, path = pick_sample(workdir, step)
  name = os.path.basename(os.path.normpath(workdir))
  return save_panels([(image_io.load_rgb(path), f'{name}, step {step}')], out, ncols=1)


def figure_ablation(workdirs: list[str], out: str, step: int | None = None) -> str:
  """Figure 5-9: the same grid for each run of the identity-loss sweep, side by side."""
  panels = []
  for wd in workdirs:
    s, path = pick_sample(wd, step)
    panels.append((image_io.load_rgb(path), f'{run_label(wd)} (step {s})'))
  return save_panels(panels, out, ncols=len(panels), title='identity-loss ablation')


def figure_progress(
  workdir: str, out: str, steps: list[int] | None = None, max_panels: int = 4
) -> str:
  """Figures 5-12 / 5-13: sample grids at chosen (default: evenly spread) training steps."""
  available = sample_steps(workdir)
  if not available:
    raise FileNotFoundError(f'no samples/step_*.png in {workdir}')
  steps = steps or _spread(list(available), max_panels)
  missing = [s for s in steps if s not in available]
  if missing:
    raise FileNotFoundError(f'no samples at steps {missing} in {workdir}; have {list(available)}')
  panels = [(image_io.load_rgb(available[s]), f'step {s}') for s in steps]
  return save_panels(panels, out, ncols=1, title=os.path.basename(os.path.normpath(workdir)))


def nst_snapshots(directory: str, prefix: str | None = None) -> dict[int, str]:
  """`{iteration: path}` of `<prefix>_at_iteration_<i>.png` (the stylize snapshots)."""
  by_prefix: dict[str, dict[int, str]] = {}
  for path in glob.glob(os.path.join(directory, '*_at_iteration_*.png')):
    match = _ITER_RE.match(os.path.basename(path))
    if match:
      by_prefix.setdefault(match.group(1), {})[int(match.group(2))] = path
  if prefix is not None:
    by_prefix = {k: v for k, v in by_prefix.items() if k == prefix}
  if not by_prefix:
    raise FileNotFoundError(f'no {prefix or "*"}_at_iteration_*.png in {directory}')
  if len(by_prefix) > 1:
    raise UserError(
      f'several snapshot series in {directory}: {sorted(by_prefix)}; choose one with --prefix'
    )
  return dict(sorted(next(iter(by_prefix.values())).items()))


def figure_nst(
  directory: str,
  out: str,
  iterations: list[int] | None = None,
  prefix: str | None = None,
  extra: list[str] = (),
  max_panels: int = 6,
) -> str:
  """Figure 5-18: the stylised image at chosen iterations, after optional content/style images."""
  snaps = nst_snapshots(directory, prefix)
  iterations = iterations or _spread(list(snaps), max_panels)
  missing = [i for i in iterations if i not in snaps]
  if missing:
    raise FileNotFoundError(f'no snapshots at iterations {missing}; have {list(snaps)}')
  panels = [(image_io.load_rgb(p), os.path.splitext(os.path.basename(p))[0]) for p in extra]
  panels += [(image_io.load_rgb(snaps[i]), f'iteration {i}') for i in iterations]
  return save_panels(panels, out, ncols=len(panels))


def figure_losses(workdirs: list[str], out: str, keys: list[str] | None = None) -> str:
  """Loss curves from metrics.jsonl: one panel per key, one line per run."""
  runs = [
    (run_label(wd) if len(workdirs) > 1 else None, metrics.read_metrics(wd)) for wd in workdirs
  ]
  if keys is None:
    keys = sorted({k for _, recs in runs for r in recs for k in r if 'loss' in k})
  if not keys:
    raise UserError('no loss keys in metrics.jsonl (pass --keys)')
  ncols = min(3, len(keys))
  nrows = math.ceil(len(keys) / ncols)
  fig = Figure(figsize=(4.2 * ncols, 3.0 * nrows), dpi=DPI)
  for i, key in enumerate(keys):
    ax = fig.add_subplot(nrows, ncols, i + 1)
    for label, recs in runs:
      pts = [(r['step'], r[key]) for r in recs if key in r and 'step' in r]
      if pts:
        xs, ys = zip(*pts)
        ax.plot(xs, ys, marker='.' if len(pts) < 20 else None, label=label)
    ax.set_title(key, fontsize=10)
    ax.set_xlabel('step')
    ax.grid(alpha=0.3)
    if len(runs) > 1:
      ax.legend(fontsize=7)
  fig.tight_layout()
  _savefig(fig, out)
  return out


################ CLI ################


def _ints(text: str | None) -> list[int] | None:
  try:
    return [int(v) for v in text.split(',') if v.strip()] if text else None
  except ValueError:
    raise UserError(f'expected comma-separated integers such as 0,250,750, got {text!r}') from None


def _runs(args: argparse.Namespace) -> list[str]:
  """--workdir plus --workdirs; a sweep base dir (no config.json, run subdirs) expands to its runs."""
  dirs = ([args.workdir] if args.workdir else []) + list(args.workdirs or [])
  expanded = []
  for d in dirs:
    subs = sorted(os.path.join(d, s) for s in os.listdir(d) if os.path.isdir(os.path.join(d, s)))
    is_base = not os.path.exists(os.path.join(d, 'samples')) and not os.path.exists(
      os.path.join(d, 'metrics.jsonl')
    )
    expanded += (
      [
        s
        for s in subs
        if os.path.exists(os.path.join(s, 'samples'))
        or os.path.exists(os.path.join(s, 'metrics.jsonl'))
      ]
      if is_base
      else [d]
    )
  if not expanded and dirs:
    raise UserError(
      f'no samples/ or metrics.jsonl in {", ".join(dirs)} or its sub-folders; '
      "pass the --workdir of a training run (or a sweep's base folder)"
    )
  if not expanded:
    raise UserError('give --workdir (or --workdirs) with run outputs')
  return expanded


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Flags of `jaxstyle figure`."""
  parser.add_argument(
    'figure',
    choices=FIGURES,
    help="book figure number, `loss`, or a fast-style net's style-grid/style-mix",
  )
  parser.add_argument('--workdir', default=None, help='run workdir (or sweep base, or NST dir)')
  parser.add_argument('--workdirs', nargs='+', default=None, help='more runs (5-9, loss)')
  parser.add_argument(
    '--steps', default=None, help='comma-separated training steps (style-mix: number of blends)'
  )
  parser.add_argument('--iterations', default=None, help='comma-separated NST snapshot indices')
  parser.add_argument('--prefix', default=None, help='NST snapshot prefix if there are several')
  parser.add_argument(
    '--images',
    nargs='+',
    default=(),
    help='5-18: content/style images first; style-grid: the content images',
  )
  parser.add_argument('--keys', default=None, help='loss: comma-separated metric keys')
  parser.add_argument(
    '-o',
    '--output',
    default=None,
    help='output PNG (required, except style-grid/style-mix: RUN/figures/)',
  )
  figures_fast_style.add_arguments(parser)
  figures_adain.add_arguments(parser)
  figures_cut.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
  """Draws one figure and prints where it went."""
  if args.figure in figures_fast_style.FIGURES:
    return figures_fast_style.run(args)
  if args.figure in figures_adain.FIGURES:
    return figures_adain.run(args)
  if args.figure in figures_cut.FIGURES:
    return figures_cut.run(args)
  if not args.output:
    raise UserError(f'figure {args.figure} needs -o OUT.png (the output PNG)')
  errors.writable_dir(os.path.dirname(os.path.abspath(args.output)), 'output folder (-o)')
  steps = _ints(args.steps)
  if args.figure == '5-18':
    if not args.workdir:
      raise UserError(
        "figure 5-18 needs --workdir (the folder of stylize's snapshots: its "
        "--workdir, else the -o result's folder)"
      )
    out = figure_nst(args.workdir, args.output, _ints(args.iterations), args.prefix, args.images)
  elif args.figure == 'loss':
    keys = args.keys.split(',') if args.keys else None
    out = figure_losses(_runs(args), args.output, keys)
  elif args.figure == '5-9':
    out = figure_ablation(_runs(args), args.output, steps[0] if steps else None)
  elif args.figure == '5-8':
    out = figure_samples(_runs(args)[0], args.output, steps[0] if steps else None)
  else:
    out = figure_progress(_runs(args)[0], args.output, steps)
  print(out)
  return 0
