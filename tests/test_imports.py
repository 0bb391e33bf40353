"""The package's import graph has no cycle (every import, module- or function-level, from the AST)."""

import ast
import os

from helpers import ROOT

from jaxstyle import cli


def _modules() -> dict[str, str]:
  """`jaxstyle.a.b` -> path, for every module and package `__init__` under jaxstyle/."""
  out = {}
  for folder, _, files in os.walk(os.path.join(ROOT, 'jaxstyle')):
    for name in files:
      if name.endswith('.py'):
        rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].split(os.sep)
        out['.'.join(rel[:-1] if rel[-1] == '__init__' else rel)] = os.path.join(folder, name)
  return out


def _imports(module: str, path: str, known: set[str]) -> set[str]:
  """The jaxstyle modules `module` imports anywhere in its body (`from p import m` -> p.m)."""
  package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
  found = set()
  for node in ast.walk(ast.parse(open(path).read(), path)):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')
        base = '.'.join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
      names = [f'{base}.{a.name}' if f'{base}.{a.name}' in known else base for a in node.names]
    else:
      continue
    for name in names:
      while name and name not in known:  # `import jaxstyle.a.b.c` where c is an attribute
        name = name.rpartition('.')[0]
      if name and name != module:
        found.add(name)
  return found


def graph() -> dict[str, set[str]]:
  modules = _modules()
  return {m: _imports(m, p, set(modules)) for m, p in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
  """One cycle as a path [a, b, ..., a], or None (recursive DFS: the graph is small)."""
  state: dict[str, int] = {}  # 1 on the stack, 2 done
  stack: list[str] = []

  def visit(node: str) -> list[str] | None:
    state[node] = 1
    stack.append(node)
    for nxt in sorted(edges.get(node, ())):
      if state.get(nxt) == 1:
        return stack[stack.index(nxt) :] + [nxt]
      if nxt not in state:
        cycle = visit(nxt)
        if cycle:
          return cycle
    stack.pop()
    state[node] = 2
    return None

  for node in sorted(edges):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


def test_the_walker_sees_function_level_imports_and_cycles():
  edges = graph()
  assert 'jaxstyle.metrics' in edges['jaxstyle.nst.stylize']  # imported inside run_config()
  assert 'jaxstyle.config_lib' in edges['jaxstyle.main']
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == ['a', 'b', 'c', 'a']
  assert find_cycle({'a': {'b'}, 'b': set(), 'c': {'a', 'b'}}) is None


def test_no_import_cycle():
  edges = graph()
  assert len(edges) > 40
  assert find_cycle(edges) is None, ' -> '.join(find_cycle(edges))


def test_stylize_modes_are_dispatched_by_the_cli():
  """One `stylize` command; its two modes meet in jaxstyle.cli, so nst never imports fast_style."""
  assert cli.COMMANDS['stylize'][0] == 'jaxstyle.cli:Stylize'
  assert set(cli.STYLIZE_MODELS) == {'fast_style', 'adain'}
  edges = graph()
  assert 'jaxstyle.nst.cli' not in edges['jaxstyle.nst.stylize']
  assert not any(m.startswith('jaxstyle.adain') for m in edges['jaxstyle.nst.cli'])
  assert not any(m.startswith('jaxstyle.fast_style') for m in edges['jaxstyle.nst.cli'])


# Sub-packages from the bottom up: each may import only those before it (ARCHITECTURE.md).
# cut/ runs on cyclegan/'s trainer, data and evaluation.
LAYERS = (
  'kernels',
  'models',
  'ports',
  'fid',
  'cyclegan',
  'cut',
  'pix2pix',
  'nst',
  'fast_style',
  'adain',
  'tools',
)
# Top-level modules that are the CLI layer; the other top-level modules are shared machinery.
CLI_MODULES = {'jaxstyle.cli', 'jaxstyle.main'}


def package_of(module: str) -> str | None:
  """`jaxstyle.nst.cli` -> `nst`; None for a top-level module (`jaxstyle.cli`) or the package."""
  parts = module.split('.')
  return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else None


def subpackage_graph(edges: dict[str, set[str]]) -> dict[str, dict[str, set[str]]]:
  """{a: {b: {"jaxstyle.a.x -> jaxstyle.b.y", ...}}} for every import between sub-packages a != b."""
  out: dict[str, dict[str, set[str]]] = {}
  for src, targets in edges.items():
    for dst in targets:
      a, b = package_of(src), package_of(dst)
      if a and b and a != b:
        out.setdefault(a, {}).setdefault(b, set()).add(f'{src} -> {dst}')
  return out


def test_subpackage_graph_sees_every_import_form(tmp_path):
  src = tmp_path / 'm.py'
  src.write_text(
    'import jaxstyle.models.vgg\nfrom jaxstyle.ports import junyanz\n'
    'def f():\n  from jaxstyle import kernels\n  from jaxstyle.errors import UserError\n'
  )
  known = {
    'jaxstyle.models',
    'jaxstyle.models.vgg',
    'jaxstyle.ports',
    'jaxstyle.ports.junyanz',
    'jaxstyle.kernels',
    'jaxstyle.errors',
    'jaxstyle.nst.m',
  }
  edges = {
    'jaxstyle.nst.m': _imports('jaxstyle.nst.m', str(src), known),
    'jaxstyle.cli': {'jaxstyle.nst'},
  }
  assert edges['jaxstyle.nst.m'] == {
    'jaxstyle.models.vgg',
    'jaxstyle.ports.junyanz',
    'jaxstyle.kernels',
    'jaxstyle.errors',
  }
  assert {a: set(bs) for a, bs in subpackage_graph(edges).items()} == {
    'nst': {'models', 'ports', 'kernels'}
  }  # top-level modules (cli, errors) are not nodes
  assert find_cycle({'nst': {'models'}, 'models': {'ports'}, 'ports': {'nst'}}) == [
    'models',
    'ports',
    'nst',
    'models',
  ]


def test_no_cycle_between_subpackages():
  """Module- and function-level imports alike: a circle between sub-packages fails, named."""
  packages = subpackage_graph(graph())
  cycle = find_cycle({a: set(bs) for a, bs in packages.items()})
  if cycle:
    via = [sorted(packages[a][b])[0] for a, b in zip(cycle, cycle[1:])]
    raise AssertionError(
      'sub-packages import each other: ' + ' -> '.join(cycle) + ' (' + '; '.join(via) + ')'
    )


def test_subpackage_imports_point_down():
  """CLI/tools -> tasks -> shared machinery (models, ports) -> kernels; ports never imports a task."""
  packages = subpackage_graph(graph())
  assert set(packages) | {b for bs in packages.values() for b in bs} <= set(LAYERS)
  upward = sorted(
    via
    for a, bs in packages.items()
    for b, vias in bs.items()
    if LAYERS.index(b) > LAYERS.index(a)
    for via in vias
  )
  assert upward == [], 'imports that point up ' + str(LAYERS) + ': ' + '; '.join(upward)


def test_shared_top_level_modules_import_no_task():
  """errors, config_lib, image_io, parallel, ... sit below every task: only the CLI imports tasks."""
  edges = graph()
  shared = [m for m in edges if package_of(m) is None and m not in CLI_MODULES and m != 'jaxstyle']
  assert 'jaxstyle.image_io' in shared and 'jaxstyle.networks' in shared
  bad = sorted(
    f'{m} -> {t}'
    for m in shared
    for t in edges[m]
    if package_of(t) not in (None, 'kernels', 'models')
  )
  assert bad == []
