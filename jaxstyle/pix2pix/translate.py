"""`jaxstyle translate --workdir RUN` for a pix2pix run, or `--weights DIR` / `--pretrained NAME` for a
ported reference pix2pix generator (dispatched by `jaxstyle.cli`).

The U-Net takes sides that are multiples of 2**num_downs (256 for unet_256), so each input is
squashed to the run's `image_size` (bicubic), as the reference's test loader does, translated, and
resized back to its own size. Two modes, the reference's:
  default   dropout on and each image's own batch statistics (`test.py` without `--eval`: the
            paper's stochastic G); one image per call, a dropout key per image from `--seed`
            (default: the run's seed);
  --eval    running statistics, no dropout: deterministic, batched.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import numpy as np
from PIL import Image

from jaxstyle import errors, image_io
from jaxstyle.errors import BadInputError, UserError
from jaxstyle.pix2pix import inference

log = logging.getLogger(__name__)


def add_arguments(parser: Any) -> None:
  """The pix2pix flags (`parser` may be an argument group of the shared command)."""
  parser.add_argument(
    '--eval',
    action='store_true',
    help="pix2pix runs: running batch-norm statistics and no dropout (the reference's --eval); "
    "default: dropout on and batch statistics, as the paper and the reference's test.py",
  )
  parser.add_argument(
    '--seed',
    type=errors.nonnegative_int,
    default=None,
    help="pix2pix runs: the dropout seed of the default mode (default: the run's seed; 0 for "
    'ported weights)',
  )


def translate_images(
  cfg: Any, params: Any, stats: Any, images: list[np.ndarray], eval_mode: bool, seed: int = 0
) -> list[np.ndarray]:
  """uint8 images of any size -> their translations (uint8, same sizes), in order."""
  size = cfg.data.image_size
  fn = inference.translate_fn(cfg.model, params, stats, eval_mode, seed)
  out = []
  for i, img in enumerate(images):
    img = image_io.as_rgb(img)
    x = np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))
    y = image_io.to_uint8(np.asarray(fn(image_io.to_float(x[None]), i))[0])
    h, w = img.shape[:2]
    out.append(
      y if (h, w) == (size, size) else np.asarray(Image.fromarray(y).resize((w, h), Image.BICUBIC))
    )
  return out


def run(args: argparse.Namespace) -> int:
  """Translates every readable input into `<out>/<name>.png` with the run's G; returns 0."""
  if getattr(args, 'direction', 'AtoB') != 'AtoB':
    raise UserError(
      f'--direction {args.direction}: a pix2pix run has one generator, trained for its '
      'data.direction; train another run for the other way'
    )
  items = image_io.collect_inputs(args.inputs)
  errors.writable_dir(args.out, '--out directory')
  if args.workdir:
    config, params, stats, step = inference.load_run(args.workdir)
    cfg, source = inference.run_config(config), f'step {step}'
    seed = cfg.seed if args.seed is None else args.seed
    params, stats = params['G'], stats['G']
  else:  # a ported reference generator: --weights DIR, or --pretrained NAME (fetched, ported once)
    weights = args.weights
    if getattr(args, 'pretrained', None):
      from jaxstyle.ports import pretrained

      weights, new = pretrained.port(pretrained.resolve(args.pretrained))
      if new:
        print(f'downloaded and ported {args.pretrained} -> {weights} (reused next time)')
    cfg, params, stats = inference.load_ported(weights)
    source = os.path.basename(os.path.normpath(weights))
    seed = args.seed or 0
  names, images, skipped = [], [], 0
  for path, name in items:
    try:
      images.append(image_io.load_rgb(path))
      names.append(name)
    except (ValueError, OSError) as e:
      skipped += 1
      log.warning('skipped: %s', str(e).replace('\n', ' '))
  if not images:
    raise BadInputError(f'nothing to translate: none of the {len(items)} input(s) is readable')
  outs = translate_images(cfg, params, stats, images, args.eval, seed)
  for name, y in zip(names, outs):
    image_io.save(os.path.join(args.out, name), y)
  mode = '--eval: running statistics' if args.eval else f'dropout + batch statistics, seed {seed}'
  print(f'translated {len(outs)}, skipped {skipped} ({source}, {mode}); wrote PNGs to {args.out}')
  return 0
