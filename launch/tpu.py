"""Cloud TPU VM lifecycle for jaxstyle: create, setup, run, logs, fetch, delete.

Every sub-command is a **dry run by default**: it prints the gcloud/gsutil commands it would run,
one per line, shell-quoted, so they can be read, pasted or edited. `--execute` runs them in order
and stops at the first failure. The recipe is big_vision's README one: copy the repository to
every worker, then launch the same command on all of them (`--worker=all`), where
`launch/run_tpu.sh` sets `JAXSTYLE_DISTRIBUTED=1` so each process joins the slice.

  python3 launch/tpu.py create --name my-tpu --zone us-central2-b --accelerator-type v4-8 --spot
  python3 launch/tpu.py setup  --name my-tpu --zone us-central2-b
  python3 launch/tpu.py run    --name my-tpu --zone us-central2-b \\
      --config configs/cyclegan_book_apple2orange.py --workdir gs://$BUCKET/cyclegan/5_1 --detach
  python3 launch/tpu.py logs   --name my-tpu --zone us-central2-b
  python3 launch/tpu.py fetch  --name my-tpu --zone us-central2-b --src gs://$BUCKET/cyclegan/5_1 \\
      --dest runs/5_1
  python3 launch/tpu.py delete --name my-tpu --zone us-central2-b

A preempted `--spot` VM: the trainers save the step they are on when the SIGTERM comes (exit 143,
docs/multihost.md "Preempted (spot) VMs"). Delete it, create and set up a new one, and `run` the
same command with the same gs:// `--workdir`: it resumes from that step.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys

# Remote layout: the repository lives in ~/jaxstyle on each worker; run logs go next to it.
REMOTE_DIR = 'jaxstyle'
REMOTE_LOG = '~/jaxstyle_run.log'
# What `setup` copies: the package and what it needs, never local venvs, .git or run outputs.
PAYLOAD = ('pyproject.toml', 'README.md', 'jaxstyle', 'configs', 'launch')
DEFAULT_VERSION = 'tpu-ubuntu2204-base'
DEFAULT_MODULE = 'jaxstyle.main'
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _gcloud(verb: str, name: str | None, zone: str, project: str | None, *rest: str) -> list[str]:
  """`gcloud compute tpus tpu-vm VERB [NAME] --zone Z [--project P] REST...` (scp takes no NAME)."""
  cmd = ['gcloud', 'compute', 'tpus', 'tpu-vm', verb, *([name] if name else []), '--zone', zone]
  if project:
    cmd += ['--project', project]
  return cmd + list(rest)


def _ssh(name: str, zone: str, project: str | None, command: str, worker: str = 'all') -> list[str]:
  return _gcloud('ssh', name, zone, project, f'--worker={worker}', '--command', command)


def create_commands(
  name: str,
  zone: str,
  accelerator_type: str,
  version: str = DEFAULT_VERSION,
  spot: bool = False,
  project: str | None = None,
) -> list[list[str]]:
  """A TPU VM or pod slice (`--accelerator-type v4-8` is one host, `v4-32` four)."""
  cmd = _gcloud(
    'create', name, zone, project, '--accelerator-type', accelerator_type, '--version', version
  )
  return [cmd + (['--spot'] if spot else [])]


def setup_commands(
  name: str, zone: str, project: str | None = None, payload: tuple[str, ...] | None = None
) -> list[list[str]]:
  """Copies the repository to every worker and bootstraps its venv (run_tpu.sh with no args).

  scp cannot exclude paths, so we name what to copy instead of `.`: a `.` would also ship
  multi-GB local venvs and run outputs to every worker.
  """
  if payload is None:
    payload = tuple(p for p in PAYLOAD if os.path.exists(os.path.join(REPO_ROOT, p)))
  return [
    _ssh(name, zone, project, f'mkdir -p ~/{REMOTE_DIR}'),
    _gcloud(
      'scp', None, zone, project, '--recurse', *payload, f'{name}:{REMOTE_DIR}/', '--worker=all'
    ),
    _ssh(name, zone, project, f'cd ~/{REMOTE_DIR} && bash launch/run_tpu.sh'),
  ]


def remote_train_command(
  train_args: list[str],
  module: str = DEFAULT_MODULE,
  env: list[str] | None = None,
  detach: bool = False,
) -> str:
  """The shell line each worker runs. Arguments are quoted once here; gcloud passes it verbatim.

  Without `detach` the ssh session stays attached (a dropped connection kills the run, but the
  run auto-resumes from its workdir when relaunched); `detach` survives disconnects. Either way
  every worker appends to REMOTE_LOG, which `logs` tails on worker 0.
  """
  prefix = ['env', *env] if env else []
  # `python -m jaxstyle.main --config ...` is the trainer itself; the `jaxstyle` CLI needs `train`.
  entry = [module, 'train'] if module == 'jaxstyle.cli' else [module]
  inner = shlex.join([*prefix, 'bash', 'launch/run_tpu.sh', *entry, *train_args])
  if detach:
    body = f'nohup {inner} >> {REMOTE_LOG} 2>&1 < /dev/null &'
  else:
    body = f'set -o pipefail; {inner} 2>&1 | tee -a {REMOTE_LOG}'
  return f'cd ~/{REMOTE_DIR} && {body}'


def run_commands(
  name: str,
  zone: str,
  train_args: list[str],
  project: str | None = None,
  module: str = DEFAULT_MODULE,
  env: list[str] | None = None,
  detach: bool = False,
) -> list[list[str]]:
  """Launches the same training command on all workers (each host is one JAX process)."""
  return [_ssh(name, zone, project, remote_train_command(train_args, module, env, detach))]


def logs_commands(
  name: str,
  zone: str,
  project: str | None = None,
  lines: int = 100,
  follow: bool = True,
  worker: str = '0',
) -> list[list[str]]:
  """Worker 0's log: process 0 is the one that logs metrics, the others repeat it."""
  tail = f'tail -n {int(lines)}{" -F" if follow else ""} {REMOTE_LOG}'
  return [_ssh(name, zone, project, tail, worker=worker)]


def fetch_commands(
  name: str, zone: str, src: str, dest: str, project: str | None = None
) -> list[list[str]]:
  """Copies a run's outputs back: gsutil for gs:// workdirs, else scp from worker 0.

  Only process 0 writes metrics, samples and config.json, so worker 0 has everything a local
  workdir would have (multi-host checkpoints need gs:// anyway).
  """
  if src.startswith('gs://'):
    return [['mkdir', '-p', dest], ['gsutil', '-m', 'rsync', '-r', src, dest]]
  return [
    ['mkdir', '-p', dest],
    _gcloud('scp', None, zone, project, '--recurse', f'{name}:{src}', dest, '--worker=0'),
  ]


def delete_commands(name: str, zone: str, project: str | None = None) -> list[list[str]]:
  """Deletes the VM; `--quiet` because --execute is already the confirmation."""
  return [_gcloud('delete', name, zone, project, '--quiet')]


def format_commands(commands: list[list[str]]) -> str:
  """One shell-quoted command per line, exactly what --execute would run."""
  return '\n'.join(shlex.join(cmd) for cmd in commands)


def execute(commands: list[list[str]]) -> int:
  """Runs commands in order; stops at (and returns) the first non-zero exit code."""
  for cmd in commands:
    print('+ ' + shlex.join(cmd), flush=True)
    rc = subprocess.run(cmd, check=False).returncode
    if rc:
      print(f'tpu.py: command failed with exit code {rc}', file=sys.stderr)
      return rc
  return 0


def build_parser() -> argparse.ArgumentParser:
  """The CLI; `run` passes unknown `--config.a.b=v` flags through to the trainer."""
  parser = argparse.ArgumentParser(
    prog='launch/tpu.py',
    description=__doc__.splitlines()[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
    epilog='\n'.join(__doc__.splitlines()[6:]),
  )
  sub = parser.add_subparsers(dest='command', required=True)

  def add(name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text)
    p.add_argument('--name', required=True, help='TPU VM name')
    p.add_argument('--zone', required=True, help='e.g. us-central2-b')
    p.add_argument('--project', default=None, help="GCP project (default: gcloud's)")
    p.add_argument('--execute', action='store_true', help='run the commands (default: print)')
    return p

  p = add('create', 'create a TPU VM or pod slice')
  p.add_argument('--accelerator-type', required=True, help='e.g. v4-8, v5litepod-8, v4-32')
  p.add_argument('--version', default=DEFAULT_VERSION, help='TPU VM software version')
  p.add_argument('--spot', action='store_true', help='spot (preemptible) capacity')
  add('setup', 'copy the repository to all workers and bootstrap the venv')
  p = add('run', 'launch `jaxstyle train` on all workers')
  p.add_argument('--config', required=True, help='configs/x.py[:arg]')
  p.add_argument('--workdir', required=True, help='gs://bucket/path on multi-host slices')
  p.add_argument('--module', default=DEFAULT_MODULE, help='python -m module run_tpu.sh runs')
  p.add_argument(
    '--env',
    action='append',
    default=[],
    metavar='KEY=VALUE',
    help='environment for the run, e.g. TFDS_DATA_DIR=gs://bucket/tfds',
  )
  p.add_argument('--detach', action='store_true', help='nohup the run; follow it with `logs`')
  p = add('logs', "tail worker 0's run log")
  p.add_argument('--lines', type=int, default=100)
  p.add_argument('--no-follow', action='store_true', help='print and exit instead of following')
  p.add_argument('--worker', default='0')
  p = add('fetch', "copy a run's outputs back to this machine")
  p.add_argument('--src', required=True, help='gs://… workdir, or a path on worker 0')
  p.add_argument('--dest', required=True, help='local directory')
  add('delete', 'delete the TPU VM')
  return parser


def commands_from_args(args: argparse.Namespace, extra: list[str]) -> list[list[str]]:
  """Maps parsed CLI arguments to the command list of their sub-command."""
  common = dict(name=args.name, zone=args.zone, project=args.project)
  if extra and args.command != 'run':
    raise SystemExit(f'tpu.py {args.command}: unrecognized arguments: {" ".join(extra)}')
  if args.command == 'create':
    return create_commands(
      accelerator_type=args.accelerator_type, version=args.version, spot=args.spot, **common
    )
  if args.command == 'setup':
    return setup_commands(**common)
  if args.command == 'run':
    bad = [x for x in extra if not x.startswith('--config.')]
    if bad:
      raise SystemExit(f'tpu.py run: unrecognized arguments: {" ".join(bad)}')
    train_args = ['--config', args.config, '--workdir', args.workdir, *extra]
    return run_commands(
      train_args=train_args, module=args.module, env=args.env, detach=args.detach, **common
    )
  if args.command == 'logs':
    return logs_commands(lines=args.lines, follow=not args.no_follow, worker=args.worker, **common)
  if args.command == 'fetch':
    return fetch_commands(src=args.src, dest=args.dest, **common)
  return delete_commands(**common)


def main(argv: list[str] | None = None) -> int:
  """Prints (default) or executes the commands of one sub-command."""
  args, extra = build_parser().parse_known_args(argv)
  commands = commands_from_args(args, extra)
  if not args.execute:
    print(format_commands(commands))
    return 0
  return execute(commands)


if __name__ == '__main__':
  sys.exit(main())
