"""Convs of frozen inference nets (the FID Inception): float32 HIGHEST, with XLA:CPU fast paths.

FID features must be reproducible, so every product runs at HIGHEST precision (no TF32/bf16
passes on accelerators). On XLA:CPU two shapes of conv are much slower than their arithmetic
(docs/performance.md, "FID Inception on CPU"):
- a 1x1 stride-1 conv: `pointwise` runs it as the (N*H*W, Cin) x (Cin, Cout) GEMM it is;
- a conv whose padded input side is not a multiple of 4 (YNNPACK's fast path): `conv` pads
  explicitly and zero-extends to a multiple of 4, then slices the extra outputs off, where that
  pays (big inputs: the stem and Mixed_6a; `_align_pays` leaves the small maps alone).
Both keep the same sums in another order (~1e-7 relative, tests/models/test_inception.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxstyle.kernels.fast_conv import ALIGN

HIGHEST = jax.lax.Precision.HIGHEST
_DN = ('NHWC', 'HWIO', 'NHWC')


def pointwise(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """A 1x1 stride-1 conv (kernel (1, 1, Cin, Cout)) as one GEMM."""
  return jnp.einsum('nhwc,cd->nhwd', x, kernel[0, 0], precision=HIGHEST)


def _align_pays(
  shape: tuple[int, ...], kernel_hw: tuple[int, int], padding: tuple[int, int]
) -> bool:
  """Whether the aligned form is faster here: XLA:CPU, big unaligned inputs (measured rule)."""
  side = min(shape[1:3])
  return (
    jax.default_backend() == 'cpu'
    and kernel_hw != (1, 1)
    and (side >= 64 or (side >= 32 and padding == (0, 0)))
    and any((d + 2 * p) % ALIGN for d, p in zip(shape[1:3], padding))
  )


def conv(x: jax.Array, kernel: jax.Array, stride: int, padding: tuple[int, int]) -> jax.Array:
  """torch `Conv2d(stride, padding=(ph, pw), bias=False)` on NHWC with an HWIO kernel."""
  kernel_hw = tuple(kernel.shape[:2])
  if kernel_hw == (1, 1) and stride == 1 and padding == (0, 0):
    return pointwise(x, kernel)
  (ph, pw), (kh, kw) = padding, kernel_hw
  if not _align_pays(x.shape, kernel_hw, padding):
    return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), ((ph, ph), (pw, pw)), dimension_numbers=_DN, precision=HIGHEST
    )
  h, w = x.shape[1] + 2 * ph, x.shape[2] + 2 * pw
  x = jnp.pad(x, ((0, 0), (ph, ph + (-h % ALIGN)), (pw, pw + (-w % ALIGN)), (0, 0)))
  y = jax.lax.conv_general_dilated(
    x, kernel, (stride, stride), 'VALID', dimension_numbers=_DN, precision=HIGHEST
  )
  return y[:, : (h - kh) // stride + 1, : (w - kw) // stride + 1]
