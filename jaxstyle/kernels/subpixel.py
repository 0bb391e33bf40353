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

from jaxstyle.kernels import fast_conv

# ((d, e, phase), ((ky, kx), ...)) for each block of a phase kernel (see `phase_kernel`)
Blocks = tuple[tuple[tuple[int, int, int], tuple[tuple[int, int], ...]], ...]


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
    cin, cout = x.shape[-1], self.features
    kernel = self.param('kernel', self.kernel_init, (3, 3, cout, cin), self.param_dtype)
    bias = self.param('bias', self.bias_init, (cout,), self.param_dtype)
    taps_h, taps_w = (_phase_taps(lo) for lo, _ in self.padding)
    offsets = [[d for phase in taps for _, d in phase] + [0] for taps in (taps_h, taps_w)]
    lo_h, lo_w = (-min(o) for o in offsets)
    size_h, size_w = (max(o) - min(o) + 1 for o in offsets)
    # w_f[ky, kx, ci, co] = kernel[2-ky, 2-kx, co, ci] (flip + swap, as transpose_kernel=True does)
    flipped = jnp.swapaxes(kernel[::-1, ::-1], 2, 3)
    blocks = tuple(((dy + lo_h, dx + lo_w, 2 * a + b), ((ky, kx),))
                   for a, phase_h in enumerate(taps_h) for b, phase_w in enumerate(taps_w)
                   for ky, dy in phase_h for kx, dx in phase_w)
    kernel4 = phase_kernel(flipped, blocks, (size_h, size_w)).astype(self.dtype)
    pads = ((lo_h, size_h - 1 - lo_h), (lo_w, size_w - 1 - lo_w))
    y = _phase_conv(x.astype(self.dtype), kernel4, pads)
    return y + bias.astype(self.dtype)


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
  blocks = tuple(((d, e, 2 * a + b), tuple((ky, kx) for ky in range(size) if offset[a][ky] + lo == d
                                              for kx in range(size) if offset[b][kx] + lo == e))
                 for d in range(n_off) for e in range(n_off) for a in (0, 1) for b in (0, 1))
  return blocks, n_off, lo


def _sum_blocks(parts: list[jax.Array], like: jax.Array) -> jax.Array:
  return sum(parts[1:], parts[0]) if parts else jnp.zeros_like(like)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def phase_kernel(w: jax.Array, blocks: Blocks, n_off: tuple[int, int]) -> jax.Array:
  """HWIO taps → (Dh, Dw, Cin, 4·Cout) phase kernel; block (d, e, phase) is the sum of its listed taps.

  `blocks` lists ((d, e, phase), ((ky, kx), ...)); unlisted blocks are zero. Written as static
  slices, adds and one stack, with the same form for the gradient (custom VJP): XLA:CPU ran an einsum
  with a 0/1 matrix, autodiff's pads + adds and `.at[].set` scatters as slow scalar loops (~190 of
  ~1000 thread-ms of a book U-Net step).
  """
  cin, cout = w.shape[2:]
  taps = dict(blocks)
  rows = [jnp.stack([_sum_blocks([w[ky, kx] for ky, kx in taps.get((d, e, p), ())], w[0, 0])
                     for p in range(4)], axis=1)  # (Cin, 4, Cout): already the output layout
          for d in range(n_off[0]) for e in range(n_off[1])]
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
    blocks, n_off, lo = _upsample_blocks(k)
    kernel4 = phase_kernel(kernel, blocks, (n_off, n_off)).astype(self.dtype)  # sums in params' precision
    y = _phase_conv(x.astype(self.dtype), kernel4, ((lo, n_off - 1 - lo),) * 2)
    return y + bias.astype(self.dtype)
