"""`jaxstyle train`: load a config file, apply `--config.*` overrides, dispatch on `config.task`
(cyclegan, nst, fast_style or adain).

Kept thin on purpose (as the Flax examples' main.py): everything else lives in importable
`train(config, workdir)` functions that tests and notebooks call directly.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import ml_collections

from jaxstyle import config_lib, errors, metrics, workdir

ACCEPTS_CONFIG_OVERRIDES = True  # `--config.a.b=value` extras (jaxstyle.cli)
TASKS = ('cyclegan', 'nst', 'fast_style', 'adain', 'cut', 'pix2pix')

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """`--config PATH[:ARG]` and `--workdir DIR`; `--config.a.b=value` extras come as unknowns."""
  parser.add_argument(
    '--config',
    required=True,
    help='config file, optionally with an argument: configs/x.py:runlocal',
  )
  parser.add_argument(
    '--workdir', required=True, help='output directory; re-running with the same one resumes'
  )


def build_config(spec: str, extras: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """The config a `train` run gets: the file, its `--config.*` overrides, validated, locked.

  Sweeps build each run's config through here too, so a typo or an out-of-range value fails
  before any run starts.
  """
  config = config_lib.load_config(spec)
  config_lib.apply_cli_overrides(config, extras)
  task = config.get('task', 'cyclegan')
  if task not in TASKS:
    raise errors.ConfigError(f'config.task={task!r} is not one of {", ".join(TASKS)}')
  if task == 'cyclegan':
    from jaxstyle.cyclegan import presets
  elif task == 'nst':
    from jaxstyle.nst import presets  # type: ignore[no-redef]
  elif task == 'adain':
    from jaxstyle.adain import presets  # type: ignore[no-redef]
  elif task == 'cut':
    from jaxstyle.cut import presets  # type: ignore[no-redef]
  elif task == 'pix2pix':
    from jaxstyle.pix2pix import presets  # type: ignore[no-redef]
  else:
    from jaxstyle.fast_style import presets  # type: ignore[no-redef]
  presets.validate(config)
  config.lock()
  return config


def run(args: argparse.Namespace) -> int:
  """Runs the job `config.task` names; bad configs and workdirs fail before JAX starts."""
  config = build_config(args.config, list(getattr(args, 'unknown', None) or []))
  if config.task in ('nst', 'fast_style', 'adain'):
    if config.task == 'nst':
      from jaxstyle.nst import presets
    elif config.task == 'adain':
      from jaxstyle.adain import presets  # type: ignore[no-redef]
    else:
      from jaxstyle.fast_style import presets  # type: ignore[no-redef]
    presets.check_inputs(config)
  elif config.task == 'cyclegan':  # init/resume/data.root: before the state is built (#24)
    from jaxstyle.cyclegan import presets as cyclegan_presets

    cyclegan_presets.check_inputs(config)
  elif config.task == 'cut':  # the same files as CycleGAN's
    from jaxstyle.cut import presets as cut_presets

    cut_presets.check_inputs(config)
  elif config.task == 'pix2pix':  # resume / data.root
    from jaxstyle.pix2pix import presets as pix2pix_presets

    pix2pix_presets.check_inputs(config)
  if '://' not in args.workdir:
    errors.writable_dir(args.workdir, 'workdir')
  # One trainer per workdir, and the same run on resume (jaxstyle/workdir.py): one process claims
  # it before JAX starts, several once connected (process 0). Released when the run ends.
  distributed = os.environ.get('JAXSTYLE_DISTRIBUTED') == '1'  # as parallel.maybe_init_distributed
  with workdir.Claim(args.workdir, config, distributed) as claim:
    return _train(config, args, claim)


def _all_processes_ok(ok: bool) -> bool:
  import numpy as np
  from jax.experimental import multihost_utils

  return bool(np.all(multihost_utils.process_allgather(np.asarray(ok, np.int32))))


def _train(
  config: ml_collections.ConfigDict, args: argparse.Namespace, claim: workdir.Claim
) -> int:
  """Starts JAX and the task's trainer in a claimed workdir."""
  from jaxstyle import parallel

  parallel.maybe_init_distributed()  # before any other JAX call
  import jax

  claim.connected(jax.process_index(), _all_processes_ok)

  # Logging is set up by jaxstyle.cli (quiet unless --verbose). One process: the trainer's own
  # first line already counts the devices.
  if jax.process_count() > 1 or getattr(args, 'verbose', False):
    log.info(
      'Process %d of %d; %d local / %d global devices (%s)',
      jax.process_index(),
      jax.process_count(),
      jax.local_device_count(),
      jax.device_count(),
      jax.devices()[0].platform,
    )
  task = config.get('task', 'cyclegan')
  if task == 'cyclegan':
    from jaxstyle.cyclegan import train as train_cyclegan

    result = train_cyclegan.train(config, args.workdir)
    log.info(metrics.summary_line(result))
    return 0
  if task == 'nst':
    from jaxstyle.nst import stylize

    stylize.run_config(config, args.workdir)
    return 0
  if task == 'fast_style':
    from jaxstyle.fast_style import train as train_fast_style

    result = train_fast_style.train(config, args.workdir)
    log.info(metrics.summary_line(result))
    return 0
  if task == 'adain':
    from jaxstyle.adain import train as train_adain

    result = train_adain.train(config, args.workdir)
    log.info(metrics.summary_line(result))
    return 0
  if task == 'cut':
    from jaxstyle.cut import train as train_cut

    result = train_cut.train(config, args.workdir)
    log.info(metrics.summary_line(result))
    return 0
  if task == 'pix2pix':
    from jaxstyle.pix2pix import train as train_pix2pix

    result = train_pix2pix.train(config, args.workdir)
    log.info(metrics.summary_line(result))
    return 0
  raise AssertionError(f'build_config accepted config.task={task!r}')


def main(argv: list[str] | None = None) -> int:
  """`python -m jaxstyle.main --config ... --workdir ...` (= `jaxstyle train ...`)."""
  from jaxstyle import cli

  return cli.main(['train', *(sys.argv[1:] if argv is None else argv)])


if __name__ == '__main__':
  sys.exit(main())
