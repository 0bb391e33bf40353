"""A 2-D conv tuned for XLA CPU: aligned input sides and a shifted-GEMM kernel gradient.

Why (jaxlib 0.10.2, whose CPU convs go to YNNPACK by default; measured on the 2-core dev machine):
1. A conv whose input side is not a multiple of 4 runs 3-30x slower (ResNet block conv on a
   reflect-padded 66² input 1.2 s vs 0.3 s, the 7x7 head on 262² 3.5 s vs 0.1 s): `_conv` zero-extends
   the input at the end and slices the output, which leaves every value unchanged.
2. XLA's kernel gradient (a conv with batch and feature swapped) runs 2-3x slower than the same FLOPs
   as K·K GEMMs `x_shiftedᵀ · dy` (3x3 64→64 at 256²: 2.2-3.5 s vs 0.7-1.1 s, under load), except
   for skinny outputs (Cout < MIN_GEMM_COUT) where XLA's own is faster.
The input gradient stays XLA's (the transpose of the aligned conv). Numerics are the same sums in
another order (float32 accumulation), checked against `jax.vjp` of `lax.conv_general_dilated` and a
NumPy loop in tests/test_fast_conv.py.

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

Padding = str | Sequence[tuple[int, int]]
_DN = ('NHWC', 'HWIO', 'NHWC')
ALIGN = 4
# Below this many output channels the shifted GEMMs are skinny (N < 16) and XLA's own kernel
# gradient is faster (book U-Net head, 64→3 at 128²: 0.75 s vs 1.96 s, batch 4).
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


def _bwd(strides, pads, res, dy):
  x, w = res
  _, input_vjp = jax.vjp(lambda x_: _conv(x_, w, strides, pads), x)
  (dx,) = input_vjp(dy)
  if w.shape[-1] >= MIN_GEMM_COUT:
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
  return _conv_fast(x, w, strides, _pads(x.shape, w.shape, strides, padding))


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
