"""The `jaxstyle` command: one sub-command per job, each implemented in its own module.

Sub-command modules are imported lazily, so `jaxstyle --help` is instant and a broken optional
dependency of one job never breaks another.

This is also the error boundary (jaxstyle.errors): a user mistake (bad flag, bad config value,
missing or unreadable file, unwritable directory) is one line `jaxstyle CMD: error: ...` on
stderr and exit code 2; any other exception is a bug and keeps its traceback. `--debug` (before
or after the command) or `JAXSTYLE_DEBUG=1` shows the traceback of user errors too.

Quiet by default (house style §8): jaxstyle's own INFO lines (what a run is about to do, its
events, its summary) and every library's warnings and errors; the libraries' INFO logging (Orbax's
per-save chatter through absl, JAX's backend probing) only with `--verbose` or `JAXSTYLE_VERBOSE=1`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import sys
from typing import Any, NoReturn

from jaxstyle.errors import UserError

# name -> (module[:object], one-line help). Each defines `add_arguments(parser)` and `run(args)`;
# a module with `ACCEPTS_CONFIG_OVERRIDES = True` gets the `--config.a.b=v` extras in
# `args.unknown`; every other command rejects unknown flags.
COMMANDS: dict[str, tuple[str, str]] = {
  'train': ('jaxstyle.main', 'train a model from a config file (CycleGAN, NST or fast style)'),
  'translate': (
    'jaxstyle.cli:Translate',
    'translate images with a trained CycleGAN, CUT or pix2pix generator',
  ),
  'evaluate': ('jaxstyle.cli:Evaluate', 'evaluate a CycleGAN, CUT or pix2pix run on a test split'),
  'fid': ('jaxstyle.fid.cli', 'FID (and KID) of two image folders or statistics files'),
  'stylize': (
    'jaxstyle.cli:Stylize',
    'neural style transfer of one content image (default preset: jcjohnson)',
  ),
  'port-weights': ('jaxstyle.ports.cli', "convert public weights into jaxstyle's format"),
  'bench': ('jaxstyle.tools.bench', 'speed benchmarks (see docs/performance.md)'),
  'sweep': ('jaxstyle.tools.sweep', "expand and run a config's get_sweep() ablation"),
  'figure': ('jaxstyle.tools.figures', 're-draw a book figure from a workdir'),
  'demo': ('jaxstyle.tools.demo', 'forward pass of every network on random input (smoke test)'),
}

# `stylize` is one command in two modes: CONTENT STYLE... optimises the pixels (nst/cli.py);
# --model RUN applies a trained network, the module picked by the run's task (config.json).
STYLIZE_OPTIMISE = 'jaxstyle.nst.cli'
STYLIZE_MODELS: dict[str, str] = {
  'fast_style': 'jaxstyle.fast_style.cli',
  'adain': 'jaxstyle.adain.cli',
}
_DEFAULT_MODEL_KIND = (
  'fast_style'  # a run without a readable task: its module explains what is wrong
)


class Stylize:
  """`jaxstyle stylize`'s two modes behind one command, dispatched here so that no task imports
  another for it. Each mode's module has `add_arguments`, `given_flags(args)` (its own flags the
  user set, refused in the other mode) and `run`."""

  ACCEPTS_CONFIG_OVERRIDES = True  # the optimisation's `--config.a.b=v`

  @staticmethod
  def add_arguments(parser: argparse.ArgumentParser) -> None:
    importlib.import_module(STYLIZE_OPTIMISE).add_arguments(parser)
    group = parser.add_argument_group('a trained network instead of the optimisation (--model)')
    group.add_argument(
      '--model',
      metavar='RUN',
      help='a fast-style or AdaIN training run (jaxstyle train --config '
      'configs/fast_style_*.py | adain.py), or a ported AdaIN decoder: stylise the inputs',
    )
    for module in dict.fromkeys(STYLIZE_MODELS.values()):
      importlib.import_module(module).add_arguments(group)

  @staticmethod
  def run(args: argparse.Namespace) -> int:
    optimise = importlib.import_module(STYLIZE_OPTIMISE)
    models = [importlib.import_module(m) for m in dict.fromkeys(STYLIZE_MODELS.values())]
    if not args.model:
      flags = list(dict.fromkeys(f for module in models for f in module.given_flags(args)))
      if flags:
        raise UserError(f'{", ".join(flags)} need --model RUN (a trained network)')
      return optimise.run(args)
    flags = optimise.given_flags(args)
    if flags:
      raise UserError(
        f'{", ".join(flags)} set the optimisation NST; a --model run has its '
        'styles and weights built in'
      )
    kind = None
    for name in ('config.json', 'jaxstyle.json'):  # a run, or a port-weights folder
      try:
        with open(os.path.join(args.model, name)) as f:
          kind = json.load(f).get('task')
        break
      except (OSError, ValueError, AttributeError):
        continue
    chosen = importlib.import_module(STYLIZE_MODELS.get(kind, STYLIZE_MODELS[_DEFAULT_MODEL_KIND]))
    own = set(chosen.given_flags(args))
    foreign = [f for m in models if m is not chosen for f in m.given_flags(args) if f not in own]
    if foreign:
      raise UserError(
        f'{", ".join(dict.fromkeys(foreign))}: not a flag of this --model ({kind or "fast_style"})'
      )
    return chosen.run(args)


class _ByRunTask:
  """`translate` / `evaluate`: CycleGAN's module (CycleGAN and CUT runs, weight files) or, for a
  `--workdir` whose config.json says task pix2pix, pix2pix's (batch norm: its `--eval` mode)."""

  BASE = PIX2PIX = ''
  BY_WEIGHTS = False  # translate: a ported pix2pix generator (--weights DIR, --pretrained) too

  @classmethod
  def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
    importlib.import_module(cls.BASE).add_arguments(parser)
    importlib.import_module('jaxstyle.pix2pix.translate').add_arguments(
      parser.add_argument_group('pix2pix runs')
    )

  @classmethod
  def run(cls, args: argparse.Namespace) -> int:
    kind = None
    try:
      with open(os.path.join(getattr(args, 'workdir', None) or '', 'config.json')) as f:
        kind = json.load(f).get('task')
    except (OSError, ValueError, AttributeError):
      pass
    if kind == 'pix2pix' or (kind is None and cls.BY_WEIGHTS and _pix2pix_weights(args)):
      return importlib.import_module(cls.PIX2PIX).run(args)
    if args.eval or args.seed is not None:
      raise UserError('--eval and --seed apply to pix2pix runs (batch norm and dropout) only')
    return importlib.import_module(cls.BASE).run(args)


def _pix2pix_weights(args: argparse.Namespace) -> bool:
  """`--pretrained pix2pix/NAME`, or a `--weights` folder ported with `--kind pix2pix-G`."""
  if getattr(args, 'pretrained', None):
    from jaxstyle.ports import pretrained

    return pretrained.resolve(args.pretrained).family == 'pix2pix'
  try:
    with open(os.path.join(getattr(args, 'weights', None) or '', 'jaxstyle.json')) as f:
      return json.load(f).get('kind') == 'pix2pix-G'
  except (OSError, ValueError, AttributeError):
    return False


class Translate(_ByRunTask):
  BASE, PIX2PIX = 'jaxstyle.cyclegan.translate', 'jaxstyle.pix2pix.translate'
  BY_WEIGHTS = True


class Evaluate(_ByRunTask):
  BASE, PIX2PIX = 'jaxstyle.cyclegan.evaluate', 'jaxstyle.pix2pix.evaluate'


def command(name: str) -> Any:
  """The object that implements command `name` (a module, or `module:attribute`), imported now."""
  module, _, attribute = COMMANDS[name][0].partition(':')
  loaded = importlib.import_module(module)
  return getattr(loaded, attribute) if attribute else loaded


# File-system errors that mean "the path you gave is wrong", not "jaxstyle has a bug".
_PATH_ERRORS = (
  FileNotFoundError,
  PermissionError,
  IsADirectoryError,
  NotADirectoryError,
  FileExistsError,
)


class ArgumentParser(argparse.ArgumentParser):
  """argparse with the one-line error format of the boundary (no usage block on stderr)."""

  def error(self, message: str) -> NoReturn:
    self.exit(2, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def debug_enabled() -> bool:
  """Whether user errors should show their traceback (`JAXSTYLE_DEBUG=1`)."""
  return os.environ.get('JAXSTYLE_DEBUG', '').strip().lower() in ('1', 'true', 'yes', 'on')


def verbose_enabled() -> bool:
  """Whether library INFO logging is shown (`JAXSTYLE_VERBOSE=1`; `--verbose` sets it)."""
  return os.environ.get('JAXSTYLE_VERBOSE', '').strip().lower() in ('1', 'true', 'yes', 'on')


class _LogHandler(logging.Handler):
  """stderr (looked up per record, as `logging.lastResort`), with the quiet policy as a filter."""

  def __init__(self, verbose: bool):
    super().__init__(logging.INFO)
    self.verbose = verbose
    self.full = logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s')
    self.brief = logging.Formatter('%(levelname)s %(name)s: %(message)s')

  def filter(self, record: logging.LogRecord) -> bool:
    ours = record.name == 'jaxstyle' or record.name.startswith('jaxstyle.')
    return self.verbose or ours or record.levelno >= logging.WARNING

  def emit(self, record: logging.LogRecord) -> None:
    try:
      if self.verbose:
        text = self.full.format(record)
      elif record.levelno < logging.WARNING:
        text = record.getMessage()  # our own INFO lines: the run's story, no timestamps
      else:
        text = self.brief.format(record)
      bars = sys.modules.get('tqdm')  # clear an active progress bar around the line, then redraw
      with bars.tqdm.external_write_mode(file=sys.stderr) if bars else contextlib.nullcontext():
        sys.stderr.write(text + '\n')
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 -- logging's contract: never raise from emit
      self.handleError(record)


def configure_logging(verbose: bool) -> None:
  """Routes logging to stderr, quiet unless `verbose`; before any JAX backend initialises.

  The filter is on jaxstyle's handler, not on the libraries' loggers, so their warnings always
  show. A process that already set up logging (pytest, a notebook calling `main`) keeps its own;
  only a bare `basicConfig` handler (a library's implicit one) is replaced.
  """
  if verbose:
    os.environ['JAXSTYLE_VERBOSE'] = '1'  # sub-processes (`sweep --execute local`) inherit it
  root = logging.getLogger()
  mine = [
    h for h in root.handlers if isinstance(h, _LogHandler) or type(h) is logging.StreamHandler
  ]
  if len(mine) != len(root.handlers):
    return
  for handler in mine:
    root.removeHandler(handler)
  root.addHandler(_LogHandler(verbose))
  root.setLevel(logging.INFO)


def one_line(err: BaseException) -> str:
  """The message of `err` on one line (multi-line messages are joined with '; ')."""
  if isinstance(err, _PATH_ERRORS) and err.filename is not None and not isinstance(err, UserError):
    text = f'{err.strerror or type(err).__name__}: {err.filename}'
  else:
    text = str(err) or type(err).__name__
  return '; '.join(line.strip() for line in text.strip().splitlines() if line.strip())


def report(prog: str, err: BaseException) -> int:
  """Prints `err` as the boundary's one line and returns the exit code (2)."""
  print(f'{prog}: error: {one_line(err)}', file=sys.stderr)
  return 2


def make_parser(name: str, module: object) -> ArgumentParser:
  """The sub-command's parser: its module's flags plus --debug and --verbose."""
  parser = ArgumentParser(prog=f'jaxstyle {name}', description=COMMANDS[name][1])
  module.add_arguments(parser)  # type: ignore[attr-defined]
  parser.add_argument(
    '--debug', action='store_true', help='show the full traceback of errors (also JAXSTYLE_DEBUG=1)'
  )
  parser.add_argument(
    '--verbose',
    action='store_true',
    help="also show the libraries' INFO logging (Orbax, JAX); also JAXSTYLE_VERBOSE=1",
  )
  return parser


def main(argv: list[str] | None = None) -> int:
  """Entry point of the `jaxstyle` console script."""
  if argv is None:  # the console script itself: huge pages for XLA's buffers (jaxstyle.hugepages)
    from jaxstyle import hugepages

    hugepages.maybe_reexec()
  argv = list(sys.argv[1:] if argv is None else argv)
  debug, verbose = debug_enabled(), verbose_enabled()
  while argv and argv[0] in ('--debug', '--verbose'):
    debug, verbose = debug or argv[0] == '--debug', verbose or argv[0] == '--verbose'
    argv = argv[1:]
  parser = ArgumentParser(prog='jaxstyle', description=__doc__.splitlines()[0])
  parser.add_argument('--debug', action='store_true', help='show full tracebacks of errors')
  parser.add_argument(
    '--verbose',
    action='store_true',
    help="also show the libraries' INFO logging (Orbax checkpoint saves, JAX "
    'backend probing); by default a run prints its own progress, events '
    'and summary, and every warning',
  )
  sub = parser.add_subparsers(dest='command', metavar='COMMAND')
  for name, (_, help_text) in COMMANDS.items():
    sub.add_parser(name, help=help_text, add_help=False)
  if not argv or argv[0] in ('-h', '--help'):
    parser.print_help()
    return 0
  if argv[0] not in COMMANDS:
    print(
      f'jaxstyle: error: unknown command {argv[0]!r}; choose from {", ".join(COMMANDS)} '
      '(see jaxstyle --help)',
      file=sys.stderr,
    )
    return 2
  name, rest = argv[0], argv[1:]
  module = command(name)
  cmd_parser = make_parser(name, module)
  args, unknown = cmd_parser.parse_known_args(rest)
  if unknown and not getattr(module, 'ACCEPTS_CONFIG_OVERRIDES', False):
    cmd_parser.error(f'unrecognized arguments: {" ".join(unknown)}')
  args.unknown = unknown
  debug = debug or args.debug
  saved_debug = os.environ.get('JAXSTYLE_DEBUG')
  if debug:  # for library code (Orbax's thread tracebacks); put back when the command ends
    os.environ['JAXSTYLE_DEBUG'] = '1'
  args.verbose = verbose or args.verbose
  configure_logging(args.verbose)
  from jaxstyle.preemption import Preempted

  try:
    return int(module.run(args) or 0)
  except (UserError, *_PATH_ERRORS) as err:
    if debug:
      raise
    return report(f'jaxstyle {name}', err)
  except Preempted as err:  # SIGTERM / Ctrl-C after the state was saved: 143 / 130
    print(f'jaxstyle {name}: {one_line(err)}', file=sys.stderr)
    return err.exit_code
  except KeyboardInterrupt:
    if debug:
      raise
    print(f'jaxstyle {name}: interrupted', file=sys.stderr)
    return 130
  finally:  # whatever the exit path, no Orbax thread outlives the command
    if 'jaxstyle.checkpoint' in sys.modules:
      sys.modules['jaxstyle.checkpoint'].close_all()
    if saved_debug is None:
      os.environ.pop('JAXSTYLE_DEBUG', None)
    else:
      os.environ['JAXSTYLE_DEBUG'] = saved_debug


if __name__ == '__main__':
  sys.exit(main())
