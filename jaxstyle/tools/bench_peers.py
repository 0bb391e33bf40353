"""Shared measuring for `jaxstyle bench`: matmul peak, peak RSS, FLOP counts and the PyTorch peers.

Absolute times on a shared machine are noise; what counts is the ratio to a peer measured in the
same command (jaxstyle/tools/peers/README.md), so `--with-peer` runs the peer script right after the
jaxstyle bench and prints both. Every figure is also put next to an f32 GEMM peak measured here, in
the same process, so a reader can tell "slow machine" from "slow code".
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import hugepages, parallel
from jaxstyle.errors import nonnegative_int

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))  # the repository root (where peer-venv/ lives)


def add_common_arguments(parser: argparse.ArgumentParser, peer: bool = True) -> None:
  """The options `report` reads: the matmul peak and, for a bench with a peer, its comparison."""
  parser.add_argument('--no-peak', action='store_true', help='skip the GEMM peak measurement')
  if not peer:
    parser.set_defaults(with_peer=False)
    return
  parser.add_argument(
    '--with-peer', action='store_true', help='run the PyTorch peer right after and print the ratio'
  )
  parser.add_argument('--peer-python', default=os.path.join(_REPO, 'peer-venv', 'bin', 'python'))
  parser.add_argument('--peer-dir', default=os.path.join(_HERE, 'peers'))
  parser.add_argument(
    '--peer-steps', type=nonnegative_int, default=0, help='0 = as many as --steps'
  )
  parser.add_argument(
    '--peer-hugepages',
    action='store_true',
    help="give the peer jaxstyle's huge-page malloc setting too (jaxstyle.hugepages); by "
    'default it runs in the environment jaxstyle was launched with, as a PyTorch user would',
  )


def gemm_peak_gflops(n: int = 0, reps: int = 5, dtype: str = 'float32') -> float:
  """Best-of-`reps` GFLOP/s of a jitted n×n×n matmul: this machine's practical peak right now.

  n defaults to 1024 on CPU and 8192 on accelerators (a 1024 product does not fill a GPU).
  """
  n = n or (1024 if jax.default_backend() == 'cpu' else 8192)
  a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.dtype(dtype))
  f = jax.jit(lambda a: a @ a)
  jax.block_until_ready(f(a))
  best = float('inf')
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(f(a))
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best / 1e9


def peak_rss_mb() -> float:
  """Peak resident set size of this process so far (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_peak_mb() -> float | None:
  """Peak bytes the accelerator allocator has held (None on CPU, where peak RSS is the figure)."""
  if jax.default_backend() == 'cpu':
    return None
  try:
    stats = jax.local_devices()[0].memory_stats() or {}
  except Exception:  # noqa: BLE001  (memory_stats is optional per backend)
    return None
  peak = stats.get('peak_bytes_in_use')
  return round(peak / 2**20, 1) if peak else None


def xla_flops(compiled: Any) -> float | None:
  """FLOPs of one call as XLA's cost analysis counts them (2 per multiply-add), if it reports them."""
  try:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost['flops']) if cost and cost.get('flops', 0) > 0 else None
  except Exception:  # noqa: BLE001  (cost analysis is optional on some backends)
    return None


def time_calls(fn: Any, steps: int, warmup: int) -> list[float]:
  """Wall seconds of `steps` calls of `fn()` (which must block) after `warmup` untimed ones."""
  times = []
  for i in range(warmup + steps):
    t0 = time.perf_counter()
    fn()
    if i >= warmup:
      times.append(time.perf_counter() - t0)
  return times


def time_train_step(
  compiled: Any,
  state: Any,
  inputs: tuple,
  steps: int,
  warmup: int,
  loss_key: str = 'train/loss',
  profile: str = '',
) -> tuple[list[float], float]:
  """(`time_calls` of `compiled(state, *inputs)`, its last loss): the state is donated, so each
  call feeds the next; the loss fetch syncs, one step per timing. With `profile` the timed steps
  run in a `jax.profiler` trace (one warm step outside it)."""
  box: dict[str, Any] = {'state': state}

  def one_step() -> None:
    box['state'], metrics = compiled(box['state'], *inputs)
    box['loss'] = float(jax.device_get(metrics[loss_key]))

  if not profile:
    return time_calls(one_step, steps, warmup), box['loss']
  one_step()  # warm outside the trace
  with jax.profiler.trace(profile):
    return time_calls(one_step, steps, 0), box['loss']


class StepTiming(NamedTuple):
  """What `time_gan_step` / `time_frozen_step` measured."""

  times: list[float]
  compile_s: float
  init_s: float
  flops: float | None
  loss: float


def _compile_and_time(
  step: Any, state: Any, inputs: tuple, init_s: float, *timing: Any, **kw: Any
) -> StepTiming:
  t0 = time.perf_counter()
  compiled = step.lower(state, *inputs).compile()
  compile_s = time.perf_counter() - t0
  times, loss = time_train_step(compiled, state, inputs, *timing, **kw)
  return StepTiming(times, compile_s, init_s, xla_flops(compiled), loss)


def time_gan_step(
  mesh: Any,
  init_state: Callable[[], Any],
  train_step: Callable,
  shape: tuple[int, ...],
  keys: Sequence[str],
  steps: int,
  warmup: int,
  profile: str = '',
) -> StepTiming:
  """Times a GAN trainer's own `(state, batch) -> (state, metrics)` step on one random batch.

  The state is built by `init_state()` and replicated over `mesh` (timed as init_s); the batch
  holds `keys`, each uniform in [-1, 1] of global `shape`; the loss is loss_G.
  """
  t0 = time.perf_counter()
  state = init_state()
  specs = parallel.state_specs(state)
  state = jax.block_until_ready(jax.device_put(state, parallel.shardings(mesh, specs)))
  init_s = time.perf_counter() - t0
  rng = np.random.default_rng(0)
  batch = parallel.global_batch_from_local(
    mesh, {k: rng.uniform(-1, 1, shape).astype(np.float32) for k in keys}
  )
  step = parallel.compile_step(train_step, mesh, specs)
  return _compile_and_time(
    step, state, (batch,), init_s, steps, warmup, loss_key='train/loss_G', profile=profile
  )


def time_frozen_step(
  mesh: Any,
  init: Callable[[], tuple[Any, Any, Callable]],
  batch: dict[str, np.ndarray],
  steps: int,
  warmup: int,
) -> StepTiming:
  """Times a feed-forward trainer's own `(state, batch, frozen)` step (fast style, AdaIN).

  `init() -> (frozen, state, train step)` on the host, as the trainer builds them (timed as
  init_s, with the placement on `mesh`); `batch` is the host batch, the same every step.
  """
  t0 = time.perf_counter()
  frozen, state, train_step = init()
  frozen = parallel.place(frozen, parallel.shardings(mesh, parallel.state_specs(frozen, ())))
  specs = parallel.state_specs(state, ())
  state = jax.block_until_ready(parallel.place(state, parallel.shardings(mesh, specs)))
  init_s = time.perf_counter() - t0
  batch = parallel.global_batch_from_local(mesh, batch)
  step = parallel.compile_step(train_step, mesh, specs, n_frozen=1)
  return _compile_and_time(step, state, (batch, frozen), init_s, steps, warmup)


def step_report(
  args: argparse.Namespace,
  name: str,
  t: StepTiming,
  peer: tuple[str, list[str]],
  images: int,
  loss_key: str,
  flops_source: str = 'XLA cost analysis of the compiled step',
  unit: str | None = None,
  **extra: Any,
) -> dict[str, Any]:
  """`report` of a train-step timing: `extra`, then init_s, flops_source (and `unit`); then
  images_per_s (`images` per step) and the last loss as `loss_key`."""
  tail: dict[str, Any] = dict(init_s=round(t.init_s, 2), flops_source=flops_source)
  if unit:
    tail['unit'] = unit
  out = report(args, name, t.times, t.compile_s, t.flops, peer, **extra, **tail)
  out['images_per_s'] = round(images / out['median_s'], 2)
  out[loss_key] = round(t.loss, 4)
  return out


def add_rate(out: dict[str, Any], key: str, per_call: int = 1) -> None:
  """`out[key]` = items per second of the median call, and `peer_{key}` when the peer ran."""
  out[key] = round(per_call / out['median_s'], 2)
  if 'peer_s' in out:
    out[f'peer_{key}'] = round(per_call / out['peer_s'], 2)


def run_peer(args: argparse.Namespace, script: str, peer_args: list[str]) -> dict[str, Any]:
  """Runs a peer script in a subprocess; returns its median seconds (`peer_s`) or an error."""
  path = os.path.join(args.peer_dir, script)
  cmd = [args.peer_python, path, *peer_args]
  env = None if getattr(args, 'peer_hugepages', False) else hugepages.launcher_env()
  try:
    run = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=3600, env=env)
    out = run.stdout
  except (OSError, subprocess.SubprocessError) as e:
    return {'peer_error': f'{" ".join(cmd)}: {e}'}
  m = re.search(r's_per_(?:iter|eval)=([0-9.]+)', out)
  if not m:
    return {'peer_error': f'no s_per_iter/s_per_eval in peer output: {out.strip()[-200:]}'}
  return {'peer_cmd': ' '.join(cmd[1:]), 'peer_s': float(m.group(1))}


def report(
  args: argparse.Namespace,
  name: str,
  times: list[float],
  compile_s: float,
  flops: float | None,
  peer: tuple[str, list[str]] | None,
  **extra: Any,
) -> dict[str, Any]:
  """Assembles the one-line JSON result (and runs the peer when asked)."""
  median = statistics.median(times)
  out: dict[str, Any] = dict(
    bench=name,
    device=jax.devices()[0].device_kind,
    cpu_count=os.cpu_count(),
    **extra,
    median_s=round(median, 4),
    min_s=round(min(times), 4),
    steps=len(times),
    compile_s=round(compile_s, 2),
    peak_rss_mb=round(peak_rss_mb(), 1),
  )
  device_peak = device_peak_mb()
  if device_peak is not None:
    out['device_peak_mb'] = device_peak
  if flops:
    out['gflop_per_step'] = round(flops / 1e9, 3)
    out['gflops'] = round(flops / median / 1e9, 2)
  if not args.no_peak:
    peak = gemm_peak_gflops(dtype=getattr(args, 'dtype', 'float32'))
    out['gemm_peak_gflops'] = round(peak, 2)
    if flops:
      out['peak_fraction'] = round(flops / median / 1e9 / peak, 3)
  if os.environ.get('XLA_FLAGS'):
    out['xla_flags'] = os.environ['XLA_FLAGS']
  out['hugepages'] = hugepages.active()
  if args.with_peer and peer is not None:
    res = run_peer(args, *peer)
    out.update(res)
    if 'peer_s' in res:
      out['peer_hugepages'] = bool(getattr(args, 'peer_hugepages', False)) and hugepages.active()
    if 'peer_s' in res:
      out['ratio'] = round(median / res['peer_s'], 3)
  return out
