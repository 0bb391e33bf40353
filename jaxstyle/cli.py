"""The `jaxstyle` command: one sub-command per job, each implemented in its own module.

Sub-command modules are imported lazily, so `jaxstyle --help` is instant and a broken optional
dependency of one job never breaks another.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Each module defines `add_arguments(parser)` and `run(args)`.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("jaxstyle.main", "train a model from a config file (CycleGAN or NST)"),
    "translate": ("jaxstyle.cyclegan.translate", "translate images with a trained CycleGAN generator"),
    "evaluate": ("jaxstyle.cyclegan.evaluate", "evaluate a CycleGAN run on a test split"),
    "stylize": ("jaxstyle.nst.cli",
                "neural style transfer of one content image (default preset: jcjohnson)"),
    "port-weights": ("jaxstyle.ports.cli", "convert public weights into jaxstyle's format"),
    "bench": ("jaxstyle.tools.bench", "speed benchmarks (see README performance table)"),
    "sweep": ("jaxstyle.tools.sweep", "expand and run a config's get_sweep() ablation"),
    "figure": ("jaxstyle.tools.figures", "re-draw a book figure from a workdir"),
    "demo": ("jaxstyle.tools.demo", "forward pass of every network on random input (smoke test)"),
}


def main(argv: list[str] | None = None) -> int:
  """Entry point of the `jaxstyle` console script."""
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = argparse.ArgumentParser(prog="jaxstyle", description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", metavar="COMMAND")
  for name, (_, help_text) in COMMANDS.items():
    sub.add_parser(name, help=help_text, add_help=False)
  if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
    parser.print_help()
    if argv and argv[0] not in ("-h", "--help"):
      print(f"\njaxstyle: unknown command {argv[0]!r}", file=sys.stderr)
      return 2
    return 0
  name, rest = argv[0], argv[1:]
  module = importlib.import_module(COMMANDS[name][0])
  cmd_parser = argparse.ArgumentParser(prog=f"jaxstyle {name}", description=COMMANDS[name][1])
  module.add_arguments(cmd_parser)
  args, unknown = cmd_parser.parse_known_args(rest)
  args.unknown = unknown
  return int(module.run(args) or 0)


if __name__ == "__main__":
  sys.exit(main())
