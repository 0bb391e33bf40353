"""A 2-D conv tuned for XLA:CPU (YNNPACK): aligned input sides and GEMM-shaped gradients.

Why: XLA:CPU runs a conv several times slower when an input side is not a multiple of 4 (`_conv`
zero-extends the input and slices the output: values unchanged); its kernel gradient is 2-3× slower
than the same FLOPs as K·K GEMMs (`kernel_grad`); and it runs the input gradient of strided or
even-kernel convs outside YNNPACK (`input_grad`). Numerics are the same sums in another order
(float32 accumulation), checked in tests/kernels/test_fast_conv.py. `kernels.dispatch` picks it
('cpu_fast', 'cpu_winograd'); measurements are in docs/performance.md.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Padding = str | Sequence[tuple[int, int]]
_DN = ('NHWC', 'HWIO', 'NHWC')
ALIGN = 4
# Below this many output channels the shifted GEMMs are skinny (N < 16) and XLA's own kernel
# gradient is faster from batch 2 on; not at batch 1, where XLA's runs outside YNNPACK.
MIN_GEMM_COUT = 16


def explicit_pads(
  x_shape: Sequence[int], w_shape: Sequence[int], strides: tuple[int, int], padding: Padding
) -> tuple[tuple[int, int], ...]:
  """'SAME'/'VALID' or pairs -> explicit ((lo, hi), (lo, hi)) ints, by XLA's rule (= Keras 'same')."""
  if isinstance(padding, str):
    return tuple(lax.padtype_to_pads(x_shape[1:3], w_shape[:2], strides, padding))
  return tuple((int(lo), int(hi)) for lo, hi in padding)


def _out_sides(x_shape, w_shape, strides, pads) -> tuple[int, int]:
  """(Ho, Wo) of a conv with explicit pads."""
  return tuple((x_shape[1 + a] + sum(pads[a]) - w_shape[a]) // strides[a] + 1 for a in range(2))


def _conv(
  x: jax.Array, w: jax.Array, strides: tuple[int, int], pads: tuple[tuple[int, int], ...]
) -> jax.Array:
  """`lax` conv with the input's spatial sides zero-extended at the end to a multiple of `ALIGN`.

  XLA:CPU's YNNPACK conv is 3-30× slower when an input side is not a multiple of 4. Extra zeros
  past the end only add output rows past the end, which are sliced off: values are unchanged.
  """
  n, h, w_, c = x.shape
  ho, wo = _out_sides(x.shape, w.shape, strides, pads)
  eh, ew = -h % ALIGN, -w_ % ALIGN
  if eh or ew:
    x = jnp.pad(x, ((0, 0), (0, eh), (0, ew), (0, 0)))
  y = lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_DN)
  return y[:, :ho, :wo] if (eh or ew) else y


# A large kernel with this few output channels (the Johnson net's 9×9 32→3 head) runs as one GEMM
# to every tap's outputs plus shifted sums: XLA:CPU's own conv runs such a head far below its GEMM
# speed (docs/performance.md, "Fast-style net on CPU"). Not applied to narrower kernels.
NARROW_COUT, NARROW_MIN_TAPS = 4, 64


def _is_narrow(w: jax.Array, strides: tuple[int, int]) -> bool:
  return (
    strides == (1, 1) and w.shape[3] <= NARROW_COUT and w.shape[0] * w.shape[1] >= NARROW_MIN_TAPS
  )


def _conv_narrow(x: jax.Array, w: jax.Array, pads: tuple[tuple[int, int], ...]) -> jax.Array:
  """Stride-1 conv with few outputs, space-to-depth (a 5×5 kernel for a 9×9: 12 outputs) around
  `_gemm_shift_conv`: 4× fewer shifted slices and a 4×-smaller tap tensor."""
  return _space_to_depth_conv(x, w, pads, _gemm_shift_conv)


def _gemm_shift_conv(x: jax.Array, w: jax.Array, pads: tuple[tuple[int, int], ...]) -> jax.Array:
  """z = x · W[all taps] (one GEMM), y = Σ_taps shifted z slices: few outputs, large kernels."""
  kh, kw, _, cout = w.shape
  x = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (*pads[0], 0), (*pads[1], 0), (0, 0, 0)))
  n, h, w_, _ = x.shape
  ho, wo = h - kh + 1, w_ - kw + 1
  z = jnp.einsum('nhwc,ijcd->nhwijd', x, w, preferred_element_type=jnp.float32)
  z = z.reshape(n, h, w_, kh * kw * cout)
  taps = [
    z[:, i : i + ho, j : j + wo, (i * kw + j) * cout : (i * kw + j + 1) * cout]
    for i in range(kh)
    for j in range(kw)
  ]
  return sum(taps[1:], taps[0]).astype(x.dtype)


# A large kernel on a few input channels (the Johnson net's 9×9 3→32 stem): space-to-depth makes
# it a 5×5 conv on 4·Cin channels with the four output phases as 4·Cout channels; 25% more
# products, but YNNPACK-friendly shapes.
S2D_MAX_CIN = 4


def _is_thin_input(w: jax.Array, strides: tuple[int, int]) -> bool:
  return (
    strides == (1, 1) and w.shape[2] <= S2D_MAX_CIN and w.shape[0] * w.shape[1] >= NARROW_MIN_TAPS
  )


def _s2d_kernel_index(kh: int, kw: int) -> tuple[np.ndarray, np.ndarray]:
  """Tap indices (into w padded with one zero tap at the end) of the space-to-depth kernel.

  Output 2m+a reads input 2(m+d)+e with tap k = 2d + e − a; out-of-range taps read the zero tap.
  """

  def axis(k):
    idx = np.full((k // 2 + 1, 2, 2), k, np.int32)  # (d, e, a)
    for d in range(k // 2 + 1):
      for e in (0, 1):
        for a in (0, 1):
          tap = 2 * d + e - a
          if 0 <= tap < k:
            idx[d, e, a] = tap
    return idx

  return axis(kh), axis(kw)


def _conv_thin_input(x: jax.Array, w: jax.Array, pads: tuple[tuple[int, int], ...]) -> jax.Array:
  """Stride-1 conv of a few-channel input as a space-to-depth conv (see S2D_MAX_CIN)."""
  return _space_to_depth_conv(x, w, pads, lambda xs, ks, p: _conv(xs, ks, (1, 1), p))


def _space_to_depth_conv(
  x: jax.Array, w: jax.Array, pads: tuple[tuple[int, int], ...], inner: object
) -> jax.Array:
  """A stride-1 K×K conv as `inner`, a ⌈K/2⌉×⌈K/2⌉ conv of the 2×2 space-to-depth input with the
  four output phases as channels, then depth-to-space."""
  kh, kw, cin, cout = w.shape
  x = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (*pads[0], 0), (*pads[1], 0), (0, 0, 0)))
  n, h, w_, _ = x.shape
  ho, wo = h - kh + 1, w_ - kw + 1
  dh, dw = kh // 2 + 1, kw // 2 + 1
  mh, mw = -(-ho // 2), -(-wo // 2)
  sh, sw = mh + dh - 1, mw + dw - 1
  x = jnp.pad(x, ((0, 0), (0, 2 * sh - h), (0, 2 * sw - w_), (0, 0)))
  xs = x.reshape(n, sh, 2, sw, 2, cin).transpose(0, 1, 3, 2, 4, 5).reshape(n, sh, sw, 4 * cin)
  ih, iw = _s2d_kernel_index(kh, kw)
  wz = jnp.pad(w, ((0, 1), (0, 1), (0, 0), (0, 0)))  # the zero tap at index k
  # ks[d_h, d_w, e_h, e_w, c, a, b, o] = wz[ih[d_h, e_h, a], iw[d_w, e_w, b], c, o]
  ks = wz[
    ih[:, None, :, None, :, None], iw[None, :, None, :, None, :]
  ]  # (dh, dw, 2, 2, 2, 2, I, O)
  ks = ks.transpose(0, 1, 2, 3, 6, 4, 5, 7).reshape(dh, dw, 4 * cin, 4 * cout).astype(x.dtype)
  y = inner(xs, ks, ((0, 0), (0, 0)))  # (n, mh, mw, 4·cout): phases (a, b, o)
  y = y.reshape(n, mh, mw, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * mh, 2 * mw, cout)
  return y[:, :ho, :wo]


def _forward(
  x: jax.Array, w: jax.Array, strides: tuple[int, int], pads: tuple[tuple[int, int], ...]
) -> jax.Array:
  if _is_narrow(w, strides):
    return _conv_narrow(x, w, pads)
  if _is_thin_input(w, strides):
    return _conv_thin_input(x, w, pads)
  return _conv(x, w, strides, pads)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_fast(
  x: jax.Array, w: jax.Array, strides: tuple[int, int], pads: tuple[tuple[int, int], ...]
) -> jax.Array:
  return _forward(x, w, strides, pads)


def _fwd(x, w, strides, pads):
  return _forward(x, w, strides, pads), (x, w)


def kernel_grad(
  x: jax.Array,
  dy: jax.Array,
  kernel_hw: tuple[int, int],
  strides: tuple[int, int],
  pads: tuple[tuple[int, int], ...],
) -> jax.Array:
  """dL/dW[i, j] = Σ_{n,o,p} x_pad[n, s·o+i, s·p+j, :]ᵀ dy[n, o, p, :]: one GEMM per tap."""
  kh, kw = kernel_hw
  sh, sw = strides
  n, ho, wo, cout = dy.shape
  cin = x.shape[-1]
  if strides == (1, 1) and cout < cin:
    return _kernel_grad_shift_dy(x, dy, kernel_hw, pads)
  # Negative pads (allowed by lax) crop; lax.pad handles both signs.
  xp = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (*pads[0], 0), (*pads[1], 0), (0, 0, 0)))
  d2 = dy.reshape(n * ho * wo, cout)
  taps = []
  for i in range(kh):
    for j in range(kw):
      xs = lax.slice(
        xp, (0, i, j, 0), (n, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, cin), (1, sh, sw, 1)
      )
      taps.append(
        lax.dot_general(
          xs.reshape(n * ho * wo, cin),
          d2,
          (((0,), (0,)), ((), ())),
          preferred_element_type=jnp.float32,
        )
      )
  return jnp.stack(taps).reshape(kh, kw, cin, cout)


def _kernel_grad_shift_dy(
  x: jax.Array, dy: jax.Array, kernel_hw: tuple[int, int], pads: tuple[tuple[int, int], ...]
) -> jax.Array:
  """Stride 1: dL/dW[i, j] = Σ_{u,v} x[u, v]ᵀ dy_ext[u - i + lo_h, v - j + lo_w] (dy_ext: dy zero-extended).

  The same sums as `kernel_grad` with the shifted copies taken of the narrower `dy` instead of `x`:
  XLA:CPU's slice copies dominated the gradient of narrow-output layers.
  """
  (kh, kw), ((lo_h, _), (lo_w, _)) = kernel_hw, pads
  n, h, w, cin = x.shape
  _, ho, wo, cout = dy.shape
  dyp = lax.pad(
    dy,
    jnp.zeros((), dy.dtype),
    ((0, 0, 0), (kh - 1 - lo_h, lo_h + h - ho, 0), (kw - 1 - lo_w, lo_w + w - wo, 0), (0, 0, 0)),
  )
  x2 = x.reshape(n * h * w, cin)
  taps = []
  for i in range(kh):
    for j in range(kw):
      ds = lax.slice(dyp, (0, kh - 1 - i, kw - 1 - j, 0), (n, kh - 1 - i + h, kw - 1 - j + w, cout))
      taps.append(
        lax.dot_general(
          x2,
          ds.reshape(n * h * w, cout),
          (((0,), (0,)), ((), ())),
          preferred_element_type=jnp.float32,
        )
      )
  return jnp.stack(taps).reshape(kh, kw, cin, cout)


def _phase_taps(size: int, stride: int, lo: int) -> list[tuple[int, list[int]]]:
  """Per input phase a < stride: (first dy offset d0, kernel taps k for d0, d0+1, ...).

  Input index s·m + a meets output o with tap k when s·o + k − lo = s·m + a, i.e. o = m + d with
  d = (a + lo − k) / s; the taps of one phase are k ≡ a + lo (mod s), at consecutive offsets d.
  """
  out = []
  for a in range(stride):
    taps = sorted((k for k in range(size) if (a + lo - k) % stride == 0), reverse=True)
    out.append(((a + lo - taps[0]) // stride if taps else 0, taps))
  return out


def _reversed(taps: list[int], stride: int) -> slice:
  """The descending taps k0, k0 - s, ... as a slice (a reverse + strided slice, not a gather)."""
  stop = taps[-1] - 1
  return slice(taps[0], stop if stop >= 0 else None, -stride)


def input_grad(
  dy: jax.Array,
  w: jax.Array,
  x_hw: tuple[int, int],
  strides: tuple[int, int],
  pads: tuple[tuple[int, int], ...],
) -> jax.Array:
  """dL/dx of a strided, padded conv as stride-1 VALID convs of `dy` with HWIO (`01io`) kernels.

  XLA's own transpose is an input-dilated conv for strides > 1 and an asymmetric-pad conv for even
  kernels; XLA:CPU runs neither in YNNPACK and none inside `while` loops. Here each input phase (a, b) is one dense conv over the taps that reach
  it (stride s: s² convs of ⌈K/s⌉² taps, no multiplications by inserted zeros), interleaved after.
  """
  (sh, sw), (h, w_) = strides, x_hw
  n, ho, wo, cout = dy.shape
  mh, mw = -(-h // sh), -(-w_ // sw)
  phases = []
  for d0h, kh in _phase_taps(w.shape[0], sh, pads[0][0]):
    row = []
    for d0w, kw in _phase_taps(w.shape[1], sw, pads[1][0]):
      if not kh or not kw:
        row.append(jnp.zeros((n, mh, mw, w.shape[2]), dy.dtype))
        continue
      sub = jnp.swapaxes(w[_reversed(kh, sh)][:, _reversed(kw, sw)], 2, 3)  # (Th, Tw, Cout, Cin)
      th, tw = len(kh), len(kw)
      dyp = lax.pad(
        dy,
        jnp.zeros((), dy.dtype),
        (
          (0, 0, 0),
          (-d0h, mh + th - 1 + d0h - ho, 0),
          (-d0w, mw + tw - 1 + d0w - wo, 0),
          (0, 0, 0),
        ),
      )
      row.append(_conv(dyp, sub, (1, 1), ((0, 0), (0, 0))))
    phases.append(jnp.stack(row, axis=3))  # (N, Mh, Mw, sw, Cin)
  dx = jnp.stack(phases, axis=2)  # (N, Mh, sh, Mw, sw, Cin)
  return dx.reshape(n, mh * sh, mw * sw, w.shape[2])[:, :h, :w_]


def _bwd(strides, pads, res, dy):
  x, w = res
  dx = input_grad(dy, w, x.shape[1:3], strides, pads)
  if w.shape[-1] >= MIN_GEMM_COUT or x.shape[0] == 1:
    dw = kernel_grad(x, dy, w.shape[:2], strides, pads).astype(w.dtype)
  else:
    _, kernel_vjp = jax.vjp(lambda w_: _conv(x, w_, strides, pads), w)
    (dw,) = kernel_vjp(dy)
  return dx, dw


_conv_fast.defvjp(_fwd, _bwd)


# Weight-bound convs: at most IM2COL_MAX_PIXELS output pixels (N·Ho·Wo) and at least
# IM2COL_MIN_WEIGHTS kernel elements (pix2pix's innermost U-Net levels, 4×4 512→512 at 8×8 down to
# 1×1 out at batch 1). Streaming the 16 MB kernel is the cost there, and XLA's conv gradients stream
# it several times: explicit patches times the kernel as one GEMM, with GEMMs for both gradients,
# ran 2-13× faster fwd+bwd (8×8 out 10.8 vs 21.5 ms, 1×1 out 1.5 vs 19.4 ms). Smaller kernels (the
# CycleGAN nets) keep their path. Measurements: docs/performance.md, "pix2pix's U-Net".
IM2COL_MAX_PIXELS = 64
IM2COL_MIN_WEIGHTS = 2**22


def _im2col_conv(
  x: jax.Array, w: jax.Array, strides: tuple[int, int], pads: tuple[tuple[int, int], ...]
) -> jax.Array:
  """The conv as (N·Ho·Wo, K·K·Cin) patches times the (K·K·Cin, Cout) kernel (autodiff: GEMMs)."""
  kh, kw, cin, cout = w.shape
  ho, wo = _out_sides(x.shape, w.shape, strides, pads)
  x = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (*pads[0], 0), (*pads[1], 0), (0, 0, 0)))
  sh, sw = strides
  cols = [
    x[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
    for i in range(kh)
    for j in range(kw)
  ]
  patches = jnp.stack(cols, axis=3).reshape(-1, kh * kw * cin)
  return (patches @ w.reshape(kh * kw * cin, cout)).reshape(x.shape[0], ho, wo, cout)


def conv2d(
  x: jax.Array, w: jax.Array, strides: Sequence[int] = (1, 1), padding: Padding = 'VALID'
) -> jax.Array:
  """NHWC × HWIO conv (no dilation, no groups) with the shifted-GEMM kernel gradient, or as one
  patch GEMM when it is weight-bound (`IM2COL_MAX_PIXELS`, `IM2COL_MIN_WEIGHTS`)."""
  strides = (int(strides[0]), int(strides[1]))
  pads = explicit_pads(x.shape, w.shape, strides, padding)
  ho, wo = _out_sides(x.shape, w.shape, strides, pads)
  if x.shape[0] * ho * wo <= IM2COL_MAX_PIXELS and w.size >= IM2COL_MIN_WEIGHTS:
    return _im2col_conv(x, w, strides, pads)
  return _conv_fast(x, w, strides, pads)
