"""The package's import graph has no cycle (every import, module- or function-level, from the AST)."""
import ast
import os

from jaxstyle import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _modules() -> dict[str, str]:
  """`jaxstyle.a.b` -> path, for every module and package `__init__` under jaxstyle/."""
  out = {}
  for folder, _, files in os.walk(os.path.join(ROOT, "jaxstyle")):
    for name in files:
      if name.endswith(".py"):
        rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].split(os.sep)
        out[".".join(rel[:-1] if rel[-1] == "__init__" else rel)] = os.path.join(folder, name)
  return out


def _imports(module: str, path: str, known: set[str]) -> set[str]:
  """The jaxstyle modules `module` imports anywhere in its body (`from p import m` -> p.m)."""
  package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
  found = set()
  for node in ast.walk(ast.parse(open(path).read(), path)):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".")
        base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
      names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    else:
      continue
    for name in names:
      while name and name not in known:  # `import jaxstyle.a.b.c` where c is an attribute
        name = name.rpartition(".")[0]
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
        return stack[stack.index(nxt):] + [nxt]
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
  assert "jaxstyle.nst.stylize" in edges["jaxstyle.nst.cli"]  # imported inside run()
  assert "jaxstyle.config_lib" in edges["jaxstyle.main"]
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle():
  edges = graph()
  assert len(edges) > 40
  assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_stylize_command_is_the_cli_module_and_one_way():
  assert cli.COMMANDS["stylize"][0] == "jaxstyle.nst.cli"
  edges = graph()
  assert "jaxstyle.nst.cli" not in edges["jaxstyle.nst.stylize"]
