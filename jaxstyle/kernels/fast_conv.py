"""A 2-D conv tuned for XLA CPU: aligned input sides and a shifted-GEMM kernel gradient.

Why (jaxlib 0.10.2, whose CPU convs go to YNNPACK by default; measured on the 2-core dev machine):
1. A conv whose input side is not a multiple of 4 runs 3-30x slower (ResNet block conv on a
   reflect-padded 66² input 1.2 s vs 0.3 s, the 7x7 head on 262² 3.5 s vs 0.1 s): `_conv` zero-extends
   the input at the end and slices the output, which leaves every value unchanged.
2. XLA's kernel gradient (a conv with batch and feature swapped) runs 2-3x slower than the same FLOPs
   as K·K GEMMs `x_shiftedᵀ · dy` (3x3 64→64 at 256²: 2.2-3.5 s vs 0.7-1.1 s, under load), except
   for skinny outputs (Cout < MIN_GEMM_COUT) where XLA's own is faster.
3. Wide 3×3 stride-1 float32 layers (ResNet blocks; `winograd.choose`) go to `winograd.conv3x3`,
   which needs 2.25-4 instead of 9 multiplies per output (ResNet-9 b1 step 34.1 → 20.1 s).
The input gradient is `input_grad`: per-phase stride-1 convs with HWIO kernels (see there). Numerics are the same sums in
another order (float32 accumulation), checked against `jax.vjp` of `lax.conv_general_dilated` and a
NumPy loop in tests/kernels/test_fast_conv.py.

`FastConv` is a drop-in for the `nn.Conv` that `layers.conv` builds: same variables (`kernel` HWIO,
`bias`), created in the same order, so initial values and the weight ports are unchanged.
It is used on the CPU backend only; `JAXSTYLE_FAST_CONV=0|1` forces it off or on for A/B timing.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxstyle.kernels import winograd

Padding = str | Sequence[tuple[int, int]]
_DN = ('NHWC', 'HWIO', 'NHWC')
ALIGN = 4
# Below this many output channels the shifted GEMMs are skinny (N < 16) and XLA's own kernel
# gradient is faster from batch 2 on (book U-Net head, 64→3 at 128², batch 4: 101 vs 328 ms), but
# not at batch 1, where XLA's runs outside YNNPACK (155 vs 72 ms; quiet 2-core machine).
MIN_GEMM_COUT = 16


def enabled() -> bool:
  """On for the CPU backend only (GPU/TPU convs are cuDNN/XLA's own); `JAXSTYLE_FAST_CONV=0|1` forces it."""
  forced = os.environ.get('JAXSTYLE_FAST_CONV')
  if forced is not None:
    return forced != '0'
  return jax.default_backend() == 'cpu'


def _pads(x_shape: Sequence[int], w_shape: Sequence[int], strides: tuple[int, int],
          padding: Padding) -> tuple[tuple[int, int], ...]:
  if isinstance(padding, str):
    return tuple(lax.padtype_to_pads(x_shape[1:3], w_shape[:2], strides, padding))
  return tuple((int(lo), int(hi)) for lo, hi in padding)


def _conv(x: jax.Array, w: jax.Array, strides: tuple[int, int],
          pads: tuple[tuple[int, int], ...]) -> jax.Array:
  """`lax` conv with the input's spatial sides zero-extended at the end to a multiple of `ALIGN`.

  XLA CPU's YNNPACK conv is 3-30× slower when an input side is not a multiple of 4 (a ResNet block
  conv on a reflect-padded 66² input: 1.2 s vs 0.3 s; the 7×7 head on 262²: 3.5 s vs 0.1 s). Extra
  zeros past the end only add output rows past the end, which are sliced off: values are unchanged.
  """
  n, h, w_, c = x.shape
  ho = (h + sum(pads[0]) - w.shape[0]) // strides[0] + 1
  wo = (w_ + sum(pads[1]) - w.shape[1]) // strides[1] + 1
  eh, ew = -h % ALIGN, -w_ % ALIGN
  if eh or ew:
    x = jnp.pad(x, ((0, 0), (0, eh), (0, ew), (0, 0)))
  y = lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_DN)
  return y[:, :ho, :wo] if (eh or ew) else y


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_fast(x: jax.Array, w: jax.Array, strides: tuple[int, int],
               pads: tuple[tuple[int, int], ...]) -> jax.Array:
  return _conv(x, w, strides, pads)


def _fwd(x, w, strides, pads):
  return _conv(x, w, strides, pads), (x, w)


def kernel_grad(x: jax.Array, dy: jax.Array, kernel_hw: tuple[int, int], strides: tuple[int, int],
                pads: tuple[tuple[int, int], ...]) -> jax.Array:
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
      xs = lax.slice(xp, (0, i, j, 0), (n, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, cin),
                     (1, sh, sw, 1))
      taps.append(lax.dot_general(xs.reshape(n * ho * wo, cin), d2, (((0,), (0,)), ((), ())),
                                  preferred_element_type=jnp.float32))
  return jnp.stack(taps).reshape(kh, kw, cin, cout)


def _kernel_grad_shift_dy(x: jax.Array, dy: jax.Array, kernel_hw: tuple[int, int],
                          pads: tuple[tuple[int, int], ...]) -> jax.Array:
  """Stride 1: dL/dW[i, j] = Σ_{u,v} x[u, v]ᵀ dy_ext[u - i + lo_h, v - j + lo_w] (dy_ext: dy zero-extended).

  The same sums as `kernel_grad` with the shifted copies taken of the narrower `dy` instead of `x`
  (book U-Net head, 64 → 12 channels at 64²: XLA:CPU's slice copies were 46 of ~70 ms of its gradient).
  """
  (kh, kw), ((lo_h, _), (lo_w, _)) = kernel_hw, pads
  n, h, w, cin = x.shape
  _, ho, wo, cout = dy.shape
  dyp = lax.pad(dy, jnp.zeros((), dy.dtype), ((0, 0, 0), (kh - 1 - lo_h, lo_h + h - ho, 0),
                                              (kw - 1 - lo_w, lo_w + w - wo, 0), (0, 0, 0)))
  x2 = x.reshape(n * h * w, cin)
  taps = []
  for i in range(kh):
    for j in range(kw):
      ds = lax.slice(dyp, (0, kh - 1 - i, kw - 1 - j, 0), (n, kh - 1 - i + h, kw - 1 - j + w, cout))
      taps.append(lax.dot_general(x2, ds.reshape(n * h * w, cout), (((0,), (0,)), ((), ())),
                                  preferred_element_type=jnp.float32))
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


def input_grad(dy: jax.Array, w: jax.Array, x_hw: tuple[int, int], strides: tuple[int, int],
               pads: tuple[tuple[int, int], ...]) -> jax.Array:
  """dL/dx of a strided, padded conv as stride-1 VALID convs of `dy` with HWIO (`01io`) kernels.

  XLA's own transpose is an input-dilated conv for strides > 1 and an asymmetric-pad conv for even
  kernels; XLA:CPU runs neither in YNNPACK (book U-Net: 825 of 2300 thread-ms of a batch-1 step) and
  none inside `while` loops. Here each input phase (a, b) is one dense conv over the taps that reach
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
      dyp = lax.pad(dy, jnp.zeros((), dy.dtype),
                    ((0, 0, 0), (-d0h, mh + th - 1 + d0h - ho, 0),
                     (-d0w, mw + tw - 1 + d0w - wo, 0), (0, 0, 0)))
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


def conv2d(x: jax.Array, w: jax.Array, strides: Sequence[int] = (1, 1),
           padding: Padding = 'VALID') -> jax.Array:
  """NHWC × HWIO conv (no dilation, no groups) with the shifted-GEMM kernel gradient."""
  strides = (int(strides[0]), int(strides[1]))
  pads = _pads(x.shape, w.shape, strides, padding)
  if (strides == (1, 1) and w.shape[:2] == (3, 3) and x.dtype == jnp.float32
      and winograd.transposable(pads)):
    variant = winograd.choose(w.shape[2], w.shape[3], x.shape[1] + sum(pads[0]) - 2,
                              x.shape[2] + sum(pads[1]) - 2)
    if variant:  # wide 3×3 layers (ResNet blocks): fewer multiplies, see winograd.py
      return winograd.conv3x3(x, w, pads, variant)
  return _conv_fast(x, w, strides, pads)


class FastConv(nn.Module):
  """`nn.Conv` subset (2-D, NHWC, biased) computed with `conv2d`; same variable names and order."""
  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: Padding = 'SAME'
  kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal()
  bias_init: Callable[..., jax.Array] = nn.initializers.zeros
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (*self.kernel_size, x.shape[-1], self.features)
    kernel = self.param('kernel', self.kernel_init, shape, self.param_dtype)
    bias = self.param('bias', self.bias_init, (self.features,), self.param_dtype)
    y = conv2d(x.astype(self.dtype), kernel.astype(self.dtype), self.strides, self.padding)
    return y + bias.astype(self.dtype)
