"""`jaxstyle stylize --model RUN --style-image S IN... -o OUT`: arbitrary style transfer (AdaIN).

Registered by jaxstyle.cli's `Stylize` beside the fast-style flags (`--video` is shared: one flag
for both kinds of network) and run for `--model` folders of task 'adain': a training run, or a
`port-weights --kind adain-decoder` folder with `--encoder` (the reference's VGG).

Styles: one `--style-image` file; several, blended with `--style-mix` (equal by default) or
placed by `--mask` (a grey image of the content's size: white = the first style, black = the
last, evenly spaced greys between); or a folder, whose every image styles every input separately
(outputs named `<name>_<style>`). Inputs and `-o` follow the fast-style layout (fast_style/cli.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from jaxstyle import errors, image_io
from jaxstyle.errors import BadInputError, ConfigError, UserError

log = logging.getLogger(__name__)


def _unit_interval(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected a number in [0, 1], got {text!r}') from None
  if not 0.0 <= value <= 1.0:
    raise argparse.ArgumentTypeError(
      f'must be in [0, 1] (0: the content, 1: full stylisation), got {value:g}'
    )
  return value


def add_arguments(group: argparse._ArgumentGroup) -> None:
  """The AdaIN flags (a group of the `stylize` parser, after jaxstyle.cli's `--model`)."""
  group.add_argument(
    '--style-image',
    action='append',
    metavar='PATH',
    help='AdaIN: a style image (repeat to blend or to mask several), or a folder of styles, '
    'each applied separately',
  )
  group.add_argument(
    '--alpha',
    type=_unit_interval,
    default=None,
    help='AdaIN: content-style trade-off in [0, 1] (default 1: full style)',
  )
  group.add_argument(
    '--preserve-color',
    action='store_true',
    help="AdaIN: recolour each style to the content's colour statistics first",
  )
  group.add_argument(
    '--mask',
    metavar='PATH',
    help='AdaIN: grey image of the content size, a style per region (white: the first style)',
  )
  group.add_argument(
    '--encoder',
    metavar='PATH',
    help='AdaIN: the VGG of a ported decoder (vgg_normalised.pth or its port-weights folder)',
  )
  group.add_argument(
    '--style-size',
    type=errors.nonnegative_int,
    default=512,
    help='AdaIN: shorter side styles are resized to (default 512, as the reference; 0 keeps)',
  )
  group.add_argument(
    '--content-size',
    type=errors.nonnegative_int,
    default=0,
    help='AdaIN: shorter side inputs are resized to (default 0: keep their size)',
  )
  # Shared with fast_style/cli.py, which registers them: --style-mix W,W (here one weight per
  # --style-image, normalised; default equal) and --video IN.
  if '--style-mix' not in group._option_string_actions:
    group.add_argument('--style-mix', metavar='W,W', help='blend weights, one per style')
  if '--video' not in group._option_string_actions:
    group.add_argument('--video', metavar='IN', help='stylise a video file frame by frame')


def given_flags(args: argparse.Namespace) -> list[str]:
  """This mode's flags the user set (refused without --model, or for another kind of model)."""
  names = ('style_image', 'style_mix', 'alpha', 'mask', 'encoder')
  flags = [f'--{n.replace("_", "-")}' for n in names if getattr(args, n, None) is not None]
  flags += ['--preserve-color'] * bool(getattr(args, 'preserve_color', False))
  flags += ['--style-size'] * (getattr(args, 'style_size', 512) != 512)
  flags += ['--content-size'] * bool(getattr(args, 'content_size', 0))
  return flags + ['--video'] * bool(getattr(args, 'video', None))


def _styles(paths: list[str] | None) -> tuple[list[tuple[str, str]], bool]:
  """([(style path, its name)], whether each is applied separately (a folder))."""
  if not paths:
    raise UserError(
      'an AdaIN model needs a style: --style-image PATH (an image, or a folder of them)'
    )
  if len(paths) == 1 and os.path.isdir(paths[0]):
    items = image_io.collect_inputs(paths)
    return [(p, os.path.splitext(name)[0].replace(os.sep, '_')) for p, name in items], True
  for p in paths:
    if os.path.isdir(p):
      raise UserError(f'--style-image {p!r} is a folder: give it alone, or only image files')
    errors.readable_file(p, 'style image (--style-image)')
  return [(p, os.path.splitext(os.path.basename(p))[0]) for p in paths], False


def _outputs(inputs: list[str], output: str | None) -> list[tuple[str, str]]:
  from jaxstyle.fast_style.cli import _outputs as fast_style_outputs  # one output layout

  return fast_style_outputs(inputs, output)


def _load_mask(path: str | None, n_styles: int, separate: bool):
  if path is None:
    return None
  if n_styles < 2 or separate:
    raise ConfigError('--mask places several styles: give two or more --style-image files')
  errors.readable_file(path, 'mask (--mask)')
  import numpy as np

  return np.asarray(image_io.load_rgb(path), np.float64).mean(axis=-1)


def _labels(mask, original, hw: tuple[int, int], n_styles: int, path: str):
  """The mask's style index per pixel of the (resized) content; the mask has the original's size."""
  from jaxstyle.adain.inference import MaskError, mask_labels

  if mask is None:
    return None
  if mask.shape != original.shape[:2]:
    raise MaskError(
      f'--mask is {mask.shape[1]}x{mask.shape[0]} but the content image {path} is '
      f'{original.shape[1]}x{original.shape[0]}: the mask must have the content size'
    )
  labels = mask_labels(mask, n_styles)
  if labels.shape != hw:  # --content-size: nearest, so the regions keep their style indices
    import numpy as np
    from PIL import Image

    resized = Image.fromarray(labels.astype(np.uint8)).resize(hw[::-1], Image.NEAREST)
    labels = np.asarray(resized).astype(np.int64)
  return labels


def run(args: argparse.Namespace) -> int:
  """Stylises `args.images` (or `args.video`) with the AdaIN model `args.model`."""
  if getattr(args, 'workdir', None):
    raise UserError(
      '--workdir is for the optimisation; a --model run writes only its result, at -o'
    )
  if args.video and args.images:
    raise UserError('give --video IN or image inputs, not both')
  if not args.video and not args.images:
    raise UserError('nothing to stylise: give image files / folders, or --video IN')
  styles, separate = _styles(args.style_image)
  if args.style_mix is not None and (separate or args.mask):
    raise ConfigError('--style-mix blends several --style-image files (not with --mask)')
  from jaxstyle.adain import inference  # jax, orbax: not at --help

  weights = inference.parse_weights(args.style_mix, len(styles))
  mask = _load_mask(args.mask, len(styles), separate)
  alpha = 1.0 if args.alpha is None else args.alpha
  style_images = [image_io.load_rgb(p) for p, _ in styles]
  if args.video:
    if separate:
      raise UserError('--video takes one style (or a blend / mask of several), not a folder')
    return _run_video(args, inference, style_images, weights, alpha, mask)

  pairs = _outputs(list(args.images), args.output)
  if len(pairs) == 1:  # one image: its own error lines (unreadable, mask size) at once
    first = image_io.load_rgb(pairs[0][0])
    _labels(mask, first, first.shape[:2], len(styles), pairs[0][0])
  pairs, skipped = image_io.drop_unreadable(pairs, 'stylise')  # headers: before the model loads
  model = inference.AdainModel.load(args.model, args.encoder)
  feats = None
  if not args.preserve_color:
    feats = [model.style_features(s, args.style_size) for s in style_images]
  from tqdm import tqdm

  done, t0 = 0, time.perf_counter()
  for path, out in tqdm(pairs, unit='img', desc='stylize', disable=args.no_progress):
    try:
      original = image_io.load_rgb(path)
    except (ValueError, OSError) as e:
      skipped += 1
      log.warning('skipped: %s', str(e).replace('\n', ' '))
      continue
    content = inference.resize_short(original, args.content_size)
    labels = _labels(mask, original, content.shape[:2], len(styles), path)
    f = feats or [model.style_features(s, args.style_size, content) for s in style_images]
    groups = [(i, [f[i]]) for i in range(len(f))] if separate else [(None, f)]
    for i, group in groups:
      target = out if i is None else _suffixed(out, styles[i][1])
      os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
      image_io.save(target, model.stylize(content, group, weights, alpha, labels))
      if len(pairs) * len(groups) == 1:
        print(f'wrote {target}')
    done += 1
  if not done:
    raise BadInputError(
      f'nothing stylised: none of the {len(pairs)} input(s) is a readable image (see the '
      'warnings above)'
    )
  print(
    f'stylized {done} (x {len(styles) if separate else 1} styles), skipped {skipped} in '
    f'{time.perf_counter() - t0:.1f} s (alpha {alpha:g}, {args.model})'
  )
  return 0


def _suffixed(path: str, name: str) -> str:
  stem, ext = os.path.splitext(path)
  return f'{stem}_{name}{ext}'


def _run_video(args, inference, style_images, weights, alpha, mask) -> int:
  from jaxstyle.fast_style import video  # imageio (optional: jaxstyle[video])

  if not args.output:
    raise UserError('--video needs -o OUT.mp4')
  info = video.probe(args.video)
  errors.writable_dir(os.path.dirname(os.path.abspath(args.output)), 'output folder (-o)')
  if mask is not None and mask.shape != (info.height, info.width):
    raise inference.MaskError(
      f'--mask is {mask.shape[1]}x{mask.shape[0]} but the video frames are '
      f'{info.width}x{info.height}: the mask must have the frame size'
    )
  model = inference.AdainModel.load(args.model, args.encoder)
  labels = None if mask is None else inference.mask_labels(mask, len(style_images))
  feats = None
  if not args.preserve_color:
    feats = [model.style_features(s, args.style_size) for s in style_images]

  def frame_fn(frame):
    f = feats or [model.style_features(s, args.style_size, frame) for s in style_images]
    return model.stylize(frame, f, weights, alpha, labels)

  result = video.stylize_video(args.video, args.output, frame_fn, progress=not args.no_progress)
  print(
    f'wrote {result["output"]}: {result["frames"]} frames of {info.width}x{info.height} '
    f'at {result["frames_per_sec"]:.2f} frames/s ({result["seconds"]:.1f} s)'
  )
  return 0
