"""Helpers shared by config files: argument parsing, durations and loading configs by path.

Config files import only `ml_collections` and this module (never jax), so they stay cheap to
load in tests and in the sweep expander.
"""
from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

import ml_collections


def _coerce(value: str, default: Any) -> Any:
  """Turns `value` into the type of `default` (big_vision's rule)."""
  if isinstance(default, bool):
    if value.lower() in ("", "1", "true", "yes", "on"):
      return True
    if value.lower() in ("0", "false", "no", "off"):
      return False
    raise ValueError(f"expected a boolean, got {value!r}")
  if isinstance(default, int):
    return int(value)
  if isinstance(default, float):
    return float(value)
  return value


def parse_arg(arg: str | None, lazy: bool = False, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses a config argument such as `preset=5_7,runlocal`.

  Rules (big_vision `configs/common.py`): `key=value` pairs take the type of the key's default;
  a bare key means True; a lone value with no `=` fills the first key. Unknown keys are an
  error unless `lazy` is set, so typos do not silently fall back to defaults.
  """
  result = ml_collections.ConfigDict(dict(defaults))
  if not arg:
    return result
  items = [item for item in arg.split(",") if item]
  keys = list(defaults)
  if len(items) == 1 and "=" not in items[0] and items[0] not in defaults and keys:
    items = [f"{keys[0]}={items[0]}"]
  for item in items:
    key, eq, value = item.partition("=")
    key = key.strip()
    if key not in defaults:
      if lazy:
        result[key] = value if eq else True
        continue
      raise ValueError(f"unknown config argument {key!r}; known: {', '.join(keys)}")
    if not eq:
      if not isinstance(defaults[key], bool):
        raise ValueError(f"config argument {key!r} needs a value ({key}=...)")
      result[key] = True
    else:
      result[key] = _coerce(value, defaults[key])
  return result


def to_steps(
    *,
    steps: int | None = None,
    epochs: float | None = None,
    steps_per_epoch: int | None = None,
) -> int:
  """Converts a duration given in steps or epochs to steps, so loops only see steps."""
  if (steps is None) == (epochs is None):
    raise ValueError("give exactly one of steps= or epochs=")
  if steps is not None:
    return int(steps)
  if not steps_per_epoch:
    raise ValueError("epochs= needs steps_per_epoch=")
  return int(math.ceil(epochs * steps_per_epoch))


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:arg]` the way `config_flags.DEFINE_config_file` does."""
  module = load_config_module(spec)
  _, _, arg = spec.partition(":")
  return module.get_config(arg or None)


def load_config_module(spec: str):
  """Imports a config file by path (configs/ is not a package)."""
  path, _, _ = spec.partition(":")
  if not os.path.exists(path):
    raise FileNotFoundError(f"config file {path!r} does not exist (give a path such as "
                            "configs/cyclegan_synthetic.py)")
  name = "jaxstyle_config_" + os.path.splitext(os.path.basename(path))[0]
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, Any]) -> None:
  """Applies `{'loss.lambda_id': 0.0}`-style overrides to a (possibly locked) config."""
  for dotted, value in overrides.items():
    *parents, leaf = dotted.split(".")
    node = config
    for part in parents:
      node = node[part]
    if leaf not in node:
      raise KeyError(f"override {dotted!r} names no existing config field")
    node[leaf] = value
