"""The package layout's rules (ARCHITECTURE.md), checked on the source so a change that breaks one fails CI."""

import ast
import pathlib

import pytest
from helpers import ROOT

PACKAGE = ROOT / 'jaxstyle'
SOURCES = sorted(p for p in PACKAGE.rglob('*.py') if 'peers' not in p.parts)


def _imports(path: pathlib.Path) -> set[str]:
  """Every module name `path` imports, at any depth (function-level imports included)."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f'{node.module}.{alias.name}' for alias in node.names)
  return names


def test_sources_found():
  assert len(SOURCES) > 30 and (PACKAGE / 'kernels' / 'dispatch.py') in SOURCES


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_size(path):
  lines = path.read_text().count('\n')
  assert lines <= 420, f'{path.relative_to(ROOT)} has {lines} lines; split it (house style: ~400)'


def test_orbax_only_in_checkpoint():
  users = [
    p.relative_to(ROOT).as_posix()
    for p in SOURCES
    if any(n.split('.')[0] == 'orbax' for n in _imports(p))
  ]
  assert users == ['jaxstyle/checkpoint.py']


def test_models_reach_kernels_only_through_layers():
  """Network definitions stay backend-free: the conv implementation is chosen in layers.py alone."""
  offenders = [
    p.relative_to(ROOT).as_posix()
    for p in (PACKAGE / 'models').glob('*.py')
    if p.name != 'layers.py' and any(n.startswith('jaxstyle.kernels') for n in _imports(p))
  ]
  assert offenders == []


def test_kernels_import_no_task_code():
  """kernels/ sits below models/: it must not import the tasks, the CLI or the models."""
  for path in (PACKAGE / 'kernels').glob('*.py'):
    bad = [
      n
      for n in _imports(path)
      if n.startswith(('jaxstyle.cyclegan', 'jaxstyle.nst', 'jaxstyle.tools', 'jaxstyle.models'))
    ]
    assert bad == [], f'{path.name} imports {bad}'


def test_configs_import_no_jax():
  """configs/ files stay cheap to load (tests, the sweep expander): no jax, flax or numpy."""
  for path in sorted((ROOT / 'configs').glob('*.py')):
    heavy = [n for n in _imports(path) if n.split('.')[0] in ('jax', 'flax', 'numpy', 'optax')]
    assert heavy == [], f'{path.name} imports {heavy}'
