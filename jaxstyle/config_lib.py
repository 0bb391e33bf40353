"""Helpers shared by config files: argument parsing, durations, loading configs by path, and the
one `--config.*` override parser every command uses.

Config files import only `ml_collections`, this module and their task's `presets` (never jax), so
they stay cheap to load in tests and in the sweep expander.

Why not `ml_collections.config_flags`: it registers `--config` on absl's global FLAGS, while the
`jaxstyle` command is argparse with sub-commands that each own their flags (`stylize` has
positionals and its own `--config`). One small parser here gives every command the same typing
rule and the same errors, without a second flag system.
"""

from __future__ import annotations

import ast
import difflib
import importlib.machinery
import importlib.util
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ml_collections

from jaxstyle.errors import ConfigError, UserError

_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('0', 'false', 'no', 'off')


class OverrideError(ConfigError):
  """A config override names no field, lacks a value, or has a value of the wrong type."""


def _literal(text: str) -> Any:
  """A Python literal if `text` is one, else `text` itself (for fields whose default is None)."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _element(value: Any, proto: Any, name: str) -> Any:
  """One element of a tuple/list value, typed like `proto` (the default's first element)."""
  if isinstance(value, str) and isinstance(proto, (bool, int, float)):
    return coerce(value, proto, name)
  if isinstance(proto, bool):
    ok = isinstance(value, bool)
  elif isinstance(proto, (int, float)):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (isinstance(proto, float) or isinstance(value, int))
    value = float(value) if ok and isinstance(proto, float) else value
  else:
    ok = isinstance(value, str) if isinstance(proto, str) else True
  if not ok:
    raise OverrideError(f'{name}: element {value!r} is not a {type(proto).__name__}')
  return value


def _sequence(text: str, current: tuple | list, name: str) -> tuple | list:
  """A comma list (`a,b`) or a Python literal (`(1, 2)`), elements typed like the default's."""
  stripped = text.strip()
  if stripped.startswith(('(', '[')):
    try:
      value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError) as err:
      raise OverrideError(f'{name}: {text!r} is not a Python literal') from err
    items = list(value) if isinstance(value, (tuple, list)) else [value]
    typed = [_element(v, current[0], name) for v in items] if current else items
  else:
    items = [part.strip() for part in stripped.split(',') if part.strip()]
    typed = (
      [coerce(v, current[0], name) for v in items] if current else [_literal(v) for v in items]
    )
  return type(current)(typed)


def coerce(text: str, current: Any, name: str = 'value') -> Any:
  """Types command-line `text` like `current` (the field's present value): the one rule for
  `--config.*` overrides and `config_lib.parse_arg`, so a string means the same in every command.

  bool: 1/true/yes/on or 0/false/no/off; int; float; str: verbatim; tuple/list: a comma list or a
  literal, elements typed like the default's first one; anything else (None): a Python literal,
  or the text itself.
  """
  if isinstance(current, bool):
    if text.strip().lower() in _TRUE:
      return True
    if text.strip().lower() in _FALSE:
      return False
    raise OverrideError(
      f'{name}: expected a boolean (true/false, 1/0, yes/no, on/off), got {text!r}'
    )
  if isinstance(current, (int, float)):
    kind = type(current)
    try:
      return kind(text)
    except ValueError:
      pass
    try:  # an integral float such as 1e4 is fine for an int field
      value = float(text)
    except ValueError:
      value = None
    if kind is int and value is not None and value.is_integer():
      return int(value)
    raise OverrideError(f'{name}: expected {kind.__name__}, got {text!r}')
  if isinstance(current, str):
    return text
  if isinstance(current, (tuple, list)):
    return _sequence(text, current, name)
  return _literal(text)


def _leaf_keys(node: Any, prefix: str = '') -> Iterator[str]:
  for key, value in node.items():
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      yield from _leaf_keys(value, f'{prefix}{key}.')
    else:
      yield f'{prefix}{key}'


def _locate(config: Any, dotted: str) -> tuple[Any, str]:
  """(parent node, leaf name) of an existing leaf field; else an error naming the nearest keys."""
  *parents, leaf = dotted.split('.')
  node = config
  for part in parents:
    node = node.get(part) if isinstance(node, (ml_collections.ConfigDict, dict)) else None
  if not isinstance(node, (ml_collections.ConfigDict, dict)) or leaf not in node:
    valid = list(_leaf_keys(config))
    near = difflib.get_close_matches(dotted, valid, n=3, cutoff=0.6)
    hint = f'did you mean {", ".join(near)}?' if near else f'fields: {", ".join(sorted(valid))}'
    raise OverrideError(f'config has no field {dotted!r}; {hint}')
  if isinstance(node[leaf], (ml_collections.ConfigDict, dict)):
    raise OverrideError(
      f'{dotted!r} is a section; override its fields, e.g. '
      f'{dotted}.{next(iter(node[leaf].keys()), "x")}=...'
    )
  return node, leaf


def get_field(config: Any, dotted: str) -> Any:
  """The value at `a.b.c` (an error naming the nearest keys when there is none)."""
  node, leaf = _locate(config, dotted)
  return node[leaf]


def apply_overrides(
  config: ml_collections.ConfigDict, overrides: dict[str, Any]
) -> ml_collections.ConfigDict:
  """Sets already-typed `{'loss.lambda_id': 0.0}` overrides (get_sweep, code) on existing fields.

  Works on locked configs (only existing fields can be set); returns `config`.
  """
  for dotted, value in overrides.items():
    node, leaf = _locate(config, dotted)
    try:
      node[leaf] = value
    except TypeError as err:
      raise OverrideError(f'{dotted}: {err}') from err
  return config


def parse_cli_overrides(config: Any, extras: Sequence[str]) -> dict[str, Any]:
  """`['--config.optim.lr=1e-4', '--config.seed', '3']` -> `{'optim.lr': 1e-4, 'seed': 3}`,
  each value typed by `coerce` against the field's current value."""
  overrides: dict[str, Any] = {}
  items = list(extras)
  i = 0
  while i < len(items):
    item = items[i]
    if not item.startswith('--config.') or item == '--config.':
      raise OverrideError(
        f'unrecognised argument {item!r} (overrides look like --config.a.b=value)'
      )
    key, eq, text = item[len('--config.') :].partition('=')
    if not eq:
      if i + 1 >= len(items) or items[i + 1].startswith('--'):
        raise OverrideError(f'--config.{key} needs a value (--config.{key}=VALUE)')
      i += 1
      text = items[i]
    node, leaf = _locate(config, key)
    overrides[key] = coerce(text, node[leaf], f'--config.{key}')
    i += 1
  return overrides


def apply_cli_overrides(
  config: ml_collections.ConfigDict, extras: Sequence[str]
) -> ml_collections.ConfigDict:
  """Applies `--config.a.b=value` command-line overrides: the one path every command uses."""
  return apply_overrides(config, parse_cli_overrides(config, extras))


def parse_arg(arg: str | None, lazy: bool = False, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses a config argument such as `preset=5_7,runlocal`.

  Rules (big_vision `configs/common.py`): `key=value` pairs are typed by `coerce` against the
  key's default; a bare key means True; a lone value with no `=` fills the first key. Unknown
  keys are an error unless `lazy` is set, so typos do not silently fall back to defaults.
  """
  result = ml_collections.ConfigDict(dict(defaults))
  if not arg:
    return result
  items = [item for item in arg.split(',') if item]
  keys = list(defaults)
  if len(items) == 1 and '=' not in items[0] and items[0] not in defaults and keys:
    # A lone value fills the first key, unless it looks like a misspelt key (`runlokal`) or the
    # first key is a flag: then it is reported as an unknown key, with the nearest ones.
    looks_like_key = difflib.get_close_matches(items[0], keys, n=1, cutoff=0.75)
    if not looks_like_key and not isinstance(defaults[keys[0]], bool):
      items = [f'{keys[0]}={items[0]}']
  for item in items:
    key, eq, value = item.partition('=')
    key = key.strip()
    if key not in defaults:
      if lazy:
        result[key] = value if eq else True
        continue
      near = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
      hint = f'did you mean {", ".join(near)}? ' if near else ''
      raise OverrideError(f'unknown config argument {key!r}; {hint}known: {", ".join(keys)}')
    if not eq:
      if not isinstance(defaults[key], bool):
        raise OverrideError(f'config argument {key!r} needs a value ({key}=...)')
      result[key] = True
    else:
      result[key] = coerce(value, defaults[key], key)
  return result


def to_steps(
  *,
  steps: int | None = None,
  epochs: float | None = None,
  steps_per_epoch: int | None = None,
) -> int:
  """Converts a duration given in steps or epochs to steps, so loops only see steps."""
  if (steps is None) == (epochs is None):
    raise ValueError('give exactly one of steps= or epochs=')
  if steps is not None:
    return int(steps)
  if not steps_per_epoch:
    raise ValueError('epochs= needs steps_per_epoch=')
  return int(math.ceil(epochs * steps_per_epoch))


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:arg]` the way `config_flags.DEFINE_config_file` does."""
  module = load_config_module(spec)
  _, _, arg = spec.partition(':')
  path = spec.partition(':')[0]
  if not callable(getattr(module, 'get_config', None)):
    raise ConfigError(
      f'config file {path!r} defines no get_config(arg); see configs/ for the layout of a '
      'config file'
    )
  config = run_config_code(path, module.get_config, arg or None)
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(
      f'config file {path!r}: get_config() returned a {type(config).__name__}, not an '
      'ml_collections.ConfigDict'
    )
  return config


def _line_in(err: BaseException, path: str) -> int | None:
  """The line of file `path` that raised `err`, if the innermost frame is in that file."""
  tb = err.__traceback__
  while tb is not None and tb.tb_next is not None:
    tb = tb.tb_next
  if tb is None or os.path.abspath(tb.tb_frame.f_code.co_filename) != os.path.abspath(path):
    return None
  return tb.tb_lineno


def run_config_code(path: str, fn: Callable[..., Any], *args: Any) -> Any:
  """`fn(*args)` for code of config file `path` (its import, get_config, get_sweep).

  An exception raised by the file's own lines (a typo, a NameError, a bad import) is a
  ConfigError naming the file and the line; one raised by jaxstyle's code under it stays what it
  is (a UserError already says what to do; anything else is a bug and keeps its traceback).
  """
  try:
    return fn(*args)
  except UserError:
    raise
  except Exception as err:
    line = _line_in(err, path)
    if line is None:
      raise
    raise ConfigError(f'config file {path!r}, line {line}: {type(err).__name__}: {err}') from err


def _config_source(path: str) -> bytes:
  """The bytes of config file `path`, or a ConfigError saying why it cannot be one."""
  hint = '(give a path such as configs/cyclegan_synthetic.py)'
  if not os.path.exists(path):
    what = 'is a symbolic link to a missing file' if os.path.islink(path) else 'does not exist'
    raise FileNotFoundError(f'config file {path!r} {what} {hint}')
  if os.path.isdir(path):
    raise ConfigError(f'config file {path!r} is a directory {hint}')
  try:
    with open(path, 'rb') as f:
      source = f.read()
  except OSError as err:
    raise ConfigError(f'cannot read config file {path!r}: {err.strerror or err}') from err
  if not source.strip():
    raise ConfigError(f'config file {path!r} is empty {hint}')
  return source


def load_config_module(spec: str):
  """Imports a config file by path (configs/ is not a package).

  A file that is not Python (a syntax error, binary data, a truncated copy) is a ConfigError
  naming the file and line, checked before anything in it runs.
  """
  path, _, _ = spec.partition(':')
  source = _config_source(path)
  try:
    compile(source, path, 'exec')
  except (SyntaxError, ValueError) as err:  # ValueError: null bytes in the source
    line = getattr(err, 'lineno', None)
    reason = (getattr(err, 'msg', None) or str(err)) + (f', line {line}' if line else '')
    raise ConfigError(
      f'config file {path!r} is not valid Python ({reason}); '
      'give a config .py file such as configs/cyclegan_synthetic.py'
    ) from err
  name = 'jaxstyle_config_' + os.path.splitext(os.path.basename(path))[0]
  loader = importlib.machinery.SourceFileLoader(name, path)  # any extension, unlike spec_from_file
  module_spec = importlib.util.spec_from_loader(name, loader)
  module = importlib.util.module_from_spec(module_spec)
  run_config_code(path, loader.exec_module, module)
  return module


class Checks:
  """Collects every out-of-range config value, so one error line names them all.

  Used by the tasks' `presets.validate` at load time, before any model is built; each message
  gives the field, its value and the allowed range.
  """

  def __init__(self, config: Any) -> None:
    self.config = config
    self.problems: list[str] = []

  def value(self, key: str) -> Any:
    """The field's value (a missing field is a problem of its own, reported as such)."""
    node = self.config
    for part in key.split('.'):
      node = node.get(part) if isinstance(node, (ml_collections.ConfigDict, dict)) else None
    return node

  def require(self, ok: bool, message: str) -> None:
    """Records `message` unless `ok`."""
    if not ok:
      self.problems.append(message)

  def choice(self, key: str, choices: Sequence[Any]) -> None:
    """`key` must be one of `choices`."""
    value = self.value(key)
    self.require(value in choices, f'{key}={value!r} is not one of {", ".join(map(repr, choices))}')

  def integer(self, key: str, low: int, high: int | None = None) -> None:
    """`key` must be an int in [low, high]."""
    value = self.value(key)
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    ok = ok and (high is None or value <= high)
    bound = f'between {low} and {high}' if high is not None else f'≥ {low}'
    self.require(ok, f'{key}={value!r} must be an integer {bound}')

  def number(
    self, key: str, low: float = 0.0, strict: bool = False, high: float | None = None
  ) -> None:
    """`key` must be a finite number > low (strict) or ≥ low, and < high when given."""
    value = self.value(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low) and (high is None or value < high)
    bound = f'{">" if strict else "≥"} {low:g}' + (f' and < {high:g}' if high is not None else '')
    self.require(ok, f'{key}={value!r} must be a number {bound}')

  def raise_if_any(self) -> None:
    """Raises one ConfigError naming every problem found."""
    if self.problems:
      raise ConfigError('invalid config: ' + '; '.join(self.problems))
