"""Up-sampling convolutions computed on the low-resolution input (sub-pixel form).

A stride-2 transposed conv and a nearest ×2 upsample followed by a conv both produce each output
phase (row parity a, column parity b) from a small stride-1 conv of the *input*. All four phases
run as one conv with 4·Cout channels, interleaved by a depth-to-space reshape: no zero-dilated or
4× upsampled tensor, ordinary conv gradients, fewer products. The modules keep the variables (and
init) of the Flax layers they replace, so ports, checkpoints and parity tests are unchanged.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.models import fast_conv


def _phase_conv(x: jax.Array, kernel4: jax.Array, pads: tuple[tuple[int, int], ...]) -> jax.Array:
  """Stride-1 conv with 4·Cout channels, then depth-to-space: (N, H, W, 4·C) → (N, 2H, 2W, C)."""
  n, h, w, c4 = x.shape[0], x.shape[1], x.shape[2], kernel4.shape[-1]
  if fast_conv.enabled():
    y = fast_conv.conv2d(x, kernel4, (1, 1), pads)
  else:
    y = jax.lax.conv_general_dilated(x, kernel4, (1, 1), pads,
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  cout = c4 // 4
  return y.reshape(n, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, cout)


def _phase_taps(lo: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
  """Per output phase a ∈ {0, 1}: the (kernel tap k, input offset d) pairs with y[2m+a] += x[m+d]·w_f[k].

  A stride-2 transposed conv with leading pad `lo` is a conv of the zero-dilated input, so output
  2m+a only meets the taps k with a+k−lo even, at input m + (a+k−lo)/2.
  """
  return tuple([(k, (a + k - lo) // 2) for k in range(3) if (a + k - lo) % 2 == 0]
               for a in (0, 1))


class SubpixelConvTranspose(nn.Module):
  """`nn.ConvTranspose((3, 3), strides 2, transpose_kernel=True)` without the zero-dilated input.

  XLA lowers the kernel gradient of an input-dilated conv to a slow generic kernel (cuDNN on an
  H200: the two ResNet-9 up-convs took 108 of 185 ms of a batch-8 train step) and computes 4× the
  useful products. Here the four output phases are one stride-1 2×2 conv with 4·Cout channels,
  interleaved by a reshape (depth-to-space): ordinary conv gradients, 16/36 of the products.
  Variables (`kernel` (3, 3, Cout, Cin), `bias`) and their init match `nn.ConvTranspose`.
  """
  features: int
  padding: tuple[tuple[int, int], tuple[int, int]]
  kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal()
  bias_init: Callable[..., jax.Array] = nn.initializers.zeros
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n, h, w, cin = x.shape
    cout = self.features
    kernel = self.param('kernel', self.kernel_init, (3, 3, cout, cin), self.param_dtype)
    bias = self.param('bias', self.bias_init, (cout,), self.param_dtype)
    taps_h, taps_w = (_phase_taps(lo) for lo, _ in self.padding)
    offsets = [[d for phase in taps for _, d in phase] + [0] for taps in (taps_h, taps_w)]
    lo_h, lo_w = (-min(o) for o in offsets)
    size_h, size_w = (max(o) - min(o) + 1 for o in offsets)
    # w_f[ky, kx, ci, co] = kernel[2-ky, 2-kx, co, ci] (flip + swap, as transpose_kernel=True does)
    flipped = jnp.swapaxes(kernel[::-1, ::-1], 2, 3).astype(self.dtype)
    sub = jnp.zeros((size_h, size_w, cin, 2, 2, cout), self.dtype)
    for a, phase_h in enumerate(taps_h):
      for b, phase_w in enumerate(taps_w):
        for ky, dy in phase_h:
          for kx, dx in phase_w:
            sub = sub.at[dy + lo_h, dx + lo_w, :, a, b, :].set(flipped[ky, kx])
    pads = ((lo_h, size_h - 1 - lo_h), (lo_w, size_w - 1 - lo_w))
    y = _phase_conv(x.astype(self.dtype), sub.reshape(size_h, size_w, cin, 4 * cout), pads)
    return y + bias.astype(self.dtype)


def _upsample_blocks(size: int) -> tuple[dict[tuple[int, int, int], list[tuple[int, int]]], int, int]:
  """For a 'SAME' K×K conv after nearest ×2: {(d, e, phase): [(k, l) taps summed]}, D offsets, lo.

  Output 2m+a reads the upsampled u[2m+a+k-p] = x[m + (a+k-p)//2] (p = (K-1)//2, the Keras/XLA
  'SAME' rule); zero padding of u past an edge is zero padding of x, so the identity is exact.
  For K = 4, rows: phase 0 sees [w0, w1+w2, w3] at offsets -1, 0, 1; phase 1 [w0+w1, w2+w3] at 0, 1.
  """
  p = (size - 1) // 2
  offset = [[(a + k - p) // 2 for k in range(size)] for a in (0, 1)]
  lo = -min(min(o) for o in offset)
  n_off = max(max(o) for o in offset) + lo + 1
  blocks = {}
  for d in range(n_off):
    for e in range(n_off):
      for a in (0, 1):
        for b in (0, 1):
          blocks[d, e, 2 * a + b] = [(ky, kx) for ky in range(size) if offset[a][ky] + lo == d
                                     for kx in range(size) if offset[b][kx] + lo == e]
  return blocks, n_off, lo


def _sum_blocks(parts: list[jax.Array], like: jax.Array) -> jax.Array:
  return sum(parts[1:], parts[0]) if parts else jnp.zeros_like(like)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def upsample_kernel(w: jax.Array, size: int) -> jax.Array:
  """HWIO K×K kernel → (D, D, Cin, 4·Cout) phase kernel: each block a sum of (Cin, Cout) taps.

  Written as static slices, adds and one stack, with the same form for the gradient (custom VJP):
  XLA:CPU's autodiff of it (pads + adds, slices of the stack) and an einsum with a 0/1 matrix both
  ran as slow scalar loops (~190 of ~1000 thread-ms of a book U-Net step).
  """
  blocks, n_off, _ = _upsample_blocks(size)
  cin, cout = w.shape[2:]
  rows = [jnp.stack([_sum_blocks([w[ky, kx] for ky, kx in blocks[d, e, p]], w[0, 0])
                      for p in range(4)], axis=1)  # (Cin, 4, Cout): already the output layout
          for d in range(n_off) for e in range(n_off)]
  return jnp.stack(rows).reshape(n_off, n_off, cin, 4 * cout)


def _upsample_kernel_fwd(w, size):
  return upsample_kernel(w, size), None


def _upsample_kernel_bwd(size, _, g):
  blocks, n_off, _ = _upsample_blocks(size)
  cin, cout = g.shape[2], g.shape[3] // 4
  g = g.reshape(n_off, n_off, cin, 4, cout)
  grads = {(ky, kx): [] for ky in range(size) for kx in range(size)}
  for (d, e, p), taps in blocks.items():
    for tap in taps:
      grads[tap].append(g[d, e, :, p])
  dw = [_sum_blocks(grads[ky, kx], g[0, 0, :, 0]) for ky in range(size) for kx in range(size)]
  return (jnp.stack(dw).reshape(size, size, cin, cout),)


upsample_kernel.defvjp(_upsample_kernel_fwd, _upsample_kernel_bwd)


class UpsampleConv(nn.Module):
  """Nearest ×2 upsampling then a stride-1 'SAME' conv, computed on the low-resolution input.

  Each output phase of the upsampled conv is a conv of x whose taps are sums of the original taps
  (4×4 → 3×3 offsets); all four phases run as one 3×3 conv with 4·Cout channels: 36/64 of the
  products and no 4× upsampled tensor (book U-Net CPU train step ratio to the peer 1.33 → 0.75).
  Variables (`kernel` (K, K, Cin, Cout) HWIO, `bias`) are those of the `nn.Conv` it replaces.
  """
  features: int
  kernel_size: int
  kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal()
  bias_init: Callable[..., jax.Array] = nn.initializers.zeros
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, cin = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', self.kernel_init, (k, k, cin, self.features), self.param_dtype)
    bias = self.param('bias', self.bias_init, (self.features,), self.param_dtype)
    _, n_off, lo = _upsample_blocks(k)
    kernel4 = upsample_kernel(kernel, k).astype(self.dtype)  # tap sums in the params' precision
    y = _phase_conv(x.astype(self.dtype), kernel4, ((lo, n_off - 1 - lo),) * 2)
    return y + bias.astype(self.dtype)
