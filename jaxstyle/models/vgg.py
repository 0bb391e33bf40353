"""Frozen VGG19 feature extractor for neural style transfer (Flax Linen, NHWC, HWIO kernels).

Configuration "E" convs only (no FC head): every conv is 3x3, stride 1, zero 'SAME' padding, followed by
ReLU, so the output named `blockB_convI` is post-ReLU exactly like the Keras application (= Caffe
`reluB_I`). Pools are 2x2 stride 2 'VALID' (floor), as in Keras and torchvision.

Params live in a flat tree `{'block1_conv1': {'kernel', 'bias'}, ...}` that the weight ports in
`jaxstyle/ports/` fill; NST code passes them as an argument to jitted functions, never closes over them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import UserError
from jaxstyle.models import layers

# (block, number of convs, output channels) for configuration "E".
BLOCKS: tuple[tuple[int, int, int], ...] = (
  (1, 2, 64),
  (2, 2, 128),
  (3, 4, 256),
  (4, 4, 512),
  (5, 4, 512),
)
LAYER_NAMES: tuple[str, ...] = tuple(
  f'block{b}_conv{i}' for b, n, _ in BLOCKS for i in range(1, n + 1)
)
# Output channels N_l of every conv (used by the Gatys normaliser and layer-weight presets).
CHANNELS: dict[str, int] = {f'block{b}_conv{i}': c for b, n, c in BLOCKS for i in range(1, n + 1)}
NUM_CONV_PARAMS = 20_024_384


class WeightFileError(UserError, ValueError):
  """A VGG19 weight file is unreadable, of the wrong network, or has wrong shapes."""


def expected_shapes(in_channels: int = 3) -> dict[str, dict[str, tuple[int, ...]]]:
  """The HWIO kernel / bias shape of every conv, so ports can validate what they read."""
  shapes, cin = {}, in_channels
  for b, n, c in BLOCKS:
    for i in range(1, n + 1):
      shapes[f'block{b}_conv{i}'] = {'kernel': (3, 3, cin, c), 'bias': (c,)}
      cin = c
  return shapes


_ALIAS = re.compile(r'^(?:conv|relu)(\d)_(\d)$')


def canonical_name(name: str) -> str:
  """Maps `conv1_1` / `relu1_1` / `block1_conv1` to `block1_conv1` (all are post-ReLU here)."""
  m = _ALIAS.match(name)
  canon = f'block{m.group(1)}_conv{m.group(2)}' if m else name
  if canon not in CHANNELS:
    raise ValueError(
      f'unknown VGG19 layer {name!r}; valid: {", ".join(LAYER_NAMES)} '
      '(or the aliases convB_I / reluB_I)'
    )
  return canon


def check_params(params: Any, source: str) -> dict[str, dict[str, np.ndarray]]:
  """Checks a VGG19 params tree has every conv with the right shapes; the error names `source`."""
  out = {}
  for name, shapes in expected_shapes().items():
    if name not in params:
      raise WeightFileError(f'{source}: missing VGG19 layer {name}')
    out[name] = {}
    for leaf, shape in shapes.items():
      if leaf not in params[name]:
        raise WeightFileError(f'{source}: layer {name} has no {leaf}')
      value = np.asarray(params[name][leaf], dtype=np.float32)
      if value.shape != shape:
        raise WeightFileError(
          f'{source}: {name}/{leaf} has shape {value.shape}, expected {shape} (VGG19)'
        )
      out[name][leaf] = value
  return out


def frozen_kernels(
  params: Mapping[str, Any], image_hw: tuple[int, int] | None = None, conv_impl: str = 'auto'
) -> dict[str, Any]:
  """`{layer: input-gradient kernel}` for frozen weights (NST): compute once, pass as `kernels_t`.

  With `image_hw` (the image the objective runs on), `conv_impl` may run the wide layers as Winograd
  convs (on CPU by default; see kernels/dispatch.py). Values differ by rounding only.
  """
  layer_hw = None
  if image_hw is not None:  # block b sees the image after b-1 floor halvings
    pools = {name: int(canonical_name(name)[5]) - 1 for name in params}
    layer_hw = {name: (image_hw[0] >> p, image_hw[1] >> p) for name, p in pools.items()}
  return layers.frozen_kernels(params, layer_hw, conv_impl)


def _conv_relu(x: jax.Array, kernel: jax.Array, bias: jax.Array, kernel_t: Any = None) -> jax.Array:
  y = layers.frozen_conv3x3(x, kernel, kernel_t)
  # ReLU as a select with the bias inside it: written as relu(y + b), XLA:CPU fuses the bias add into the
  # YNNPACK conv and materialises zeros / the bias broadcast at full size (CSE then keeps them alive for
  # the whole program; ~1 KiB per pixel). Same values and gradient (0 at 0) as jax.nn.relu.
  b = bias.astype(x.dtype)
  return jnp.where(y > -b, y + b, jnp.zeros((), y.dtype))


def _pool2x2(x: jax.Array, kind: str) -> jax.Array:
  """2x2 stride-2 'VALID' (floor) pooling as a reshape + reduction, NHWC.

  Same forward values as `nn.max_pool` / `nn.avg_pool`, but the gradient of a plain `max` reduction
  is elementwise (ties share it) and fuses. `reduce_window`'s max gradient on XLA:CPU instead builds
  four int32 index arrays of the *input* size plus a scatter: ~1 KiB per pixel at block 1 and the
  largest term of the whole NST memory plan.
  """
  n, h, w, c = x.shape
  win = x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c)
  return win.max(axis=(2, 4)) if kind == 'max' else win.mean(axis=(2, 4))


def _after(x: jax.Array, ct: Any) -> jax.Array:
  """`x` unchanged, but data-dependent on one element of each cotangent leaf (a real edge for XLA).

  A 32-bit word has at most 32 set bits, so the added term is exactly 0 for every c (NaN and inf
  included); XLA folds `|c| < 0` and drops optimization barriers, but does not see through popcount.
  """
  firsts = [
    jnp.ravel(leaf)[0].astype(jnp.float32) for leaf in jax.tree.leaves(ct) if jnp.size(leaf)
  ]
  c = sum(firsts, jnp.float32(0))
  never = jax.lax.population_count(jax.lax.bitcast_convert_type(c, jnp.uint32)) > 32
  return x + jnp.where(never, c, 0.0).astype(x.dtype)


def checkpoint(f: Callable[..., Any]) -> Callable[..., Any]:
  """`jax.checkpoint` of `f` whose recomputation cannot be scheduled early.

  jax.checkpoint guards the recomputation with an `optimization_barrier`, but XLA:CPU drops barriers
  before CSE and scheduling: the recomputation is merged with the forward pass, the loss-gradient terms
  that need only forward values are computed during the forward pass, and every activation stays live
  as without remat (measured: identical buffer plans). Here the recomputation starts from the first
  argument made data-dependent on the incoming cotangent (`_after`), so none of the block's backward
  can run before the blocks after it are done. Only `f`'s inputs are saved.
  """

  @jax.custom_vjp
  def run(*args):
    return f(*args)

  def fwd(*args):
    return f(*args), args

  def bwd(args, ct):
    args, ct = jax.lax.optimization_barrier((args, ct))
    return jax.vjp(f, _after(args[0], ct), *args[1:])[1](ct)

  run.defvjp(fwd, bwd)
  return run


def block_losses(
  params: Any,
  x: jax.Array,
  layer_losses: Mapping[str, Callable[[jax.Array, Any], dict[str, jax.Array]]],
  loss_args: Mapping[str, Any],
  *,
  pool: str = 'max',
  remat: bool = True,
  dtype: Any = jnp.float32,
  kernels_t: Mapping[str, Any] | None = None,
) -> dict[str, jax.Array]:
  """Σ over layers of `layer_losses[name](features, loss_args[name])` (dicts of scalars, summed by key).

  Each loss is computed inside its block, so with `remat` (see `checkpoint`) the backward pass keeps
  only the block inputs (3 channels at full resolution for block 1) instead of every activation and
  the features the losses read; block 1 at full resolution is then the only large working set.
  Same values and gradients as `VGG19(...).apply` followed by the losses. `kernels_t`: precomputed
  `frozen_kernels(params, ...)` (frozen weights), else computed here.
  """
  if pool not in ('max', 'avg'):
    raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
  wanted = {canonical_name(n): n for n in layer_losses}
  if not wanted:
    raise ValueError('block_losses needs at least one layer loss')
  deepest = max(LAYER_NAMES.index(c) for c in wanted)
  x = jnp.asarray(x, dtype)
  totals: dict[str, jax.Array] = {}
  for b, n, _ in BLOCKS:
    names = [
      f'block{b}_conv{i}'
      for i in range(1, n + 1)
      if LAYER_NAMES.index(f'block{b}_conv{i}') <= deepest
    ]
    if not names:
      break
    fns = {i: layer_losses[wanted[nm]] for i, nm in enumerate(names) if nm in wanted}
    args = {i: loss_args[wanted[nm]] for i, nm in enumerate(names) if nm in wanted}
    weights = [
      (params[nm]['kernel'], params[nm]['bias'], None if kernels_t is None else kernels_t[nm])
      for nm in names
    ]
    do_pool = LAYER_NAMES.index(names[-1]) < deepest

    def block_fn(x, weights, args, fns=fns, do_pool=do_pool):
      part: dict[str, jax.Array] = {}
      for i, (kernel, bias, kernel_t) in enumerate(weights):
        x = _conv_relu(x, kernel, bias, kernel_t)
        if i in fns:
          for k, v in fns[i](x, args[i]).items():
            part[k] = part[k] + v if k in part else v
      return (_pool2x2(x, pool) if do_pool else x), part

    x, part = (checkpoint(block_fn) if remat else block_fn)(x, weights, args)
    for k, v in part.items():
      totals[k] = totals[k] + v if k in totals else v
  return totals


class _ConvParams(nn.Module):
  """Holds one conv's params (`blockB_convI/{kernel, bias}`); the conv is `layers.frozen_conv3x3`."""

  in_features: int
  features: int

  @nn.compact
  def __call__(self) -> tuple[jax.Array, jax.Array]:
    # He init keeps activations O(1) through 16 random ReLU convs (tests use random weights).
    kernel = self.param(
      'kernel', nn.initializers.he_normal(), (3, 3, self.in_features, self.features), jnp.float32
    )
    bias = self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32)
    return kernel, bias


class VGG19(nn.Module):
  """VGG19 conv trunk returning `{requested name: post-ReLU features}`.

  Attributes:
    pool: 'max' (Keras/torchvision) or 'avg' (Gatys).
    outputs: layer names (`block5_conv2`, `conv5_2` or `relu5_2`); the result is keyed by the names as given.
      The forward stops after the deepest one, so no compute is spent on unused layers.
    dtype: compute dtype (params stay float32).
  NST objectives that must fit high resolutions use `block_losses` (per-block remat) instead.
  """

  pool: str = 'max'
  outputs: Sequence[str] = ('block5_conv2',)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(
    self, x: jax.Array, kernels_t: Mapping[str, Any] | None = None
  ) -> dict[str, jax.Array]:
    """`kernels_t`: precomputed `frozen_kernels(params, ...)` for frozen weights (NST), or None."""
    if self.pool not in ('max', 'avg'):
      raise ValueError(f"pool must be 'max' or 'avg', got {self.pool!r}")
    if not self.outputs:
      raise ValueError('VGG19 needs at least one output layer')
    wanted = {}
    for name in self.outputs:
      wanted.setdefault(canonical_name(name), []).append(name)
    deepest = max(LAYER_NAMES.index(c) for c in wanted)
    last_block = int(LAYER_NAMES[deepest][5])

    x = jnp.asarray(x, self.dtype)
    feats: dict[str, jax.Array] = {}
    cin = x.shape[-1]
    for b, n, c in BLOCKS:
      if b > last_block:
        break
      names = [
        f'block{b}_conv{i}'
        for i in range(1, n + 1)
        if LAYER_NAMES.index(f'block{b}_conv{i}') <= deepest
      ]
      for i, nm in enumerate(names):
        kernel, bias = _ConvParams(cin if i == 0 else c, c, name=nm)()
        x = _conv_relu(x, kernel, bias, None if kernels_t is None else kernels_t[nm])
        for alias in wanted.get(nm, ()):
          feats[alias] = x
      cin = c
      if b < last_block:
        x = _pool2x2(x, self.pool)
    return feats


def init_params(rng: jax.Array, in_channels: int = 3) -> dict[str, Any]:
  """Random (He) params for all 16 convs; tests and shape checks use them."""
  net = VGG19(outputs=(LAYER_NAMES[-1],))
  return net.init(rng, jnp.zeros((1, 16, 16, in_channels), jnp.float32))['params']
