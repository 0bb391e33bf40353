"""`jaxstyle train`: load a config file, apply `--config.*` overrides, dispatch on `config.task`.

Kept thin on purpose (as the Flax examples' main.py): everything else lives in importable
`train(config, workdir)` functions that tests and notebooks call directly.
"""
from __future__ import annotations

import argparse
import ast
import logging
import sys
from typing import Any

from jaxstyle import config_lib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """`--config PATH[:ARG]` and `--workdir DIR`; `--config.a.b=value` extras come as unknowns."""
  parser.add_argument('--config', required=True,
                      help='config file, optionally with an argument: configs/x.py:runlocal')
  parser.add_argument('--workdir', required=True,
                      help='output directory; re-running with the same one resumes')


def _coerce(dotted: str, text: str, current: Any) -> Any:
  """Types `text` like the field's current value (big_vision / config_flags behaviour)."""
  if isinstance(current, bool):
    low = text.lower()
    if low in ('1', 'true', 'yes', 'on'):
      return True
    if low in ('0', 'false', 'no', 'off'):
      return False
    raise ValueError(f'--config.{dotted}: expected a boolean, got {text!r}')
  try:
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
  except ValueError as e:
    raise ValueError(f'--config.{dotted}: expected {type(current).__name__}, got {text!r}') from e
  if isinstance(current, str):
    return text
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_overrides(config: Any, extras: list[str]) -> dict[str, Any]:
  """`['--config.optim.lr=1e-4', '--config.seed', '3']` -> typed `{'optim.lr': 1e-4, 'seed': 3}`."""
  overrides: dict[str, Any] = {}
  i = 0
  while i < len(extras):
    item = extras[i]
    if not item.startswith('--config.'):
      raise ValueError(f'unrecognised argument {item!r} (overrides look like --config.a.b=value)')
    key, eq, text = item[len('--config.'):].partition('=')
    if not eq:
      if i + 1 >= len(extras):
        raise ValueError(f'--config.{key} needs a value')
      text, i = extras[i + 1], i + 1
    node = config
    *parents, leaf = key.split('.')
    for part in parents:
      if part not in node:
        raise KeyError(f'--config.{key}: the config has no field {part!r}')
      node = node[part]
    if leaf not in node:
      raise KeyError(f'--config.{key}: the config has no field {leaf!r}; fields here: '
                     f'{sorted(node.keys())}')
    overrides[key] = _coerce(key, text, node[leaf])
    i += 1
  return overrides


def run(args: argparse.Namespace) -> int:
  """Runs the job `config.task` names."""
  from jaxstyle import parallel
  parallel.maybe_init_distributed()  # before any other JAX call
  import jax
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
  config = config_lib.load_config(args.config)
  config_lib.apply_overrides(config, parse_overrides(config, list(getattr(args, 'unknown', []))))
  config.lock()
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
