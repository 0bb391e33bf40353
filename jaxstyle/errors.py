"""User errors: mistakes the person at the keyboard can fix, reported as one line, never a traceback.

`jaxstyle.cli` is the one boundary: it prints `jaxstyle CMD: error: <message>` for a `UserError`
(and for plain file-system errors such as a missing file or a permission denied) and exits with 2;
every other exception is a bug and keeps its traceback. `--debug` or `JAXSTYLE_DEBUG=1` shows the
traceback of user errors too.

Code anywhere may raise a `UserError` (or a subclass that is also a ValueError/RuntimeError, so
callers catching those keep working). The message names the thing (file, field, flag) and says
what to do. Kept free of jax and of other jaxstyle imports so every layer can use it.
"""

from __future__ import annotations

import argparse
import math
import os


class UserError(Exception):
  """A mistake in the input (file, flag, config value, path) with a message that says what to do."""


class ConfigError(UserError, ValueError):
  """A config value outside what the code accepts (checked at load, before any model is built)."""


class BadInputError(UserError, ValueError):
  """An input file that cannot be used (unreadable, empty, not an image, wrong layout)."""


class NonFiniteLossError(UserError, FloatingPointError):
  """Raised when a training loss is NaN or inf; the bad state is never checkpointed."""


def check_finite(step: int, metrics: dict) -> None:
  """Raises NonFiniteLossError if any `*loss*` metric (fetched to the host) is NaN or inf."""
  bad = {k: float(v) for k, v in metrics.items() if 'loss' in k and not math.isfinite(float(v))}
  if bad:
    raise NonFiniteLossError(
      f'non-finite loss at step {step}: {bad}; all metrics: '
      f'{ {k: float(v) for k, v in metrics.items()} }. The state of this step was not saved; '
      'the last good checkpoint is intact (lower optim.lr or check the data).'
    )


def _int_at_least(text: str, low: int) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected an integer ≥ {low}, got {text!r}') from None
  if value < low:
    raise argparse.ArgumentTypeError(f'expected an integer ≥ {low}, got {value}')
  return value


def positive_int(text: str) -> int:
  """argparse type: an integer ≥ 1 (a batch size, a step count)."""
  return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
  """argparse type: an integer ≥ 0 (0 usually meaning "all" or "none")."""
  return _int_at_least(text, 0)


def writable_dir(path: str, what: str = 'output directory') -> str:
  """Creates `path` if needed and checks a file can be written there; a UserError otherwise.

  Run before any expensive work, so an unwritable --workdir / --out fails in a second, not after
  a compile or an epoch.
  """
  if os.path.exists(path) and not os.path.isdir(path):
    raise UserError(f'{what} {path!r} exists and is not a directory; choose another path')
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as err:
    raise UserError(
      f'cannot create {what} {path!r}: {err.strerror or err}; choose a path you can write to'
    ) from err
  if not os.access(path, os.W_OK | os.X_OK):
    raise UserError(f'{what} {path!r} is not writable; choose a path you can write to')
  return path


def readable_file(path: str, what: str = 'file') -> str:
  """Checks `path` is an existing, readable, non-empty regular file; a UserError otherwise."""
  if not os.path.exists(path):
    raise UserError(f'{what} {path!r} does not exist')
  if os.path.isdir(path):
    raise UserError(f'{what} {path!r} is a directory, expected a file')
  if not os.access(path, os.R_OK):
    raise UserError(f'{what} {path!r} is not readable (permissions)')
  if os.path.getsize(path) == 0:
    raise UserError(f'{what} {path!r} is empty')
  return path
