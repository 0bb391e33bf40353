"""`jaxstyle bench nst-eval` / `nst-run`: NST speed on random VGG19 weights (docs/design/nst.md).

`nst-eval` times one loss+gradient evaluation of the book objective (content block5_conv2, Gram
style on block1..5_conv1, TV^1.25), the unit `peer_torch_nst.py` reports. `nst-run` times a full
on-device run: `--outer` L-BFGS segments of 20 iterations (the book's maxfun=20 loop) and reports
seconds per objective evaluation, line-search evaluations included, like the peer.
Weights are random (He init): speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.models import vgg
from jaxstyle.nst import losses as nst_losses
from jaxstyle.nst import optim as nst_optim
from jaxstyle.tools import bench_peers

# Multiply-adds of a 3×3 SAME conv layer stack are 9·Cin·Cout per output pixel (VGG19 "E").
_CFG = [
  (1, 3, 64),
  (1, 64, 64),
  (2, 64, 128),
  (2, 128, 128),
  (4, 128, 256),
  (4, 256, 256),
  (4, 256, 256),
  (4, 256, 256),
  (8, 256, 512),
  (8, 512, 512),
  (8, 512, 512),
  (8, 512, 512),
  (16, 512, 512),
  (16, 512, 512),
]  # (downsampling factor, Cin, Cout) up to block5_conv2


# Winograd layers (CPU) execute fewer multiplies than this count: the GFLOP/s is then an effective,
# direct-conv-equivalent rate and may exceed the measured GEMM peak.
_FLOPS_SOURCE = (
  'analytic VGG19 fwd+input-grad to block5_conv2, direct-conv count (effective rate '
  'where Winograd layers run)'
)


def analytic_flops(size: int) -> float:
  """FLOPs of one evaluation: VGG19 forward to block5_conv2 plus its input gradient (= forward).

  No weight gradients are needed (the image is the only variable), so the backward pass is one
  conv per layer, the same size as the forward one; Gram matrices and pooling are ignored (< 3 %).
  Matches XLA's cost analysis of the compiled evaluation (24.1 GFLOP at 128²).
  """
  fwd = sum(2 * 9 * cin * cout * (size // f) ** 2 for f, cin, cout in _CFG)
  return 2.0 * fwd - 2 * 9 * 3 * 64 * size**2  # the first layer's input gradient is not needed


def _objective(
  size: int, dtype: str = 'float32', conv_impl: str = 'auto'
) -> tuple[Any, Any, Any, jax.Array]:
  """Book objective on random images; `dtype` is VGG's compute dtype (losses stay float32)."""
  rng = np.random.default_rng(0)
  params = vgg.init_params(jax.random.key(0))
  content = jnp.asarray(rng.uniform(-128, 127, (1, size, size, 3)), jnp.float32)
  style = jnp.asarray(rng.uniform(-128, 127, (1, size, size, 3)), jnp.float32)
  targets, loss_fn = nst_losses.make_objective(
    vgg.VGG19(dtype=jnp.dtype(dtype)), params, content, style, conv_impl=conv_impl
  )
  return targets, loss_fn, params, content


def bench_eval(args: argparse.Namespace) -> dict[str, Any]:
  """Median seconds of one jitted `value_and_grad` of the objective w.r.t. the image."""
  targets, loss_fn, params, x = _objective(args.size, args.dtype, args.conv_impl)
  vg = jax.jit(jax.value_and_grad(lambda x, t, p: loss_fn(x, t, p)[0]))
  t0 = time.perf_counter()
  compiled = vg.lower(x, targets, params).compile()
  compile_s = time.perf_counter() - t0
  times = bench_peers.time_calls(
    lambda: jax.block_until_ready(compiled(x, targets, params)), args.steps, args.warmup
  )
  return bench_peers.report(
    args,
    'nst-eval',
    times,
    compile_s,
    analytic_flops(args.size),
    ('peer_torch_nst.py', [str(args.size), str(args.peer_steps or 2)]),
    size=args.size,
    dtype=args.dtype,
    flops_source=_FLOPS_SOURCE,
  )


def bench_run(args: argparse.Namespace) -> dict[str, Any]:
  """A full run: `--outer` segments of 20 L-BFGS iterations, timed per objective evaluation."""
  targets, loss_fn, params, x = _objective(args.size, args.dtype, args.conv_impl)
  runner = nst_optim.SegmentRunner(lambda z, t, p, w: loss_fn(z, t, p), 'lbfgs', 20, restart=True)
  t0 = time.perf_counter()
  x, stats = runner(x, targets, params, None)  # first segment: compile + run
  first_s = time.perf_counter() - t0
  per_eval, total_evals, t_run = [], 0, 0.0
  for _ in range(args.outer):
    t0 = time.perf_counter()
    x, stats = runner(x, targets, params, None)
    dt = time.perf_counter() - t0
    evals = max(int(stats['evals']), 1)
    per_eval.append(dt / evals)
    total_evals += evals
    t_run += dt
  compile_s = max(first_s - t_run / args.outer, 0.0)  # first segment minus a steady one
  return bench_peers.report(
    args,
    'nst-run',
    per_eval,
    compile_s,
    analytic_flops(args.size),
    ('peer_torch_nst.py', [str(args.size), str(args.peer_steps or args.outer)]),
    size=args.size,
    dtype=args.dtype,
    outer=args.outer,
    iterations=20 * args.outer,
    evals=total_evals,
    run_s=round(t_run, 3),
    final_loss=float(stats['total']),
    unit='seconds per objective evaluation',
    flops_source=_FLOPS_SOURCE + '; L-BFGS algebra ignored',
  )
