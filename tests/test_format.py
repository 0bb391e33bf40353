"""One formatter for the tree: `ruff format` (2-space indent, 100 columns, single quotes; pyproject)."""

import subprocess
import sys

from helpers import ROOT

PATHS = ('jaxstyle', 'tests', 'configs', 'launch')


def test_code_is_formatted():
  """Fails naming every file `ruff format` would change; fix with `ruff format jaxstyle tests configs launch`."""
  result = subprocess.run(
    [sys.executable, '-m', 'ruff', 'format', '--check', *PATHS],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  assert result.returncode == 0, result.stdout + result.stderr
