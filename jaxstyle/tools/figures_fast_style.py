"""`jaxstyle figure style-grid | style-mix`: figures of a trained fast-style network.

Unlike the book figures (redrawn from PNGs the runs wrote), these run the network: they load the
run's newest checkpoint (`FastStyleModel.from_workdir`) and stylise the given content images, so
they work on any fetched workdir with a checkpoint, on CPU too.

  jaxstyle figure style-grid --workdir runs/multi --images a.jpg b.jpg [-o grid.png] [--size 256]
  jaxstyle figure style-mix  --workdir runs/multi --image a.jpg [--styles 0,1] [--steps 5]
                             [-o mix.png] [--size 256]

style-grid: a row per content image (the content, then its output in each style the net holds)
under a row of the style images, captioned with the style labels. style-mix: the outputs for the
style weights (1-t)·e_i + t·e_j, t in linspace(0, 1, steps), between thumbnails of styles i and j
(needs a conditional run: configs/fast_style_multi.py). Default output: RUN/figures/style_grid.png
and RUN/figures/style_mix.png. The panel functions (`style_grid_panels`, `style_mix_panels`)
return the images before they are drawn, so they can be checked pixel for pixel.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from jaxstyle import errors, image_io
from jaxstyle.errors import UserError
from jaxstyle.fast_style import data

FIGURES = ('style-grid', 'style-mix')
DEFAULT_OUTPUTS = {'style-grid': 'style_grid.png', 'style-mix': 'style_mix.png'}
DEFAULT_SIZE = 256
DEFAULT_MIX_STEPS = 5
MIN_CELL = 128  # as the trainer's sample grid: small --size cells are enlarged (nearest) to this
MULTI_HINT = 'train one with configs/fast_style_multi.py'

# rows of images, the caption of each cell (nested like rows), the text left of each row
Panels = tuple[list[list[np.ndarray]], list[list[str]], list[str]]


################ Inputs ################


def _check_workdir(workdir: str) -> None:
  if not os.path.isdir(workdir):
    raise UserError(
      f'--workdir {workdir!r} is not a folder; pass the --workdir of a fast-style '
      'training run (configs/fast_style_johnson.py or fast_style_multi.py)'
    )


def _model(workdir: str) -> Any:
  _check_workdir(workdir)
  from jaxstyle.fast_style.inference import FastStyleModel  # jax: only when a figure is drawn

  return FastStyleModel.from_workdir(workdir)


def _check_images(paths: list[str]) -> None:
  """Fails in a second (before the model loads) if a content image is missing or unreadable
  (decoded once here: a truncated file has a good header)."""
  for path in paths:
    if not os.path.isfile(path):
      raise UserError(f'content image {path!r} does not exist; pass existing image files')
    image_io.load_rgb(path)


def style_thumbnails(model: Any, size: int) -> list[np.ndarray]:
  """The style image of each style the net holds, as a size×size centre crop (uint8).

  A style file that is gone (a workdir fetched without its style images) becomes a grey square.
  """
  thumbs = []
  for spec in model.config.styles:
    try:
      img = data.load_styles([spec], max(size, model.config.style_size or 0))[0]
      thumbs.append(data.content_view(img, size))
    except (UserError, OSError, ValueError):
      thumbs.append(np.full((size, size, 3), 200, np.uint8))
  return thumbs


def _contents(paths: list[str], size: int) -> list[np.ndarray]:
  return [data.content_view(image_io.load_rgb(p, 'pass existing image files'), size) for p in paths]


def _stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def _share(x: float) -> str:
  return f'{abs(float(x)):.3g}'  # 0.75, 1, 0, 0.333 (abs: no "-0")


def mix_caption(labels: tuple[str, str], t: float) -> str:
  """`stripes 0.75 / dots 0.25` for t = 0.25 between styles `labels`."""
  return f'{labels[0]} {_share(1 - t)} / {labels[1]} {_share(t)}'


def require_multi(model: Any) -> None:
  """A UserError unless the network holds several styles (a conditional run)."""
  if model.n_styles < 2:
    raise UserError(
      'style-mix needs a multi-style (conditional) run: this network holds one '
      f'style ({model.labels[0]}); {MULTI_HINT}'
    )


def _check_steps(steps: int) -> int:
  if steps < 2:
    raise UserError(f'style-mix needs --steps ≥ 2 (both ends of the blend), got {steps}')
  return steps


def pick_styles(model: Any, text: str | None) -> tuple[int, int]:
  """The two styles of `--styles I,J` (indices or labels; default 0,1) of a multi-style net."""
  require_multi(model)
  if not text:
    return 0, 1
  picked = []
  for token in (t.strip() for t in text.split(',') if t.strip()):
    if token.lstrip('-').isdigit():
      picked.append(int(token))
    elif token in model.labels:
      picked.append(model.labels.index(token))
    else:
      picked.append(None)
  choices = ', '.join(f'{k}: {label}' for k, label in enumerate(model.labels))
  if (
    len(picked) != 2
    or any(k is None or not 0 <= k < model.n_styles for k in picked)
    or picked[0] == picked[1]
  ):
    raise UserError(
      f'--styles needs two different styles of this network as I,J (indices or '
      f'labels; it holds {choices}), got {text!r}'
    )
  return picked[0], picked[1]


################ Panels (the images before they are drawn) ################


def style_grid_panels(
  model: Any, contents: list[np.ndarray], names: list[str] | None = None
) -> Panels:
  """Row 0: a blank corner, then the style thumbnails; then per content image: the content and
  its output in each style. Captions on row 0 only (column titles); row labels: `names`."""
  from jaxstyle.fast_style.train import grid_panels  # jax, orbax: `figure --help` stays fast

  styles = [model.style_weights(style=k) for k in range(model.n_styles)]
  outputs = [[model.stylize(img, w) for w in styles] for img in contents]
  rows, captions = grid_panels(
    contents, outputs, style_thumbnails(model, contents[0].shape[0]), model.labels
  )
  return rows, captions, ['', *(names or [''] * len(contents))]


def style_mix_panels(
  model: Any, content: np.ndarray, styles: tuple[int, int] = (0, 1), steps: int = DEFAULT_MIX_STEPS
) -> Panels:
  """One row: thumbnail of style i, the outputs for (1-t)·e_i + t·e_j over `steps` values of t
  (so the second and second-to-last cells are the pure styles), thumbnail of style j."""
  require_multi(model)
  _check_steps(steps)
  i, j = styles
  eye = np.eye(model.n_styles)
  thumbs = style_thumbnails(model, content.shape[0])
  labels = (model.labels[i], model.labels[j])
  row, caps = [thumbs[i]], [labels[0]]
  for t in np.linspace(0.0, 1.0, steps):
    row.append(model.stylize(content, model.style_weights(mix=(1 - t) * eye[i] + t * eye[j])))
    caps.append(mix_caption(labels, t))
  return [[*row, thumbs[j]]], [[*caps, labels[1]]], []


def draw(panels: Panels, out: str, title: str | None = None) -> str:
  """Saves the panels as one PNG (`image_io.grid`, cells of at least MIN_CELL px)."""
  rows, labels, row_labels = panels
  image_io.save(
    out,
    image_io.grid(
      rows, labels=labels, row_labels=row_labels or None, title=title, min_cell=MIN_CELL
    ),
  )
  return out


def _title(model: Any, workdir: str) -> str:
  return f'{os.path.basename(os.path.normpath(workdir))}, step {model.step}'


################ The figures ################


def figure_style_grid(workdir: str, images: list[str], out: str, size: int = DEFAULT_SIZE) -> str:
  """Every content image in every style of the run's network, under the style images."""
  _check_images(images)
  model = _model(workdir)
  panels = style_grid_panels(model, _contents(images, size), [_stem(p) for p in images])
  return draw(panels, out, _title(model, workdir))


def figure_style_mix(
  workdir: str,
  image: str,
  out: str,
  styles: str | None = None,
  steps: int = DEFAULT_MIX_STEPS,
  size: int = DEFAULT_SIZE,
) -> str:
  """The interpolation strip between two styles of a conditional network."""
  _check_images([image])
  _check_steps(steps)
  model = _model(workdir)
  pair = pick_styles(model, styles)
  panels = style_mix_panels(model, _contents([image], size)[0], pair, steps)
  return draw(panels, out, f'{_title(model, workdir)}: {_stem(image)}')


################ CLI (registered in jaxstyle.tools.figures) ################


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """The flags only these figures use (--workdir, --images, --steps, -o are figures.py's)."""
  parser.add_argument('--image', default=None, help='style-mix: the content image')
  parser.add_argument(
    '--styles',
    default=None,
    help='style-mix: the two styles to blend, I,J (indices or labels; default 0,1)',
  )
  parser.add_argument(
    '--size',
    type=errors.positive_int,
    default=DEFAULT_SIZE,
    help=f'style-grid/style-mix: content crop size in px (default {DEFAULT_SIZE})',
  )


def default_output(figure: str, workdir: str) -> str:
  """RUN/figures/style_grid.png or RUN/figures/style_mix.png."""
  return os.path.join(workdir, 'figures', DEFAULT_OUTPUTS[figure])


def _mix_steps(text: str | None) -> int:
  if not text:
    return DEFAULT_MIX_STEPS
  try:
    return _check_steps(int(text))
  except ValueError:
    raise UserError(
      f'style-mix: --steps is the number of blends (an integer ≥ 2, e.g. 5), got {text!r}'
    ) from None


def run(args: argparse.Namespace) -> int:
  """Draws style-grid or style-mix and prints where it went."""
  if not args.workdir:
    raise UserError(f'figure {args.figure} needs --workdir (a fast-style training run)')
  _check_workdir(args.workdir)
  if args.figure == 'style-grid':
    images = list(args.images or ([args.image] if args.image else []))
    if not images:
      raise UserError('figure style-grid needs --images a.jpg [b.jpg ...] (the content images)')
  else:
    images = [args.image] if args.image else list(args.images or ())
    if len(images) != 1:
      raise UserError('figure style-mix needs one content image: --image a.jpg')
  _check_images(images)
  steps = _mix_steps(args.steps)
  out = args.output or default_output(args.figure, args.workdir)
  errors.writable_dir(os.path.dirname(os.path.abspath(out)), 'output folder (-o)')
  if args.figure == 'style-grid':
    out = figure_style_grid(args.workdir, images, out, args.size)
  else:
    out = figure_style_mix(args.workdir, images[0], out, args.styles, steps, args.size)
  print(out)
  return 0
