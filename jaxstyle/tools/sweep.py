"""`jaxstyle sweep`: expand a config's `get_sweep()` into one training run per override dict.

The sweep is data next to its config (docs/design/house_style.md); this module only names, launches and
summarises the runs. Each run's workdir is `BASE/<name>`, where the name is derived from the
overrides (`loss.lambda_id=0.0`), so re-running the sweep resumes every run from its workdir.

  jaxstyle sweep --config configs/cyclegan_book_apple2orange.py --workdir runs/idt      # print
  jaxstyle sweep --config ... --workdir runs/idt --execute local --parallel 2            # run here
  jaxstyle sweep --config ... --workdir gs://b/idt --tpu my-tpu --zone us-central2-b     # print
  jaxstyle sweep --config ... --workdir gs://b/idt --execute tpu --tpu my-tpu --zone ...  # run
  jaxstyle sweep --summarize --workdir runs/idt                                          # table
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import ml_collections

from jaxstyle import cli, config_lib, errors, metrics
from jaxstyle import main as train_main
from jaxstyle.cyclegan import evaluate

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TPU_SCRIPT = os.path.join('launch', 'tpu.py')
_UNSAFE = re.compile(r'[^A-Za-z0-9._=,+-]')


def format_value(value: Any) -> str:
  """A value as `--config.k=v` text that `config_lib.coerce` parses back to the same value."""
  if isinstance(value, float):
    return repr(value)
  if isinstance(value, (tuple, list)):
    return repr(tuple(value))
  return str(value)


def run_name(overrides: dict[str, Any]) -> str:
  """Filesystem- and gs://-safe name from sorted overrides: `a.b=1,c=x`; `default` if none."""
  if not overrides:
    return 'default'

  def text(value: Any) -> str:  # tuples as 128x128: commas separate the keys
    return 'x'.join(map(str, value)) if isinstance(value, (tuple, list)) else format_value(value)

  parts = [f'{key}={text(overrides[key])}' for key in sorted(overrides)]
  return _UNSAFE.sub('_', ','.join(parts))


def override_flags(overrides: dict[str, Any]) -> list[str]:
  """`--config.k=v` flags of one run's overrides, sorted by key."""
  return [f'--config.{k}={format_value(v)}' for k, v in sorted(overrides.items())]


def run_config(
  config_spec: str, overrides: dict[str, Any], extra: Sequence[str] = ()
) -> ml_collections.ConfigDict:
  """One run's config, built exactly as its `jaxstyle train` command will build it.

  The shared extras come first and the run's overrides last, both as command-line text through
  `main.build_config`, so the sweep checks the very parsing each run will do.
  """
  return train_main.build_config(config_spec, [*extra, *override_flags(overrides)])


def expand_sweep(config_spec: str, extra: Sequence[str] = ()) -> list[tuple[dict[str, Any], str]]:
  """`[(overrides, run_name), ...]` from the config file's `get_sweep()`.

  Every run's config is built here (`run_config`), so a typo, a bad shared `--config.*` extra, or
  a value that would not survive the command line fails before any run (or TPU time) starts.
  """
  module = config_lib.load_config_module(config_spec)
  if not hasattr(module, 'get_sweep'):
    raise errors.ConfigError(f'{config_spec.partition(":")[0]} defines no get_sweep()')
  runs = []
  for overrides in config_lib.run_config_code(config_spec.partition(':')[0], module.get_sweep):
    config = run_config(config_spec, overrides, extra)
    for key, value in overrides.items():
      if config_lib.get_field(config, key) != value:
        raise ValueError(
          f'get_sweep() value {key}={value!r} reads back from the command line '
          f'as {config_lib.get_field(config, key)!r}'
        )
    runs.append((dict(overrides), run_name(overrides)))
  names = [name for _, name in runs]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f'get_sweep() has duplicate runs: {duplicates}')
  return runs


def train_args(
  config_spec: str, workdir: str, overrides: dict[str, Any], extra: Sequence[str] = ()
) -> list[str]:
  """Arguments of `jaxstyle train` for one run (shared extras first, the run's overrides last)."""
  return ['--config', config_spec, '--workdir', workdir, *extra, *override_flags(overrides)]


def run_workdir(base: str, name: str) -> str:
  """`base/name`, keeping gs:// prefixes intact (os.path.join would too, but be explicit)."""
  return base.rstrip('/') + '/' + name


def local_commands(
  config_spec: str, base: str, runs: list[tuple[dict, str]], extra: list[str] = ()
) -> list[list[str]]:
  """`jaxstyle train ...` per run, as printed by the dry run."""
  return [
    ['jaxstyle', 'train', *train_args(config_spec, run_workdir(base, name), ov, extra)]
    for ov, name in runs
  ]


def tpu_commands(
  config_spec: str,
  base: str,
  runs: list[tuple[dict, str]],
  tpu: str,
  zone: str,
  extra: list[str] = (),
  execute: bool = False,
) -> list[list[str]]:
  """`python3 launch/tpu.py run ...` per run; the runs share the slice, so they go in order."""
  cmds = []
  for ov, name in runs:
    cmd = [
      'python3',
      TPU_SCRIPT,
      'run',
      '--name',
      tpu,
      '--zone',
      zone,
      *train_args(config_spec, run_workdir(base, name), ov, extra),
    ]
    cmds.append(cmd + (['--execute'] if execute else []))
  return cmds


_PIN = (
  "import os, sys; os.sched_setaffinity(0, [int(c) for c in sys.argv[1].split(',')]); "
  'os.execvp(sys.argv[2], sys.argv[2:])'
)


def core_slots(parallel: int, cores: Sequence[int] | None = None) -> list[list[int]]:
  """Disjoint CPU sets, one per concurrent run: `parallel` runs share the machine's cores.

  XLA:CPU and the data threads size their pools from the CPUs a process may run on, so pinning
  each run to its own set keeps threads per run × runs ≤ cores (no oversubscription). More runs
  than cores are capped at one core each.
  """
  cores = sorted(os.sched_getaffinity(0)) if cores is None else list(cores)
  n = max(1, min(parallel, len(cores)))
  return [cores[k * len(cores) // n : (k + 1) * len(cores) // n] for k in range(n)]


def execute_local(
  commands: list[list[str]], workdirs: list[str], parallel: int = 1, timeout: float | None = None
) -> list[int]:
  """Runs `jaxstyle train` commands, `parallel` at a time; each logs to `{workdir}/train.log`.

  The console name `jaxstyle` is replaced by this interpreter's `-m jaxstyle.cli`, so the runs
  use the same environment as the sweep even when the venv is not activated. With `parallel` > 1
  each run is pinned to its own share of the cores (`core_slots`).
  """
  pending = list(zip(commands, workdirs))
  slots = core_slots(parallel) if parallel > 1 else [None]
  if parallel > len(slots):
    print(
      f'[sweep] --parallel {parallel} > {len(slots)} cores: running {len(slots)} at a time',
      flush=True,
    )
  free = list(range(len(slots)))
  running: list[tuple[subprocess.Popen, Any, str, float, int]] = []
  codes: dict[str, int] = {}
  while pending or running:
    while pending and free:
      cmd, workdir = pending.pop(0)
      slot = free.pop(0)
      os.makedirs(workdir, exist_ok=True)
      log = open(os.path.join(workdir, 'train.log'), 'ab')
      argv = [sys.executable, '-m', 'jaxstyle.cli', *cmd[1:]] if cmd[0] == 'jaxstyle' else cmd
      cores = slots[slot]
      where = f' on cores {",".join(map(str, cores))}' if cores is not None else ''
      print(f'[sweep] start {workdir}{where}', flush=True)
      if cores is not None:  # pin, then exec the command: no preexec_fn in a threaded parent
        argv = [sys.executable, '-c', _PIN, ','.join(map(str, cores)), *argv]
      proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
      running.append((proc, log, workdir, time.monotonic(), slot))
    time.sleep(0.2)
    for item in list(running):
      proc, log, workdir, start, slot = item
      if proc.poll() is None and timeout is not None and time.monotonic() - start > timeout:
        proc.kill()
        proc.wait()
      if proc.poll() is not None:
        log.close()
        running.remove(item)
        free.append(slot)
        codes[workdir] = proc.returncode
        status = 'ok' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'
        print(
          f'[sweep] {status} {workdir} ({time.monotonic() - start:.1f} s, '
          f'log: {os.path.join(workdir, "train.log")})',
          flush=True,
        )
  return [codes[w] for w in workdirs]


def collect(base: str) -> list[tuple[str, dict[str, Any]]]:
  """`[(run_name, {metric: value})]`: each key's latest value in metrics.jsonl, then eval.json.

  Latest value per key rather than the last line: train and eval records are separate lines, and
  `metrics.read_metrics` drops resume markers and records a resumed run rolled back.
  """
  rows = []
  for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
    run = os.path.join(base, name)
    metrics_path, eval_path = os.path.join(run, 'metrics.jsonl'), os.path.join(run, 'eval.json')
    values: dict[str, Any] = {}
    if os.path.exists(metrics_path):
      for record in metrics.read_metrics(run):
        values.update(record)
    if os.path.exists(eval_path):
      with open(eval_path) as f:
        values.update(
          {
            k: v
            for k, v in json.load(f).items()
            if not isinstance(v, (dict, list)) and not k.endswith('_note')
          }
        )
    if values:
      rows.append((name, values))
  return rows


def evaluate_runs(base: str, workdirs: list[str] | None = None) -> None:
  """`jaxstyle evaluate` on each run (default: every run folder with a checkpoint), in-process.

  A run that cannot be scored is reported and skipped; the table then shows '-' for it.
  """
  if workdirs is None:
    workdirs = (
      [
        os.path.join(base, n)
        for n in sorted(os.listdir(base))
        if os.path.isdir(os.path.join(base, n, 'ckpt'))
      ]
      if os.path.isdir(base)
      else []
    )
  for workdir in workdirs:
    print(f'[sweep] evaluating {workdir}', flush=True)
    args = cli.make_parser('evaluate', evaluate).parse_args(['--workdir', workdir])
    try:
      evaluate.run(args)
    except errors.UserError as err:
      print(f'[sweep] could not evaluate {workdir}: {err}', flush=True)


def _cell(value: Any) -> str:
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return str(value)
  return str(value) if isinstance(value, int) else f'{value:.4g}'


def summarize(base: str, keys: list[str] | None = None) -> str:
  """A plain-text table: one row per run, `step` then every (or the chosen) metric key."""
  rows = collect(base)
  if not rows:
    return f'no runs with metrics.jsonl or eval.json under {base}'
  if keys is None:  # step, then the scores runs are compared by (FID, KID), then the rest
    keys = sorted(
      {k for _, values in rows for k in values if k != 'step'},
      key=lambda k: (not k.startswith(('eval/fid_', 'eval/kid_')), k),
    )
    keys = ['step'] * any('step' in v for _, v in rows) + keys
  table = [['run', *keys]] + [[name, *(_cell(v.get(k, '-')) for k in keys)] for name, v in rows]
  widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
  lines = [
    '  '.join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    for r in table
  ]
  lines.insert(1, '  '.join('-' * w for w in widths))
  return '\n'.join(lines)


ACCEPTS_CONFIG_OVERRIDES = True  # `--config.a.b=value` extras apply to every run (jaxstyle.cli)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Flags of `jaxstyle sweep`; unknown `--config.a.b=v` flags apply to every run."""
  parser.add_argument('--config', help='configs/x.py[:arg] with a get_sweep()')
  parser.add_argument('--workdir', required=True, help='base workdir; runs go to WORKDIR/<name>')
  parser.add_argument(
    '--execute',
    choices=('local', 'tpu'),
    default=None,
    help='run the sweep (default: print the commands)',
  )
  parser.add_argument(
    '--parallel', type=errors.positive_int, default=1, help='local runs at a time'
  )
  parser.add_argument('--timeout', type=float, default=None, help='seconds per local run')
  parser.add_argument('--tpu', default=None, help='TPU VM name (prints/executes tpu.py runs)')
  parser.add_argument('--zone', default=None, help='TPU zone')
  parser.add_argument('--summarize', action='store_true', help='only print the results table')
  parser.add_argument('--keys', default=None, help='comma-separated metric keys for the table')
  parser.add_argument(
    '--evaluate',
    action='store_true',
    help='run `jaxstyle evaluate` (FID/KID included) on every finished run before the table',
  )


def run(args: argparse.Namespace) -> int:
  """Dry run, local or TPU execution, or summary, depending on the flags."""
  keys = args.keys.split(',') if args.keys else None
  if args.summarize:
    if args.evaluate:
      evaluate_runs(args.workdir)
    print(summarize(args.workdir, keys))
    return 0
  if not args.config:
    raise errors.UserError('--config is required (unless --summarize)')
  extra = list(getattr(args, 'unknown', []) or [])
  runs = expand_sweep(args.config, extra)
  if args.execute == 'tpu' or (args.tpu and args.execute is None):
    if not (args.tpu and args.zone):
      raise errors.UserError('TPU runs need --tpu NAME and --zone ZONE')
    cmds = tpu_commands(
      args.config, args.workdir, runs, args.tpu, args.zone, extra, execute=args.execute == 'tpu'
    )
    if args.execute is None:
      print('\n'.join(shlex.join(c) for c in cmds))
      return 0
    for cmd in cmds:  # one slice, one run at a time
      print('+ ' + shlex.join(cmd), flush=True)
      rc = subprocess.run([sys.executable, *cmd[1:]], cwd=REPO_ROOT, check=False).returncode
      if rc:
        return rc
    return 0
  cmds = local_commands(args.config, args.workdir, runs, extra)
  if args.execute is None:
    print('\n'.join(shlex.join(c) for c in cmds))
    return 0
  if '://' in args.workdir:
    raise errors.UserError('--execute local needs a local --workdir')
  workdirs = [run_workdir(args.workdir, name) for _, name in runs]
  codes = execute_local(cmds, workdirs, parallel=args.parallel, timeout=args.timeout)
  if args.evaluate:
    evaluate_runs(args.workdir, [w for w, code in zip(workdirs, codes) if code == 0])
  print(summarize(args.workdir, keys))
  return max(codes, default=0)


def main(argv: list[str] | None = None) -> int:
  """Stand-alone entry (launch/sweep.py): exactly `jaxstyle sweep ARGV`, errors included."""
  return cli.main(['sweep', *(sys.argv[1:] if argv is None else argv)])
