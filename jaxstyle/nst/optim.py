"""Optimisers for neural style transfer: on-device L-BFGS / Adam segments and the book's scipy mode.

The image is optimised in segments of K iterations, each one jitted `lax.scan`, so the host only
wakes up between segments (progress bar, snapshot PNG, metrics). The frozen VGG params and the
precomputed targets are *arguments* of the compiled segment, never closed over, so 80 MB of
weights never become HLO constants and one executable serves every image of the same size.

`loss_fn(x, targets, vgg_params, weights) -> (total, aux)` is the objective; `weights` is a small
pytree of loss weights passed as traced values, which is what lets `vmap` sweep them in one program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxstyle.nst.presets import OPTIMIZERS  # one list of names: presets.validate checks it

LossFn = Callable[[jax.Array, Any, Any, Any], tuple[jax.Array, dict[str, jax.Array]]]
# (loss_fn, optimiser settings, batched) -> (jitted init, jitted segment). Keyed on the loss_fn
# object, so it lives as long as the objective does; a new image size builds a new loss_fn.
_COMPILED: dict[tuple, tuple[Callable, Callable]] = {}


def make_optimizer(
  name: str, lr: float = 10.0, memory_size: int = 10, linesearch_steps: int = 20
) -> optax.GradientTransformation:
  """optax L-BFGS with the zoom line search (scipy's m=10, maxls=20) or Adam at learning rate `lr`."""
  if name == 'lbfgs':
    return optax.lbfgs(
      memory_size=memory_size,
      linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=linesearch_steps),
    )
  if name == 'adam':
    return optax.adam(lr)
  raise ValueError(f'unknown on-device optimizer {name!r}; choose from {OPTIMIZERS}')


def make_segment_fn(
  loss_fn: LossFn, opt: optax.GradientTransformation, iters: int, name: str, unroll: int | bool = 1
) -> Callable[..., tuple[jax.Array, Any, dict[str, jax.Array]]]:
  """Returns `segment(x, opt_state, targets, vgg_params, weights) -> (x, opt_state, stats)`.

  The function is pure and un-jitted so callers can `jit` it directly or `jit(vmap(...))` it for
  sweeps. `stats` holds the per-iteration loss (`loss`, length `iters`), the number of objective
  evaluations (`evals`: L-BFGS line-search steps plus the first evaluation of a fresh state) and the aux terms at the final image.
  `unroll` is passed to `lax.scan` (more unrolling: longer compile, fewer loop boundaries).
  """

  def segment(x, opt_state, targets, vgg_params, weights):
    value_fn = lambda z: loss_fn(z, targets, vgg_params, weights)[0]

    if name == 'lbfgs':
      value_and_grad = optax.value_and_grad_from_state(value_fn)

      def step(carry, _):
        z, st, evals = carry
        # A fresh state (value inf) makes value_and_grad evaluate here; later ones reuse the line
        # search's last evaluation, which num_linesearch_steps already counts.
        evals += jnp.logical_not(jnp.isfinite(optax.tree_utils.tree_get(st, 'value'))).astype(
          jnp.int32
        )
        value, grad = value_and_grad(z, state=st)
        updates, st = opt.update(grad, st, z, value=value, grad=grad, value_fn=value_fn)
        evals += optax.tree_utils.tree_get(st, 'num_linesearch_steps')
        return (optax.apply_updates(z, updates), st, evals), value
    else:
      grad_fn = jax.value_and_grad(value_fn)

      def step(carry, _):
        z, st, evals = carry
        value, grad = grad_fn(z)
        updates, st = opt.update(grad, st, z)
        return (optax.apply_updates(z, updates), st, evals + 1), value

    (x, opt_state, evals), losses = jax.lax.scan(
      step, (x, opt_state, jnp.zeros((), jnp.int32)), None, length=iters, unroll=unroll
    )
    total, aux = loss_fn(x, targets, vgg_params, weights)
    stats = {'loss': losses, 'evals': evals, 'total': total, **aux}
    return x, opt_state, stats

  return segment


class SegmentRunner:
  """Compiles the segment once per image shape and runs it; restarts L-BFGS when asked.

  `restart=True` rebuilds the optimiser state at every segment, mirroring the book's
  `fmin_l_bfgs_b(maxfun=20)` called afresh in each outer iteration (its history is lost each time).
  With `batched=True` every argument except `targets` / `vgg_params` has a leading batch axis
  (one image per weight setting) and the segment is `vmap`-ed into a single program.
  """

  def __init__(
    self,
    loss_fn: LossFn,
    name: str,
    iters: int,
    *,
    lr: float = 10.0,
    memory_size: int = 10,
    linesearch_steps: int = 20,
    restart: bool = False,
    batched: bool = False,
    unroll: int | bool = 1,
  ):
    self.restart = restart
    key = (loss_fn, name, iters, lr, memory_size, linesearch_steps, batched, unroll)
    if key not in _COMPILED:  # runners of the same problem share one executable
      opt = make_optimizer(name, lr, memory_size, linesearch_steps)
      seg = make_segment_fn(loss_fn, opt, iters, name, unroll)
      # optax's init returns weak-typed scalars but update returns strong ones; making them strong
      # here keeps one compiled segment for the whole run instead of a recompile on segment 2.
      init = lambda x: jax.tree.map(lambda a: a.astype(a.dtype), opt.init(x))
      if batched:
        seg = jax.vmap(seg, in_axes=(0, 0, None, None, 0))
        init = jax.vmap(init)
      if len(_COMPILED) >= 16:  # bounded: multi-scale runs and sweeps add a few entries each
        _COMPILED.pop(next(iter(_COMPILED)))
      _COMPILED[key] = (jax.jit(init), jax.jit(seg))
    self._init, self._segment = _COMPILED[key]
    self.opt_state = None

  def __call__(
    self, x: jax.Array, targets: Any, vgg_params: Any, weights: Any
  ) -> tuple[jax.Array, dict[str, np.ndarray]]:
    if self.opt_state is None or self.restart:
      self.opt_state = self._init(x)
    x, self.opt_state, stats = self._segment(x, self.opt_state, targets, vgg_params, weights)
    return x, jax.device_get(stats)


def make_value_and_grad(loss_fn: LossFn) -> Callable[..., tuple[jax.Array, jax.Array]]:
  """Jitted (loss, grad) w.r.t. the image; the scipy path and benchmarks call it from the host."""
  return jax.jit(jax.value_and_grad(lambda x, t, p, w: loss_fn(x, t, p, w)[0]))


def scipy_segment(
  value_and_grad: Callable[..., tuple[jax.Array, jax.Array]],
  x: jax.Array,
  targets: Any,
  vgg_params: Any,
  weights: Any,
  maxfun: int = 20,
) -> tuple[jax.Array, dict[str, np.ndarray]]:
  """One book outer iteration: a fresh `fmin_l_bfgs_b(maxfun=20)` around the jitted objective.

  Like the Keras example, the float32 gradient is cast to float64 on the host, so every evaluation
  round-trips the image; this is the trajectory-exact reference, not the fast path.
  """
  from scipy.optimize import fmin_l_bfgs_b

  shape, dtype = x.shape, x.dtype
  losses: list[float] = []

  def fun(flat):
    value, grad = value_and_grad(
      jnp.asarray(flat.reshape(shape), dtype), targets, vgg_params, weights
    )
    value, grad = jax.device_get((value, grad))
    losses.append(float(value))
    return float(value), np.asarray(grad, np.float64).ravel()

  flat, _, info = fmin_l_bfgs_b(fun, np.asarray(x, np.float64).ravel(), maxfun=maxfun)
  stats = {'loss': np.asarray(losses, np.float32), 'evals': np.int32(info['funcalls'])}
  return jnp.asarray(flat.reshape(shape), dtype), stats
