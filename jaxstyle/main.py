"""`jaxstyle train`: load a config file, apply `--config.*` overrides, dispatch on `config.task`.

Kept thin on purpose (as the Flax examples' main.py): everything else lives in importable
`train(config, workdir)` functions that tests and notebooks call directly.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import ml_collections

from jaxstyle import config_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """`--config PATH[:ARG]` and `--workdir DIR`; `--config.a.b=value` extras come as unknowns."""
  parser.add_argument('--config', required=True,
                      help='config file, optionally with an argument: configs/x.py:runlocal')
  parser.add_argument('--workdir', required=True,
                      help='output directory; re-running with the same one resumes')


def build_config(spec: str, extras: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """The config a `train` run gets: the file, then its `--config.*` overrides, then locked.

  Sweeps build each run's config through here too, so a typo fails before any run starts.
  """
  config = config_lib.load_config(spec)
  config_lib.apply_cli_overrides(config, extras)
  config.lock()
  return config


def run(args: argparse.Namespace) -> int:
  """Runs the job `config.task` names; a bad override is one error line and exit code 2."""
  try:
    config = build_config(args.config, list(getattr(args, 'unknown', None) or []))
  except config_lib.OverrideError as err:
    print(f'jaxstyle train: error: {err}', file=sys.stderr)
    return 2
  from jaxstyle import parallel
  parallel.maybe_init_distributed()  # before any other JAX call
  import jax
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
  logging.info('Process %d of %d; %d local / %d global devices (%s)', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].platform)
  task = config.get('task', 'cyclegan')
  if task == 'cyclegan':
    from jaxstyle.cyclegan import train as train_cyclegan
    result = train_cyclegan.train(config, args.workdir)
    logging.info('Done: %s', result)
    return 0
  if task == 'nst':
    from jaxstyle.nst import stylize
    stylize.run_config(config, args.workdir)
    return 0
  raise ValueError(f'unknown config.task {task!r}; expected cyclegan or nst')


def main(argv: list[str] | None = None) -> int:
  """`python -m jaxstyle.main --config ... --workdir ...`."""
  parser = argparse.ArgumentParser(prog='python -m jaxstyle.main', description=__doc__.splitlines()[0])
  add_arguments(parser)
  args, unknown = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
  args.unknown = unknown
  return run(args)


if __name__ == '__main__':
  sys.exit(main())
