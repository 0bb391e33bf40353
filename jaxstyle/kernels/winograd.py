"""Winograd 3×3 stride-1 convs for XLA:CPU: F(2×2, 3×3) and F(4×4, 3×3) (Lavin & Gray 2016).

Why: XLA:CPU runs wide 3×3 layers at about its GEMM speed, so only fewer multiplies help. F(4×4, 3×3)
does a 3×3 conv as 36 GEMMs over 4×4 output tiles (2.25 multiplies per output and channel pair
instead of 9); F(2×2, 3×3) as 16 GEMMs over 2×2 tiles (4 instead of 9). The input/output transforms
are memory-bound and outweigh the savings at few channels or small maps, hence `choose`. Values
differ from the direct sum by rounding only: max |error| / max |y| ≈ 2e-6 for F(2×2) and 1-2e-5
for F(4×4) in float32 (tests/kernels/test_winograd.py checks values and gradients).

`kernels.dispatch` runs it for 'cpu_winograd': `conv3x3` for trainable layers (ResNet blocks), and
`prepare`d frozen kernels (NST's VGG19), transformed once per run so an evaluation only transforms
activations.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# (output tile m, Bᵀ (a×a), G (a×3), Aᵀ (m×a)) with a = m + 2; Lavin & Gray's interpolation points
# 0, ±1 for F(2×2) and 0, ±1, ±2 for F(4×4), ∞ for both.
_F23 = (
  2,
  ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
  ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1)),
  ((1, 1, 1, 0), (0, 1, -1, -1)),
)
_F43 = (
  4,
  (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
  ),
  (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
  ),
  ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1)),
)
VARIANTS = {'F2x2': _F23, 'F4x4': _F43}


def _kron(matrix) -> np.ndarray:
  """M ⊗ M in float32: applies M along both tile axes of a flattened tile at once (one GEMM)."""
  m = np.asarray(matrix, np.float64)
  return np.kron(m, m).astype(np.float32)


# variant -> (m, Bᵀ⊗Bᵀ (a², a²), G⊗G (a², 9), Aᵀ⊗Aᵀ (m², a²)): each transform is one small-K GEMM,
# which XLA compiles in a fraction of the time of the same maps written as adds of slices.
_MATRICES = {name: (m, _kron(bt), _kron(g), _kron(at)) for name, (m, bt, g, at) in VARIANTS.items()}
_BY_TILES = {16: 'F2x2', 36: 'F4x4'}  # a² GEMMs -> variant: a transformed kernel names its own


class Prepared(NamedTuple):
  """A frozen 3×3 kernel in the Winograd domain: `u` for the conv, `u_t` for its input gradient."""

  u: jax.Array  # (a², Cin, Cout)
  u_t: jax.Array  # (a², Cout, Cin): the flipped, transposed kernel's transform


def choose(cin: int, cout: int, height: int, width: int) -> str | None:
  """The variant that beats XLA:CPU's conv for a layer with this output size, or None (measured)."""
  if cin * cout < 128 * 256 or min(height, width) < 8:
    return None
  return 'F4x4' if min(height, width) >= 32 else 'F2x2'


def kernel_transform(kernel: jax.Array, variant: str) -> jax.Array:
  """HWIO (3, 3, Cin, Cout) -> (a², Cin, Cout): G·g·Gᵀ for every channel pair."""
  gg = _MATRICES[variant][2]
  return jnp.einsum('pq,qio->pio', gg.astype(kernel.dtype), kernel.reshape(9, *kernel.shape[2:]))


def flipped_transposed(kernel: jax.Array) -> jax.Array:
  """The kernel of a 3×3 stride-1 conv's input gradient: spatially flipped, in/out swapped (HWIO)."""
  return jnp.swapaxes(kernel[::-1, ::-1], 2, 3)


def prepare(kernel: jax.Array, variant: str) -> Prepared:
  """Both transforms of a frozen kernel: the conv's and its input gradient's."""
  return Prepared(
    kernel_transform(kernel, variant), kernel_transform(flipped_transposed(kernel), variant)
  )


Pads = tuple[tuple[int, int], tuple[int, int]]


def _overlapping(x: jax.Array, axis: int, m: int, tiles: int) -> jax.Array:
  """Splits `axis` (length m·(tiles+1)) into `tiles` windows of m+2 at stride m: (..., tiles, m+2, ...).

  Each window is its own block of m plus the next block's first 2: two slices and a concatenate
  (36 strided slices compile ~10× slower).
  """
  blocks = x.reshape(*x.shape[:axis], tiles + 1, m, *x.shape[axis + 1 :])
  head = lax.slice_in_dim(blocks, 0, tiles, axis=axis)
  tail = lax.slice_in_dim(lax.slice_in_dim(blocks, 1, tiles + 1, axis=axis), 0, 2, axis=axis + 1)
  return jnp.concatenate([head, tail], axis=axis + 1)


def _input_tiles(
  x: jax.Array,
  pads: Pads,
  m: int,
  btb: np.ndarray,
) -> tuple[jax.Array, tuple[int, ...]]:
  """Bᵀ·d·B of every (m+2)² input tile at stride m: (a², N·tiles_h·tiles_w, C), and the geometry."""
  a = m + 2
  n, h, w, c = x.shape
  (lo_h, hi_h), (lo_w, hi_w) = pads
  ho, wo = h + lo_h + hi_h - 2, w + lo_w + hi_w - 2
  th, tw = -(-ho // m), -(-wo // m)  # tiles; ragged edges are zero-extended and cropped
  xp = jnp.pad(
    x, ((0, 0), (lo_h, m * (th + 1) - h - lo_h), (lo_w, m * (tw + 1) - w - lo_w), (0, 0))
  )
  d = _overlapping(_overlapping(xp, 1, m, th), 3, m, tw)  # (n, th, a, tw, a, C)
  d = jnp.transpose(d, (2, 4, 0, 1, 3, 5)).reshape(a * a, n * th * tw, c)
  return jnp.einsum('pq,qtc->ptc', btb.astype(x.dtype), d), (n, th, tw, ho, wo)


def _output(prod: jax.Array, geometry: tuple[int, ...], m: int, ata: np.ndarray) -> jax.Array:
  """Aᵀ·M·A of every tile, tiles laid back side by side: (N, ho, wo, Cout)."""
  n, th, tw, ho, wo = geometry
  y = jnp.einsum('rp,pto->rto', ata.astype(prod.dtype), prod).reshape(m, m, n, th, tw, -1)
  y = jnp.transpose(y, (2, 3, 0, 4, 1, 5))  # (n, th, m, tw, m, Cout)
  return y.reshape(n, m * th, m * tw, -1)[:, :ho, :wo]


def transposable(pads: Pads) -> bool:
  """Whether `conv3x3` takes these pads: its input gradient pads by 2 - pad on each side."""
  return all(0 <= p <= 2 for pair in pads for p in pair)


def _conv(x: jax.Array, u: jax.Array, pads: Pads) -> jax.Array:
  """3×3 stride-1 conv of `x` with a transformed kernel `u` (its variant from `u.shape[0]`)."""
  m, btb, _, ata = _MATRICES[_BY_TILES[u.shape[0]]]
  v, geometry = _input_tiles(x, pads, m, btb)
  prod = lax.dot_general(
    v, u.astype(v.dtype), (((2,), (1,)), ((0,), (0,))), preferred_element_type=v.dtype
  )
  return _output(prod, geometry, m, ata)


def conv3x3_same(x: jax.Array, u: jax.Array) -> jax.Array:
  """NHWC 3×3 stride-1 'SAME' conv with a transformed kernel `u` (its variant from `u.shape[0]`)."""
  return _conv(x, u, ((1, 1), (1, 1)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv3x3(x: jax.Array, kernel: jax.Array, pads: Pads, variant: str) -> jax.Array:
  """Trainable 3×3 stride-1 conv (HWIO kernel, explicit pads in [0, 2]) as a Winograd conv.

  The backward pass stays in the Winograd domain too: the input gradient is the same conv with the
  flipped, transposed kernel; the kernel gradient is a² GEMMs of the input tiles with the output
  gradient's tiles, mapped back through the kernel transform's transpose.
  """
  if not transposable(pads):
    raise ValueError(
      f'winograd.conv3x3 needs pads in [0, 2] (its input gradient pads by 2 - pad), got {pads}'
    )
  return _conv3x3_fwd(x, kernel, pads, variant)[0]


def _conv3x3_fwd(x, kernel, pads, variant):
  return _conv(x, kernel_transform(kernel, variant), pads), (x, kernel)


def _conv3x3_bwd(pads, variant, res, dy):
  x, kernel = res
  m, btb, _, ata = _MATRICES[variant]
  v, geometry = _input_tiles(x, pads, m, btb)  # recomputed: cheaper than keeping 2.25-4x the input
  prod_shape = jax.ShapeDtypeStruct((v.shape[0], v.shape[1], kernel.shape[3]), dy.dtype)
  (dprod,) = jax.linear_transpose(lambda p: _output(p, geometry, m, ata), prod_shape)(dy)
  du = lax.dot_general(v, dprod, (((1,), (1,)), ((0,), (0,))), preferred_element_type=dy.dtype)
  _, transform_vjp = jax.vjp(lambda k: kernel_transform(k, variant), kernel)
  (dkernel,) = transform_vjp(du.astype(kernel.dtype))
  pads_t = tuple((2 - lo, 2 - hi) for lo, hi in pads)
  dx = _conv(dy, kernel_transform(flipped_transposed(kernel), variant), pads_t)
  return dx.astype(x.dtype), dkernel


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)
