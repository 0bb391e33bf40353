"""`jaxstyle stylize CONTENT STYLE [STYLE2 ...] -o OUT [--config PRESET] [options]`: the pixel
optimisation. `--model RUN` (a trained network) is the command's other mode, which `jaxstyle.cli`
dispatches to the run's task (`fast_style/cli.py`); this module never imports it.

Flags mirror jcjohnson/neural-style's option set; each one overrides a field of the preset
(the named preset `jaxstyle.nst.presets.jcjohnson`, = configs/nst_jcjohnson.py, when no --config is
given), and `--config.key=value` extras work too (typed like every command's, by config_lib).
"""

from __future__ import annotations

import argparse
import os
import sys

import ml_collections

from jaxstyle import cli, config_lib, errors
from jaxstyle.nst import presets

ACCEPTS_CONFIG_OVERRIDES = True  # `--config.a.b=value` extras (jaxstyle.cli)

# flag dest -> config field; None values mean "not given, keep the preset's".
_FIELDS = {
  'content_weight': 'loss.content_weight',
  'style_weight': 'loss.style_weight',
  'tv_weight': 'loss.tv_weight',
  'content_layers': 'loss.content_layers',
  'style_layers': 'loss.style_layers',
  'layer_weights': 'loss.layer_weights',
  'normalisation': 'loss.normalisation',
  'style_weights': 'loss.style_weights',
  'style_blend': 'style_blend',
  'style_scale': 'image.style_scale',
  'style_mode': 'image.style_mode',
  'height': 'image.height',
  'max_side': 'image.max_side',
  'resize': 'image.resize',
  'pool': 'vgg.pool',
  'vgg19': 'vgg.path',
  'weights_source': 'vgg.source',
  'remat': 'vgg.remat',
  'seed': 'seed',
  'init': 'init',
  'init_image': 'init_image',
  'scales': 'scales',
  'optimizer': 'optim.name',
  'lr': 'optim.lr',
  'iterations': 'optim.segments',
  'segment_iters': 'optim.segment_iters',
  'strip_iters': 'strip_iters',
  'sweep': 'optim.sweep',
}


def _floats(text: str) -> tuple[float, ...]:
  return tuple(float(v) for v in text.split(',') if v)


def _names(text: str) -> tuple[str, ...]:
  return tuple(v.strip() for v in text.split(',') if v.strip())


def _ints(text: str) -> tuple[int, ...]:
  return tuple(int(v) for v in text.split(',') if v)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the stylize flags (the jcjohnson/neural-style set, plus sweeps and multi-scale)."""
  parser.add_argument(
    'images',
    nargs='*',
    metavar='IMAGE',
    help='CONTENT STYLE [STYLE ...] (optimisation NST); with --model: image '
    'files or folders to stylise',
  )
  parser.add_argument(
    '-o',
    '--output',
    default=None,
    help="the result's exact path (folders are created; default stylized.png, "
    'inside --workdir when one is given); with --model and a folder or '
    'several inputs: the output folder (default stylized/)',
  )
  parser.add_argument(
    '--config',
    default=None,
    help='preset file, e.g. configs/nst_book.py or '
    'configs/nst_quality.py:runlocal (default: the jcjohnson preset, '
    'configs/nst_jcjohnson.py)',
  )
  parser.epilog = (
    'Without --config the jcjohnson preset is used (jaxstyle.nst.presets.jcjohnson: '
    '512 px longest side, relu4_2 content, Gatys normalisation). Any field can '
    'also be set with --config.a.b=value, typed like the field (as in `jaxstyle '
    'train`).'
  )
  parser.add_argument(
    '--workdir',
    default=None,
    help='folder for snapshots, strip, metrics.jsonl (the result goes to -o)',
  )
  g = parser.add_argument_group('loss')
  g.add_argument('--content-weight', type=float)
  g.add_argument('--style-weight', type=float)
  g.add_argument('--tv-weight', type=float)
  g.add_argument('--content-layers', type=_names, help='e.g. block4_conv2 or relu4_2')
  g.add_argument('--style-layers', type=_names, help='comma list, e.g. relu1_1,relu2_1')
  g.add_argument('--layer-weights', type=_floats, help='one weight per style layer')
  g.add_argument('--normalisation', choices=presets.NORMALISATIONS)
  g.add_argument(
    '--style-weights',
    type=_floats,
    help='sweep: comma list of style weights, one output each (see --sweep)',
  )
  g.add_argument(
    '--sweep',
    choices=presets.SWEEP_STRATEGIES,
    help='how a --style-weights sweep runs: sequential (one compiled single-image '
    "program reused; each image equals a separate run's), concurrent (the same, "
    'one member per core at once), batched (one vmapped program), auto '
    '(concurrent on a multi-core CPU, else sequential; stylize.sweep_plan)',
  )
  g.add_argument('--style-blend', type=_floats, help='blend weights of several style images')
  g = parser.add_argument_group('image')
  g.add_argument('--height', type=int, help='output height (book: 400); width keeps the aspect')
  g.add_argument('--max-side', type=int, help='output longest side (jcjohnson -image_size)')
  g.add_argument('--resize', choices=('nearest', 'bilinear', 'bicubic', 'lanczos'))
  g.add_argument('--style-scale', type=float, help='style longest side relative to the output')
  g.add_argument(
    '--style-mode',
    choices=('match', 'scale'),
    help='match: stretch style to the output size (book); scale: keep its aspect',
  )
  g.add_argument(
    '--original-colors',
    action='store_true',
    default=None,
    help="keep the content's colours (luminance-only transfer)",
  )
  g.add_argument('--scales', type=int, help='coarse-to-fine levels (3 = 1/4, 1/2, full size)')
  g = parser.add_argument_group('network')
  g.add_argument('--vgg19', help='VGG19 weight file (Keras notop .h5 or torchvision .pth)')
  g.add_argument(
    '--weights-source',
    choices=presets.VGG_SOURCES,
    help='random: seeded random weights for smoke runs and benches (meaningless images)',
  )
  g.add_argument('--pool', choices=('max', 'avg'))
  g.add_argument(
    '--remat',
    choices=('auto', 'on', 'off'),
    help='recompute VGG activations in the backward pass (high resolution)',
  )
  g = parser.add_argument_group('optimisation')
  g.add_argument('--optimizer', choices=('lbfgs', 'adam', 'lbfgs_scipy'))
  g.add_argument('--lr', type=float, help='Adam learning rate (preprocessed units)')
  g.add_argument('--iterations', type=int, help='segments (outer iterations)')
  g.add_argument('--segment-iters', type=int, help='iterations per jitted segment (book: 20)')
  g.add_argument('--init', choices=('content', 'noise', 'image'))
  g.add_argument('--init-image')
  g.add_argument('--seed', type=int)
  g.add_argument('--strip-iters', type=_ints, help='segments shown in the progress strip')
  g.add_argument('--no-snapshots', action='store_true', help='skip per-segment PNGs')
  g.add_argument('--no-progress', action='store_true', help='no progress bar')


def build_config(args: argparse.Namespace) -> ml_collections.ConfigDict:
  """Preset (`--config`, else the jcjohnson preset) + flags + `--config.key=value` extras."""
  config = config_lib.load_config(args.config) if args.config else presets.jcjohnson('', '')
  overrides = {
    field: getattr(args, dest)
    for dest, field in _FIELDS.items()
    if getattr(args, dest, None) is not None
  }
  if args.height is not None and args.max_side is None:
    overrides['image.max_side'] = 0
  if args.max_side is not None and args.height is None:
    overrides['image.height'] = 0
  images = list(args.images)
  if len(images) < 2:
    raise errors.UserError(
      'stylize needs a content image and at least one style image (jaxstyle stylize CONTENT '
      'STYLE -o OUT), or --model RUN with images to stylise with a trained fast-style network'
    )
  overrides.update(
    content=images[0], styles=tuple(images[1:]), output=args.output or 'stylized.png'
  )
  if args.original_colors:
    overrides['colors'] = 'preserve'
  if args.no_snapshots:
    overrides['snapshots'] = False
  if args.no_progress:
    overrides['progress'] = False
  config_lib.apply_overrides(config, overrides)
  return config_lib.apply_cli_overrides(config, getattr(args, 'unknown', None) or [])


def config_from_argv(argv: list[str]) -> ml_collections.ConfigDict:
  """The config `jaxstyle stylize ARGV` runs, parsed exactly as `jaxstyle.cli` parses the command."""
  parser = cli.make_parser('stylize', sys.modules[__name__])
  args, unknown = parser.parse_known_args(argv)
  args.unknown = unknown
  return build_config(args)


def given_flags(args: argparse.Namespace) -> list[str]:
  """The optimisation's flags the user set (`jaxstyle stylize --model` refuses them: jaxstyle.cli)."""
  flags = [f'--{dest.replace("_", "-")}' for dest in _FIELDS if getattr(args, dest) is not None]
  return (
    flags + ['--config'] * bool(args.config) + ['--config.*'] * bool(getattr(args, 'unknown', None))
  )


def run(args: argparse.Namespace) -> int:
  """Runs the stylisation; the config, images and output folders are checked before VGG19 loads
  (bad ones are one error line from jaxstyle.cli, exit code 2)."""
  config = presets.check_inputs(presets.validate(build_config(args)))
  from jaxstyle.nst import outputs as nst_outputs
  from jaxstyle.nst import stylize  # the jax stack: `stylize --help` stays instant

  if args.output:  # -o is the result's exact path; --workdir holds snapshots, strip and metrics
    config.output = os.path.abspath(args.output)
  output = nst_outputs.output_path(config.output, args.workdir)
  errors.writable_dir(os.path.dirname(os.path.abspath(output)), 'output folder (-o)')
  if args.workdir:
    errors.writable_dir(args.workdir, '--workdir')
  result = stylize.stylize(config, workdir=args.workdir)
  for path in result['outputs']:
    print(f'wrote {path}')
  print(f'wrote {result["strip"]}')
  return 0
