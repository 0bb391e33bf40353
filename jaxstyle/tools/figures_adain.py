"""`jaxstyle figure adain-grid | adain-alpha | adain-mix`: figures of an AdaIN model.

Like the fast-style figures these run the network: `--workdir` is an AdaIN training run or a
ported decoder folder (with `--encoder`, the reference's VGG), and the styles are any images.

  jaxstyle figure adain-grid  --workdir M --images c1.jpg c2.jpg --style-images s1.jpg s2.jpg
  jaxstyle figure adain-alpha --workdir M --image c.jpg --style-images s.jpg [--steps 5]
  jaxstyle figure adain-mix   --workdir M --image c.jpg --style-images s1.jpg s2.jpg [--steps 5]
  (each: [--encoder VGG] [--size 256] [-o OUT.png]; default RUN/figures/adain_{grid,alpha,mix}.png)

adain-grid: a row per content image (the content, then its output in each style) under a row of
the style thumbnails. adain-alpha: content, outputs for α in linspace(0, 1, steps), the style.
adain-mix: style 1, outputs for the weights (1 - t, t), t in linspace(0, 1, steps), style 2. Contents
and styles are centre crops of `size`; unseen styles are the point of AdaIN, so any image works.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from jaxstyle import errors, image_io
from jaxstyle.errors import UserError
from jaxstyle.fast_style.data import content_view
from jaxstyle.tools import figures_fast_style

FIGURES = ('adain-grid', 'adain-alpha', 'adain-mix')
DEFAULT_STEPS = 5
Panels = figures_fast_style.Panels


def _load(paths: list[str], size: int, what: str) -> list[np.ndarray]:
  out = []
  for path in paths:
    if not os.path.isfile(path):
      raise UserError(f'{what} {path!r} does not exist; pass existing image files')
    out.append(content_view(image_io.load_rgb(path), size))
  return out


def _stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def grid_panels(model: Any, contents: list[np.ndarray], styles: list[np.ndarray], names) -> Panels:
  """Row 0: the styles; then per content: the content and its output in every style."""
  content_names, style_names = names
  feats = [model.style_features(s, 0) for s in styles]
  rows = [[np.full_like(styles[0], 255), *styles]]
  labels = [['', *style_names]]
  for c in contents:
    rows.append([c, *(model.stylize(c, [f]) for f in feats)])
    labels.append([])
  return rows, labels, ['', *content_names]


def alpha_panels(model: Any, content: np.ndarray, style: np.ndarray, steps: int) -> Panels:
  """Content, outputs for α = 0 .. 1, style: the content-style trade-off."""
  feats = [model.style_features(style, 0)]
  alphas = np.linspace(0.0, 1.0, steps)
  row = [content, *(model.stylize(content, feats, alpha=float(a)) for a in alphas), style]
  return [row], [['content', *(f'alpha {a:.3g}' for a in alphas), 'style']], []


def mix_panels(model: Any, content: np.ndarray, styles: list[np.ndarray], steps: int) -> Panels:
  """Style 1, outputs for weights (1 - t, t), style 2: interpolation between two styles."""
  feats = [model.style_features(s, 0) for s in styles]
  ts = np.linspace(0.0, 1.0, steps)
  row = [styles[0], *(model.stylize(content, feats, [1.0 - t, t]) for t in ts), styles[1]]
  caps = ['style 1', *(f'{1 - t:.3g} / {t:.3g}' for t in ts), 'style 2']
  return [row], [caps], []


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Flags only these figures use (--workdir, --images, --image, --steps, --size, -o are shared)."""
  parser.add_argument('--style-images', nargs='+', default=(), help='adain-*: the style images')
  parser.add_argument('--encoder', default=None, help="adain-*: a ported decoder's VGG")


def _steps(text: str | None) -> int:
  try:
    steps = int(text) if text else DEFAULT_STEPS
  except ValueError:
    steps = 0
  if steps < 2:
    raise UserError(f'--steps is the number of panels in the strip (an integer ≥ 2), got {text!r}')
  return steps


def run(args: argparse.Namespace) -> int:
  """Draws the figure and prints where it went."""
  if not args.workdir or not os.path.isdir(args.workdir):
    raise UserError(
      f'figure {args.figure} needs --workdir: an AdaIN training run or a ported decoder folder'
    )
  want = {'adain-grid': None, 'adain-alpha': 1, 'adain-mix': 2}[args.figure]
  styles = list(args.style_images)
  if not styles or (want and len(styles) != want):
    raise UserError(f'figure {args.figure} needs --style-images: {want or "one or more"} image(s)')
  contents = list(args.images or ([args.image] if args.image else []))
  if not contents or (args.figure != 'adain-grid' and len(contents) != 1):
    raise UserError(f'figure {args.figure} needs the content image(s): --image / --images')
  steps = _steps(args.steps) if args.figure != 'adain-grid' else 0
  content_imgs = _load(contents, args.size, 'content image')
  style_imgs = _load(styles, args.size, 'style image')
  name = args.figure.replace('-', '_') + '.png'
  out = args.output or os.path.join(args.workdir, 'figures', name)
  errors.writable_dir(os.path.dirname(os.path.abspath(out)), 'output folder (-o)')
  from jaxstyle.adain.inference import AdainModel  # jax: only when a figure is drawn

  model = AdainModel.load(args.workdir, args.encoder)
  if args.figure == 'adain-grid':
    names = ([_stem(p) for p in contents], [_stem(p) for p in styles])
    panels = grid_panels(model, content_imgs, style_imgs, names)
  elif args.figure == 'adain-alpha':
    panels = alpha_panels(model, content_imgs[0], style_imgs[0], steps)
  else:
    panels = mix_panels(model, content_imgs[0], style_imgs, steps)
  title = os.path.basename(os.path.normpath(args.workdir))
  print(f'wrote {figures_fast_style.draw(panels, out, title)}')
  return 0
