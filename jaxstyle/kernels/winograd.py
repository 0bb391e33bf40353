"""Winograd stride-1 convs for XLA:CPU: F(2×2, 3×3), F(4×4, 3×3) (Lavin & Gray 2016), F(3×3, 4×4).

Why: XLA:CPU runs wide layers at about its GEMM speed, so only fewer multiplies help. F(4×4, 3×3)
does a 3×3 conv as 36 GEMMs over 4×4 output tiles (2.25 multiplies per output and channel pair
instead of 9); F(2×2, 3×3) as 16 GEMMs over 2×2 tiles (4 instead of 9). F(3×3, 4×4) does a 4×4 conv
(the PatchGAN's stride-1 layers) as 36 GEMMs over 3×3 tiles (4 instead of 16), F(2×2, 4×4) as 25
over 2×2 tiles (6.25). The input/output transforms are memory-bound and outweigh the savings at
few channels or small maps, hence `choose`. Values differ from the direct sum by rounding only:
max |error| / max |y| ≈ 2e-6 for F(2×2, 3×3) and 1-2e-5 for F(4×4, 3×3) in float32
(tests/kernels/test_winograd.py checks values and gradients).

`kernels.dispatch` runs it for 'cpu_winograd': `conv` for trainable layers (ResNet blocks, PatchGAN),
and `prepare`d frozen 3×3 kernels (NST's VGG19), transformed once per run so an evaluation only
transforms activations.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Matrix = tuple[tuple[Fraction, ...], ...]


def _points_matrix(points: Sequence[Fraction], columns: int) -> list[list[Fraction]]:
  """Evaluation of a polynomial with `columns` coefficients at `points`, then at ∞ (its top one)."""
  rows = [[Fraction(p) ** j for j in range(columns)] for p in points]
  return rows + [[Fraction(0)] * (columns - 1) + [Fraction(1)]]


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
  """Exact Gauss-Jordan inverse (the interpolation matrix is small and must not round)."""
  n = len(matrix)
  rows = [row[:] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
  for col in range(n):
    pivot = next(r for r in range(col, n) if rows[r][col] != 0)
    rows[col], rows[pivot] = rows[pivot], rows[col]
    rows[col] = [v / rows[col][col] for v in rows[col]]
    for r in range(n):
      if r != col and rows[r][col] != 0:
        rows[r] = [v - rows[r][col] * p for v, p in zip(rows[r], rows[col])]
  return [row[n:] for row in rows]


def toom_cook(m: int, r: int, points: Sequence[int]) -> tuple[Matrix, Matrix, Matrix]:
  """Exact (Bᵀ (a×a), G (a×r), Aᵀ (m×a)) of F(m, r) from a - 1 finite interpolation points and ∞.

  The correlation y = Aᵀ[(G·g) ⊙ (Bᵀ·d)] is the transpose of the Toom-Cook product of polynomials
  of degrees r - 1 and m - 1 (evaluate both at the points, multiply, interpolate): Bᵀ = V⁻ᵀ,
  G = V_r, Aᵀ = V_mᵀ. Each row of Bᵀ is scaled to coprime integers and G's row divided by the same
  factor (Lavin's convention: the fractions sit in the kernel transform, computed once per step).
  """
  a = m + r - 1
  if len(points) != a - 1 or len(set(points)) != a - 1:
    raise ValueError(f'F({m}, {r}) needs {a - 1} distinct finite points, got {points}')
  bt = [list(col) for col in zip(*_inverse(_points_matrix(points, a)))]
  g = _points_matrix(points, r)
  for i, row in enumerate(bt):
    scale = Fraction(math.lcm(*(v.denominator for v in row)), math.gcd(*(v.numerator for v in row)))
    bt[i] = [v * scale for v in row]
    g[i] = [v / scale for v in g[i]]
  at = list(zip(*_points_matrix(points, m)))
  return tuple(map(tuple, bt)), tuple(map(tuple, g)), tuple(map(tuple, at))


def _variant(m: int, r: int, points: Sequence[int]) -> tuple:
  bt, g, at = toom_cook(m, r, points)
  return (m, bt, g, at)


# (output tile m, Bᵀ (a×a), G (a×r), Aᵀ (m×a)) with a = m + r - 1. The 3×3 ones are Lavin & Gray's
# published matrices (`toom_cook` gives them up to the sign of a point's row or column), points
# 0, ±1 for F(2×2) and 0, ±1, ±2 for F(4×4), ∞ for both; F(3×3, 4×4) has F(4×4, 3×3)'s points
# (so the same Bᵀ), F(2×2, 4×4) 0, ±1, 2, ∞.
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
VARIANTS = {
  'F2x2': _F23,
  'F4x4': _F43,
  'F3x3_k4': _variant(3, 4, (0, 1, -1, 2, -2)),
  'F2x2_k4': _variant(2, 4, (0, 1, -1, 2)),
}


def kernel_size(variant: str) -> int:
  """r, the kernel side a variant convolves with."""
  return len(VARIANTS[variant][2][0])


def _kron(matrix) -> np.ndarray:
  """M ⊗ M in float32: applies M along both tile axes of a flattened tile at once (one GEMM)."""
  m = np.asarray(matrix, np.float64)
  return np.kron(m, m).astype(np.float32)


# variant -> (m, Bᵀ⊗Bᵀ (a², a²), G⊗G (a², r²), Aᵀ⊗Aᵀ (m², a²)): each transform is one small-K GEMM,
# which XLA compiles in a fraction of the time of the same maps written as adds of slices.
_MATRICES = {name: (m, _kron(bt), _kron(g), _kron(at)) for name, (m, bt, g, at) in VARIANTS.items()}
_BY_TILES = {16: 'F2x2', 36: 'F4x4'}  # a² GEMMs -> 3×3 variant: a transformed kernel names its own


class Prepared(NamedTuple):
  """A frozen 3×3 kernel in the Winograd domain: `u` for the conv, `u_t` for its input gradient."""

  u: jax.Array  # (a², Cin, Cout)
  u_t: jax.Array  # (a², Cout, Cin): the flipped, transposed kernel's transform


def choose(cin: int, cout: int, height: int, width: int, size: int = 3) -> str | None:
  """The variant that beats XLA:CPU's conv for a `size`×`size` layer with this output size, or None
  (measured)."""
  if cin * cout < 128 * 256 or min(height, width) < 8 or size not in (3, 4):
    return None
  if (
    size == 4
  ):  # 4×4: F(3×3) was faster than F(2×2) from 31² up, a tie at 15² (docs/performance.md)
    return 'F3x3_k4' if min(height, width) >= 16 else None
  return 'F4x4' if min(height, width) >= 32 else 'F2x2'


def kernel_transform(kernel: jax.Array, variant: str) -> jax.Array:
  """HWIO (r, r, Cin, Cout) -> (a², Cin, Cout): G·g·Gᵀ for every channel pair."""
  gg = _MATRICES[variant][2]
  return jnp.einsum('pq,qio->pio', gg.astype(kernel.dtype), kernel.reshape(-1, *kernel.shape[2:]))


def _flipped_kernel_transform(kernel: jax.Array, variant: str) -> jax.Array:
  """(a², Cin, Cout): the transform of the spatially flipped kernel, channels left in place.

  Flipping both kernel axes reverses the flattened r² taps, so it is G⊗G with its columns reversed.
  """
  gg = _MATRICES[variant][2][:, ::-1]
  return jnp.einsum('pq,qio->pio', gg.astype(kernel.dtype), kernel.reshape(-1, *kernel.shape[2:]))


def flipped_transposed(kernel: jax.Array) -> jax.Array:
  """The kernel of a stride-1 conv's input gradient: spatially flipped, in/out swapped (HWIO)."""
  return jnp.swapaxes(kernel[::-1, ::-1], 2, 3)


def prepare(kernel: jax.Array, variant: str) -> Prepared:
  """Both transforms of a frozen kernel: the conv's and its input gradient's."""
  return Prepared(
    kernel_transform(kernel, variant), kernel_transform(flipped_transposed(kernel), variant)
  )


Pads = tuple[tuple[int, int], tuple[int, int]]


def _overlapping(x: jax.Array, axis: int, m: int, overlap: int, tiles: int) -> jax.Array:
  """Splits `axis` (length m·(tiles+extra)) into `tiles` windows of m+overlap at stride m.

  Each window is its own block of m plus the next `extra` = ⌈overlap/m⌉ blocks, cut to m+overlap:
  slices and a concatenate (a strided slice per tile compiles ~10× slower).
  """
  extra = -(-overlap // m)
  blocks = x.reshape(*x.shape[:axis], tiles + extra, m, *x.shape[axis + 1 :])
  parts = [lax.slice_in_dim(blocks, i, tiles + i, axis=axis) for i in range(extra + 1)]
  parts[-1] = lax.slice_in_dim(parts[-1], 0, overlap - m * (extra - 1), axis=axis + 1)
  return jnp.concatenate(parts, axis=axis + 1)


def _input_tiles(
  x: jax.Array,
  pads: Pads,
  m: int,
  r: int,
  btb: np.ndarray,
) -> tuple[jax.Array, tuple[int, ...]]:
  """Bᵀ·d·B of every (m+r-1)² input tile at stride m: (a², N·tiles_h·tiles_w, C), and the geometry."""
  a, extra = m + r - 1, -(-(r - 1) // m)
  n, h, w, c = x.shape
  (lo_h, hi_h), (lo_w, hi_w) = pads
  ho, wo = h + lo_h + hi_h - r + 1, w + lo_w + hi_w - r + 1
  th, tw = -(-ho // m), -(-wo // m)  # tiles; ragged edges are zero-extended and cropped
  xp = jnp.pad(
    x,
    ((0, 0), (lo_h, m * (th + extra) - h - lo_h), (lo_w, m * (tw + extra) - w - lo_w), (0, 0)),
  )
  d = _overlapping(_overlapping(xp, 1, m, r - 1, th), 3, m, r - 1, tw)  # (n, th, a, tw, a, C)
  d = jnp.transpose(d, (2, 4, 0, 1, 3, 5)).reshape(a * a, n * th * tw, c)
  return jnp.einsum('pq,qtc->ptc', btb.astype(x.dtype), d), (n, th, tw, ho, wo)


def _output(prod: jax.Array, geometry: tuple[int, ...], m: int, ata: np.ndarray) -> jax.Array:
  """Aᵀ·M·A of every tile, tiles laid back side by side: (N, ho, wo, Cout)."""
  n, th, tw, ho, wo = geometry
  y = jnp.einsum('rp,pto->rto', ata.astype(prod.dtype), prod).reshape(m, m, n, th, tw, -1)
  y = jnp.transpose(y, (2, 3, 0, 4, 1, 5))  # (n, th, m, tw, m, Cout)
  return y.reshape(n, m * th, m * tw, -1)[:, :ho, :wo]


def transposable(pads: Pads, size: int = 3) -> bool:
  """Whether `conv` takes these pads for a `size`×`size` kernel: its input gradient pads by
  size - 1 - pad on each side."""
  return all(0 <= p <= size - 1 for pair in pads for p in pair)


def _conv(x: jax.Array, u: jax.Array, pads: Pads, variant: str, swapped: bool = False) -> jax.Array:
  """Stride-1 conv of `x` with a kernel `u` transformed for `variant`: (a², Cin, Cout), or with
  `swapped` (a², Cout, Cin) (an input gradient's kernel left in the forward kernel's layout)."""
  m, btb, _, ata = _MATRICES[variant]
  v, geometry = _input_tiles(x, pads, m, kernel_size(variant), btb)
  prod = lax.dot_general(
    v,
    u.astype(v.dtype),
    (((2,), (2 if swapped else 1,)), ((0,), (0,))),
    preferred_element_type=v.dtype,
  )
  return _output(prod, geometry, m, ata)


def conv3x3_same(x: jax.Array, u: jax.Array) -> jax.Array:
  """NHWC 3×3 stride-1 'SAME' conv with a transformed kernel `u` (its variant from `u.shape[0]`)."""
  return _conv(x, u, ((1, 1), (1, 1)), _BY_TILES[u.shape[0]])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x: jax.Array, kernel: jax.Array, pads: Pads, variant: str) -> jax.Array:
  """Trainable r×r stride-1 conv (HWIO kernel, explicit pads in [0, r - 1]) as a Winograd conv.

  The backward pass stays in the Winograd domain too: the input gradient is the same conv with the
  flipped, transposed kernel; the kernel gradient is a² GEMMs of the input tiles with the output
  gradient's tiles, mapped back through the kernel transform's transpose.
  """
  size = kernel_size(variant)
  if kernel.shape[:2] != (size, size):
    raise ValueError(f'{variant} convolves with {size}×{size} kernels, got {kernel.shape[:2]}')
  if not transposable(pads, size):
    raise ValueError(
      f'winograd.conv needs pads in [0, {size - 1}] for a {size}×{size} kernel '
      f'(its input gradient pads by {size - 1} - pad), got {pads}'
    )
  return _conv_fwd(x, kernel, pads, variant)[0]


conv3x3 = conv  # the name the 3×3 callers know


def _conv_fwd(x, kernel, pads, variant):
  return _conv(x, kernel_transform(kernel, variant), pads, variant), (x, kernel)


def _conv_bwd(pads, variant, res, dy):
  x, kernel = res
  m, btb, _, ata = _MATRICES[variant]
  size = kernel_size(variant)
  # the input tiles are recomputed: cheaper than keeping 2.25-6.25x the input
  v, geometry = _input_tiles(x, pads, m, size, btb)
  prod_shape = jax.ShapeDtypeStruct((v.shape[0], v.shape[1], kernel.shape[3]), dy.dtype)
  (dprod,) = jax.linear_transpose(lambda p: _output(p, geometry, m, ata), prod_shape)(dy)
  du = lax.dot_general(v, dprod, (((1,), (1,)), ((0,), (0,))), preferred_element_type=dy.dtype)
  pads_t = tuple((size - 1 - lo, size - 1 - hi) for lo, hi in pads)
  if size == 3:  # the 3×3 variants keep their first formulation's numbers, bit for bit
    _, transform_vjp = jax.vjp(lambda k: kernel_transform(k, variant), kernel)
    (dkernel,) = transform_vjp(du.astype(kernel.dtype))
    dx = _conv(dy, kernel_transform(flipped_transposed(kernel), variant), pads_t, variant)
  else:  # no weight-sized transposes: autodiff's einsum transpose made conv_3's dkernel step
    # 10 ms (2.4 ms as one GEMM); the flip + swap of the input gradient's kernel measured a tie
    gg_t = _MATRICES[variant][2].T.astype(kernel.dtype)  # (r², a²)
    dkernel = (gg_t @ du.astype(kernel.dtype).reshape(du.shape[0], -1)).reshape(kernel.shape)
    dx = _conv(dy, _flipped_kernel_transform(kernel, variant), pads_t, variant, swapped=True)
  return dx.astype(x.dtype), dkernel


conv.defvjp(_conv_fwd, _conv_bwd)
