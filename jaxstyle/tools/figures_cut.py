"""`jaxstyle figure cut-compare`: the same test images translated A->B by several runs side by side
(CycleGAN vs CUT vs FastCUT on the synthetic job: docs/cut.md, "Side by side").

Each run's generator comes from its latest checkpoint (`translate.load_generator`: G_A of a
CycleGAN run, G of a CUT run); the images are the first `--num-images` of the first run's test
split, squashed to its image size as `jaxstyle evaluate` reads them.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from jaxstyle import errors, image_io
from jaxstyle.errors import UserError

FIGURES = ('cut-compare',)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Flags only this figure uses (--workdirs and -o are shared)."""
  parser.add_argument(
    '--num-images', type=errors.positive_int, default=4, help='cut-compare: test images (rows)'
  )


def _label(workdir: str, config: dict) -> str:
  task = 'CycleGAN'
  if config.get('task') == 'cut':
    task = 'FastCUT' if config.get('nce', {}).get('flip_equivariance') else 'CUT'
  return f'{os.path.basename(os.path.normpath(workdir))} ({task})'


def figure_compare(workdirs: list[str], out: str, n_images: int = 4) -> str:
  """Rows: test images of domain A; columns: the input, then each run's translation."""
  from jaxstyle import checkpoint, models  # orbax and jax: `figure --help` stays instant
  from jaxstyle.cyclegan import data, presets, translate

  config, _ = checkpoint.load_run(workdirs[0])
  data_cfg = presets.data_config()
  data_cfg.update(dict(config.get('data', {})))
  src = data.make_sources(data_cfg, 'test')['A']
  inputs = [data.eval_image(data_cfg, src.image(i)) for i in range(min(n_images, len(src)))]
  columns, heads = [inputs], ['input (A)']
  for wd in workdirs:
    generator, params, cfg = translate.load_generator(workdir=wd)
    multiple = models.generator_multiple(cfg)
    columns.append(translate.translate_images(generator, params, inputs, None, multiple))
    heads.append(_label(wd, checkpoint.load_run(wd)[0]))
  rows = [[col[i] for col in columns] for i in range(len(inputs))]
  picture = image_io.grid(rows, labels=[heads], min_cell=128, title='A to B, the same test images')
  image_io.save(out, np.asarray(picture))
  return out


def run(args: argparse.Namespace) -> int:
  """Draws the figure and prints where it went."""
  runs = list(args.workdirs or ()) or ([args.workdir] if args.workdir else [])
  if not runs:
    raise UserError('figure cut-compare needs --workdirs RUN [RUN ...] (CycleGAN and CUT runs)')
  if not args.output:
    raise UserError('figure cut-compare needs -o OUT.png (the output PNG)')
  errors.writable_dir(os.path.dirname(os.path.abspath(args.output)), 'output folder (-o)')
  print(figure_compare(runs, args.output, args.num_images))
  return 0
