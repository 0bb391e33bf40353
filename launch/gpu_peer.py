"""Runs the unchanged PyTorch peers (jaxstyle/tools/peers) on a CUDA GPU, timed honestly.

The peers are CPU scripts; on a GPU their `time.perf_counter()` would time kernel launches, not
kernels. This wrapper sets torch's default device to CUDA, gives each peer module a clock that
synchronises the GPU before reading the time, turns on cuDNN autotuning (what a GPU user does) and,
with `--amp bf16`, runs the peer under `torch.autocast(bfloat16)` (fp32 params, as ours).

  python launch/gpu_peer.py [--amp bf16] [--peer-dir D] cyclegan resnet256 20 1
  python launch/gpu_peer.py nst 512 25          # 25 L-BFGS steps of 20 iterations = 500
Prints the peer's own line plus `gpu_peer ... wall_s=` (the whole timed part, synchronised).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time
import types

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))


def _synced_time(device: str) -> types.SimpleNamespace:
  def perf_counter() -> float:
    if device == 'cuda':
      torch.cuda.synchronize()
    return time.perf_counter()

  return types.SimpleNamespace(perf_counter=perf_counter)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--amp', choices=['none', 'bf16'], default='none')
  parser.add_argument(
    '--peer-dir',
    default=os.environ.get(
      'JAXSTYLE_PEER_DIR', os.path.join(_HERE, '..', 'jaxstyle', 'tools', 'peers')
    ),
  )
  parser.add_argument('--device', default='cuda', help="'cpu' only to smoke-test this wrapper")
  parser.add_argument('--profile', action='store_true', help='print the top GPU kernels')
  parser.add_argument('task', choices=['cyclegan', 'nst'])
  parser.add_argument('peer_args', nargs='*')
  args = parser.parse_args()
  cuda = args.device == 'cuda'
  if cuda and not torch.cuda.is_available():
    sys.exit('gpu_peer.py: torch sees no CUDA device')
  script = os.path.join(args.peer_dir, f'peer_torch_{args.task}.py')
  spec = importlib.util.spec_from_file_location(f'peer_{args.task}', script)
  peer = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(peer)
  peer.time = _synced_time(args.device)
  torch.set_default_device(args.device)
  torch.backends.cudnn.benchmark = True
  sys.argv = [script, *args.peer_args]
  amp = (
    torch.autocast(args.device, dtype=torch.bfloat16)
    if args.amp == 'bf16'
    else contextlib.nullcontext()
  )
  if cuda:
    torch.cuda.reset_peak_memory_stats()
  clock = _synced_time(args.device)
  t0 = clock.perf_counter()
  prof = (
    torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])
    if args.profile
    else contextlib.nullcontext()
  )
  with amp, prof:
    peer.main()
  if args.profile:
    print(
      prof.key_averages().table(sort_by='cuda_time_total', row_limit=30, max_name_column_width=70)
    )
  wall = clock.perf_counter() - t0
  name = torch.cuda.get_device_name() if cuda else 'cpu'
  peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0
  print(
    f'gpu_peer {args.task} {" ".join(args.peer_args)} amp={args.amp} device="{name}" '
    f'torch={torch.__version__} wall_s={wall:.3f} peak_gpu_mb={peak:.0f}'
  )
  return 0


if __name__ == '__main__':
  sys.exit(main())
