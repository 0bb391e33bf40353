"""`jaxstyle stylize --model RUN IN... -o OUT`: a trained fast-style network over files, folders, video.

One `stylize` command (jaxstyle.cli's `Stylize`) registers these flags beside the optimisation's
and hands `--model` runs of task fast_style to `run`. `-o` is the exact path of the result, its folders created:
one input file: the output file (a folder if it is one); one folder: the output folder, mirroring
it; several inputs: the folder that holds their outputs (each input folder a sub-folder), as in
`jaxstyle translate`. There is no workdir: `--workdir` is refused. `--video IN -o OUT.mp4` stylises every frame (needs `jaxstyle[video]`).
Unreadable images are skipped with a warning; the command fails only if nothing was stylised.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from jaxstyle import errors, image_io
from jaxstyle.errors import BadInputError, UserError

log = logging.getLogger(__name__)


def add_arguments(group: argparse._ArgumentGroup) -> None:
  """The fast-style flags (a group of the `stylize` parser, after jaxstyle.cli's `--model`)."""
  group.add_argument(
    '--style',
    type=errors.nonnegative_int,
    default=None,
    help='which style of a multi-style network (0-based; default 0)',
  )
  group.add_argument(
    '--style-mix',
    default=None,
    help="blend of a multi-style network's styles, one weight per style (AdaIN: per "
    '--style-image), e.g. 0.3,0.7 (normalised to sum 1)',
  )
  group.add_argument('--video', metavar='IN', help='stylise a video file frame by frame')


def given_flags(args: argparse.Namespace) -> list[str]:
  """This mode's flags the user set (without --model, `jaxstyle.cli` refuses them)."""
  return (
    ['--video'] * bool(args.video)
    + ['--style'] * (args.style is not None)
    + ['--style-mix'] * (args.style_mix is not None)
  )


def _mix(text: str | None) -> tuple[float, ...] | None:
  if text is None:
    return None
  try:
    return tuple(float(v) for v in text.split(',') if v.strip())
  except ValueError:
    raise errors.ConfigError(
      f'--style-mix {text!r}: expected comma-separated numbers, e.g. 0.3,0.7'
    ) from None


def _outputs(inputs: list[str], output: str | None) -> list[tuple[str, str]]:
  """(input path, output path) for every image under `inputs`."""
  items = image_io.collect_inputs(inputs)
  single = len(inputs) == 1 and os.path.isfile(inputs[0])
  if single and output and not os.path.isdir(output) and not output.endswith(os.sep):
    return [(items[0][0], output)]
  folder = output or 'stylized'
  if os.path.splitext(folder)[1].lower() in ('.png', '.jpg', '.jpeg') and not os.path.isdir(folder):
    raise UserError(
      f'-o {folder!r} looks like a file, but {len(items)} images were given: pass an output folder'
    )
  return [(path, os.path.join(folder, name)) for path, name in items]


def run(args: argparse.Namespace) -> int:
  """Stylises `args.images` (or `args.video`) with the network of run `args.model`."""
  from jaxstyle.fast_style.inference import FastStyleModel  # jax, orbax: not at --help

  if not os.path.isdir(args.model):
    raise UserError(
      f'--model {args.model!r} is not a folder; pass the --workdir of a fast-style training run'
    )
  if getattr(args, 'workdir', None):
    raise UserError(
      "--workdir holds an optimisation run's snapshots and metrics; a --model run "
      'writes only its result, at -o'
    )
  if args.video and args.images:
    raise UserError('give --video IN or image inputs, not both')
  if not args.video and not args.images:
    raise UserError('nothing to stylise: give image files / folders, or --video IN')
  mix = _mix(args.style_mix)
  if args.video:
    from jaxstyle.fast_style import video  # imageio (optional: jaxstyle[video])

    if not args.output:
      raise UserError('--video needs -o OUT.mp4')
    info = video.probe(args.video)  # a missing or unreadable video fails before the model loads
    errors.writable_dir(os.path.dirname(os.path.abspath(args.output)), 'output folder (-o)')
    model = FastStyleModel.from_workdir(args.model)
    weights = model.style_weights(args.style, mix)
    result = video.stylize_video(
      args.video,
      args.output,
      lambda frame: model.stylize(frame, weights),
      progress=not args.no_progress,
    )
    print(
      f'wrote {result["output"]}: {result["frames"]} frames of {info.width}x{info.height} '
      f'at {result["frames_per_sec"]:.2f} frames/s ({result["seconds"]:.1f} s)'
    )
    return 0

  pairs = _outputs(list(args.images), args.output)
  if len(pairs) == 1:  # one image: its own error line (not a warning, then "nothing"), at once
    image_io.load_rgb(pairs[0][0])
  n_inputs = len(pairs)
  pairs, skipped = image_io.drop_unreadable(pairs, 'stylise')  # headers: before the model loads
  model = FastStyleModel.from_workdir(args.model)
  weights = model.style_weights(args.style, mix)
  from tqdm import tqdm

  done, t0 = 0, time.perf_counter()
  for path, out in tqdm(pairs, unit='img', desc='stylize', disable=args.no_progress):
    try:
      image = image_io.load_rgb(path)
    except (ValueError, OSError) as e:
      skipped += 1
      log.warning('skipped: %s', str(e).replace('\n', ' '))
      continue
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    image_io.save(out, model.stylize(image, weights))
    done += 1
    if n_inputs == 1:
      print(f'wrote {out}')
  if not done:
    raise BadInputError(
      f'nothing stylised: none of the {n_inputs} input(s) is a readable '
      'image (see the warnings above)'
    )
  wall = time.perf_counter() - t0
  print(
    f'stylized {done}, skipped {skipped} in {wall:.1f} s (step {model.step} of '
    f'{args.model}, style {model.labels if weights is None else weights.round(3).tolist()})'
  )
  return 0
