"""Up-sampling convolutions computed on the low-resolution input (sub-pixel form).

A stride-2 transposed conv and a nearest ×2 upsample followed by a conv both produce each output
phase (row parity a, column parity b) from a small stride-1 conv of the *input*. All four phases
run as one conv with 4·Cout channels, interleaved by a depth-to-space reshape: no zero-dilated or
4× upsampled tensor, ordinary conv gradients, fewer products. Pure functions of (x, kernel) in the
layouts of the Flax layers they replace, so variables, ports and parity tests are unchanged; the
stride-1 conv itself is passed in (`kernels.dispatch` picks XLA's or fast_conv's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

ConvFn = Callable[[jax.Array, jax.Array, Any], jax.Array]  # (x, HWIO kernel, pads) -> stride-1 conv
# ((d, e, phase), ((ky, kx), ...)) for each block of a phase kernel (see `phase_kernel`)
Blocks = tuple[tuple[tuple[int, int, int], tuple[tuple[int, int], ...]], ...]


def upsample_nearest2x(x: jax.Array) -> jax.Array:
  """Nearest-neighbour ×2 (Keras `UpSampling2D`), written as broadcast+reshape.

  `jnp.repeat`/`jax.image.resize` lower to gathers, which are slow on TPU/GPU, especially in the
  backward pass; a broadcast and a reshape are free layout ops.
  """
  n, h, w, c = x.shape
  y = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c))
  return y.reshape(n, 2 * h, 2 * w, c)


def _phase_conv(
  x: jax.Array, kernel4: jax.Array, pads: tuple[tuple[int, int], ...], conv: ConvFn
) -> jax.Array:
  """Stride-1 conv with 4·Cout channels, then depth-to-space: (N, H, W, 4·C) → (N, 2H, 2W, C)."""
  n, h, w, c4 = x.shape[0], x.shape[1], x.shape[2], kernel4.shape[-1]
  y = conv(x, kernel4, pads)
  cout = c4 // 4
  return y.reshape(n, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, cout)


def _phase_taps(lo: int, size: int = 3) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
  """Per output phase a ∈ {0, 1}: the (kernel tap k, input offset d) pairs with y[2m+a] += x[m+d]·w_f[k].

  A stride-2 transposed conv with leading pad `lo` is a conv of the zero-dilated input, so output
  2m+a only meets the taps k (of `size`) with a+k−lo even, at input m + (a+k−lo)/2.
  """
  return tuple(
    [(k, (a + k - lo) // 2) for k in range(size) if (a + k - lo) % 2 == 0] for a in (0, 1)
  )


def supports_transpose(padding: Any, size: int = 3) -> bool:
  """Whether `conv_transpose` takes this padding for a `size`×`size` kernel: explicit, with
  lo + hi = size, i.e. output 2H (torch k3 p1 output_padding 1 and Keras 'same': (1, 2) / (2, 1);
  torch k4 p1, pix2pix's U-Net: (2, 2))."""
  return not isinstance(padding, str) and all(lo + hi == size for lo, hi in padding)


def conv_transpose(
  x: jax.Array, kernel: jax.Array, padding: Sequence[tuple[int, int]], conv: ConvFn
) -> jax.Array:
  """`lax.conv_transpose(x, kernel, (2, 2), padding, transpose_kernel=True)` for a K×K kernel.

  The kernel is (K, K, Cout, Cin), as `nn.ConvTranspose(transpose_kernel=True)` holds it. XLA lowers
  the kernel gradient of an input-dilated conv to a slow generic kernel and computes 4× the useful
  products; here the four output phases are one stride-1 conv with 4·Cout channels, interleaved
  by a reshape: ordinary conv gradients, 16/36 of the products for K = 3 (a 2×2 window), 36/64
  for K = 4 (a 3×3 window, each phase using 2×2 of it).
  """
  size = kernel.shape[0]
  taps_h, taps_w = (_phase_taps(lo, size) for lo, _ in padding)
  offsets = [[d for phase in taps for _, d in phase] + [0] for taps in (taps_h, taps_w)]
  lo_h, lo_w = (-min(o) for o in offsets)
  size_h, size_w = (max(o) - min(o) + 1 for o in offsets)
  # w_f[ky, kx, ci, co] = kernel[K-1-ky, K-1-kx, co, ci] (flip + swap, as transpose_kernel=True does)
  flipped = jnp.swapaxes(kernel[::-1, ::-1], 2, 3)
  blocks = tuple(
    ((dy + lo_h, dx + lo_w, 2 * a + b), ((ky, kx),))
    for a, phase_h in enumerate(taps_h)
    for b, phase_w in enumerate(taps_w)
    for ky, dy in phase_h
    for kx, dx in phase_w
  )
  kernel4 = phase_kernel(flipped, blocks, (size_h, size_w)).astype(x.dtype)
  pads = ((lo_h, size_h - 1 - lo_h), (lo_w, size_w - 1 - lo_w))
  return _phase_conv(x, kernel4, pads, conv)


def conv_transpose_taps(
  x: jax.Array, kernel: jax.Array, padding: Sequence[tuple[int, int]]
) -> jax.Array:
  """`conv_transpose` as one GEMM to every tap's output, then shifted sums per output phase.

  The CPU form (`kernels.dispatch`, 'cpu_fast' / 'cpu_winograd') for even K (pix2pix's 4×4 up-convs):
  x (N·H·W, Cin) times the K·K taps (K·K·Cout, Cin)ᵀ is a single large GEMM, and each output phase
  adds its (K/2)² tap outputs at their input offsets. Only the useful products are computed (16 per
  input pixel for K = 4, against 36 in the 3×3 phase conv and 64 in XLA's input-dilated conv), and
  both gradients are GEMMs too, the form XLA:CPU runs fastest (torch's ConvTranspose2d is the same
  GEMM followed by col2im). The kernel is read in its own (K, K, Cout, Cin) layout: no weight-sized
  flip or transpose is materialised (at the 1×1..8×8 levels that copy cost ~10× the GEMM).
  """
  pads = tuple((int(lo), int(hi)) for lo, hi in padding)
  return _taps(x, kernel.astype(x.dtype), pads)


def _tap_offsets(size: int, pads: tuple[tuple[int, int], ...]):
  """(taps_h, taps_w, reach): per axis and output phase, the (kernel-layout tap, input offset)
  pairs (tap K-1-k of the kernel's own layout is tap k of the flipped kernel that `_phase_taps`
  indexes), and the largest |offset|."""
  taps_h, taps_w = (
    [[(size - 1 - k, d) for k, d in phase] for phase in _phase_taps(lo, size)] for lo, _ in pads
  )
  reach = max(abs(d) for phases in (taps_h, taps_w) for phase in phases for _, d in phase)
  return taps_h, taps_w, reach


def _shifted(a: jax.Array, d: int, e: int, reach: int) -> jax.Array:
  """out[:, i, j] = a[:, i + d, j + e] (zero outside a); |d|, |e| <= reach."""
  h, w = a.shape[1], a.shape[2]
  a = jnp.pad(a, ((0, 0), (reach, reach), (reach, reach), (0, 0)))
  return a[:, reach + d : reach + d + h, reach + e : reach + e + w]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _taps(x: jax.Array, kernel: jax.Array, pads: tuple[tuple[int, int], ...]) -> jax.Array:
  n, h, w, cin = x.shape
  size, cout = kernel.shape[0], kernel.shape[2]
  taps_h, taps_w, reach = _tap_offsets(size, pads)
  t = lax.dot_general(x.reshape(n * h * w, cin), kernel.reshape(-1, cin), (((1,), (1,)), ((), ())))
  t = t.reshape(n, h, w, size, size, cout)
  # y[2m+a, 2l+b] = sum over the phase's taps of t[m+d, l+e, tap]
  rows = [
    jnp.stack(
      [_sum_blocks([_shifted(t[:, :, :, ky, kx], d, e, reach) for ky, d in ph for kx, e in pw],
                   t[:, :, :, 0, 0]) for pw in taps_w],
      axis=3,
    )
    for ph in taps_h
  ]  # fmt: skip
  return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, cout)  # (N, H, 2, W, 2, C)


def _taps_fwd(x, kernel, pads):
  return _taps(x, kernel, pads), (x, kernel)


def _taps_bwd(pads, res, dy):
  """dt[m, l, tap] = dy[2(m-d)+a, 2(l-e)+b] assembled as one stack (the transpose of the forward's
  shifted sums; autodiff would build it as 16 zero-padded full-size adds), then two GEMMs."""
  x, kernel = res
  n, h, w, cin = x.shape
  size, cout = kernel.shape[0], kernel.shape[2]
  taps_h, taps_w, reach = _tap_offsets(size, pads)
  dy = dy.reshape(n, h, 2, w, 2, cout)
  pieces = {}
  for a, ph in enumerate(taps_h):
    for b, pw in enumerate(taps_w):
      for ky, d in ph:
        for kx, e in pw:
          pieces[ky, kx] = _shifted(dy[:, :, a, :, b], -d, -e, reach)
  zero = jnp.zeros_like(dy[:, :, 0, :, 0])
  dt = jnp.stack([pieces.get((i, j), zero) for i in range(size) for j in range(size)], axis=3)
  dt = dt.reshape(n * h * w, size * size * cout)
  dx = (dt @ kernel.reshape(-1, cin)).reshape(x.shape)
  dk = lax.dot_general(dt, x.reshape(n * h * w, cin), (((0,), (0,)), ((), ())))
  return dx, dk.reshape(kernel.shape)


_taps.defvjp(_taps_fwd, _taps_bwd)


def _upsample_blocks(size: int) -> tuple[Blocks, int, int]:
  """For a 'SAME' K×K conv after nearest ×2: the `phase_kernel` blocks, D offsets, lo.

  Output 2m+a reads the upsampled u[2m+a+k-p] = x[m + (a+k-p)//2] (p = (K-1)//2, the Keras/XLA
  'SAME' rule); zero padding of u past an edge is zero padding of x, so the identity is exact.
  For K = 4, rows: phase 0 sees [w0, w1+w2, w3] at offsets -1, 0, 1; phase 1 [w0+w1, w2+w3] at 0, 1.
  """
  p = (size - 1) // 2
  offset = [[(a + k - p) // 2 for k in range(size)] for a in (0, 1)]
  lo = -min(min(o) for o in offset)
  n_off = max(max(o) for o in offset) + lo + 1
  blocks = tuple(
    (
      (d, e, 2 * a + b),
      tuple(
        (ky, kx)
        for ky in range(size)
        if offset[a][ky] + lo == d
        for kx in range(size)
        if offset[b][kx] + lo == e
      ),
    )
    for d in range(n_off)
    for e in range(n_off)
    for a in (0, 1)
    for b in (0, 1)
  )
  return blocks, n_off, lo


def _sum_blocks(parts: list[jax.Array], like: jax.Array) -> jax.Array:
  return sum(parts[1:], parts[0]) if parts else jnp.zeros_like(like)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def phase_kernel(w: jax.Array, blocks: Blocks, n_off: tuple[int, int]) -> jax.Array:
  """HWIO taps → (Dh, Dw, Cin, 4·Cout) phase kernel; block (d, e, phase) is the sum of its listed taps.

  `blocks` lists ((d, e, phase), ((ky, kx), ...)); unlisted blocks are zero. Written as static
  slices, adds and one stack, with the same form for the gradient (custom VJP): XLA:CPU runs an
  einsum with a 0/1 matrix, autodiff's pads + adds and `.at[].set` scatters as slow scalar loops.
  """
  cin, cout = w.shape[2:]
  taps = dict(blocks)
  rows = [
    jnp.stack(
      [_sum_blocks([w[ky, kx] for ky, kx in taps.get((d, e, p), ())], w[0, 0]) for p in range(4)],
      axis=1,
    )  # (Cin, 4, Cout): already the output layout
    for d in range(n_off[0])
    for e in range(n_off[1])
  ]
  return jnp.stack(rows).reshape(*n_off, cin, 4 * cout)


def _phase_kernel_fwd(w, blocks, n_off):
  return phase_kernel(w, blocks, n_off), w.shape[:2]


def _phase_kernel_bwd(blocks, n_off, kernel_hw, g):
  cin, cout = g.shape[2], g.shape[3] // 4
  g = g.reshape(*n_off, cin, 4, cout)
  grads = {(ky, kx): [] for ky in range(kernel_hw[0]) for kx in range(kernel_hw[1])}
  for (d, e, p), taps in blocks:
    for tap in taps:
      grads[tap].append(g[d, e, :, p])
  dw = [_sum_blocks(parts, g[0, 0, :, 0]) for parts in grads.values()]
  return (jnp.stack(dw).reshape(*kernel_hw, cin, cout),)


phase_kernel.defvjp(_phase_kernel_fwd, _phase_kernel_bwd)


def upsample_conv(x: jax.Array, kernel: jax.Array, conv: ConvFn) -> jax.Array:
  """A stride-1 'SAME' conv (HWIO `kernel`, K×K) of `upsample_nearest2x(x)`, computed on `x`.

  Each output phase of the upsampled conv is a conv of x whose taps are sums of the original taps
  (4×4 → 3×3 offsets); all four phases run as one 3×3 conv with 4·Cout channels: 36/64 of the
  products and no 4× upsampled tensor. The tap sums are taken in the kernel's precision.
  """
  blocks, n_off, lo = _upsample_blocks(kernel.shape[0])
  kernel4 = phase_kernel(kernel, blocks, (n_off, n_off)).astype(x.dtype)
  return _phase_conv(x, kernel4, ((lo, n_off - 1 - lo),) * 2, conv)


def upsample_conv_reflect(x: jax.Array, kernel: jax.Array, conv: ConvFn) -> jax.Array:
  """A 3×3 VALID conv of `reflect_pad(upsample_nearest2x(x), 1)` (pytorch/examples'
  `UpsampleConvLayer`, the Johnson net's ups), computed on `x`: 4/9 of the products.

  Reflecting the ×2 image by one pixel repeats the low-res edge, so the padded upsampled image is
  the upsampled edge-padded `x`. Output row 2m+a then reads low-res rows (m-1, m, m) for a = 0
  (taps k0 | k1+k2) and (m, m, m+1) for a = 1 (k0+k1 | k2): each phase is a 2×2 conv of the
  edge-padded x with summed taps, the four interleaved by a reshape.
  """
  n, h, w, _ = x.shape
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='edge')
  k = kernel.astype(jnp.float32)
  rows = (jnp.stack([k[0], k[1] + k[2]]), jnp.stack([k[0] + k[1], k[2]]))  # per a: (2, 3, I, O)
  phases = []
  for a in (0, 1):
    r = rows[a]
    cols = (jnp.stack([r[:, 0], r[:, 1] + r[:, 2]], 1), jnp.stack([r[:, 0] + r[:, 1], r[:, 2]], 1))
    phases.append(
      jnp.stack(
        [
          conv(xp[:, a : a + h + 1, b : b + w + 1], cols[b].astype(x.dtype), ((0, 0), (0, 0)))
          for b in (0, 1)
        ],
        axis=3,
      )
    )  # (N, H, W, 2, C)
  y = jnp.stack(phases, axis=2)  # (N, H, 2, W, 2, C)
  return y.reshape(n, 2 * h, 2 * w, y.shape[-1])
