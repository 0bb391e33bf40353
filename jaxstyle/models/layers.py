"""Shared building blocks for the CycleGAN networks (spec cyclegan.md §3, §4).

Everything here is chosen for exact parity with PyTorch (junyanz) or Keras (GDL book), not for
Flax defaults: Flax's own `InstanceNorm` uses eps 1e-6 with scale/bias on, which is neither.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.models import fast_conv

Padding = str | Sequence[tuple[int, int]]


class InstanceNorm(nn.Module):
  """Per-sample, per-channel normalisation over H and W (axes 1, 2) of an NHWC tensor.

  `eps_mode='var'` is PyTorch `InstanceNorm2d`: (x-μ)/√(σ²+eps). `eps_mode='std'` is keras-contrib
  `InstanceNormalization` (the book): (x-μ)/(σ+eps). σ² is the biased variance. Statistics are
  always computed in float32 (bf16 sums over 64² pixels lose too much), the result is cast back to
  the input dtype. With `affine=False` (the reference) the layer has no variables at all.
  """
  epsilon: float = 1e-5
  eps_mode: str = 'var'
  affine: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.eps_mode not in ('var', 'std'):
      raise ValueError(f"eps_mode must be 'var' or 'std', got {self.eps_mode!r}")
    x32 = x.astype(jnp.float32)
    mean = jnp.mean(x32, axis=(1, 2), keepdims=True)
    centred = x32 - mean
    var = jnp.mean(jnp.square(centred), axis=(1, 2), keepdims=True)
    if self.eps_mode == 'var':
      y = centred * jax.lax.rsqrt(var + self.epsilon)
    else:
      y = centred / (jnp.sqrt(var) + self.epsilon)
    if self.affine:
      c = x.shape[-1]
      y = y * self.param('scale', nn.initializers.ones, (c,), jnp.float32)
      y = y + self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    return y.astype(x.dtype)


def reflect_pad(x: jax.Array, n: int) -> jax.Array:
  """PyTorch `ReflectionPad2d(n)` on NHWC (edge not repeated; 'symmetric' would be wrong)."""
  return jnp.pad(x, ((0, 0), (n, n), (n, n), (0, 0)), mode='reflect')


def upsample_nearest2x(x: jax.Array) -> jax.Array:
  """Nearest-neighbour ×2 (Keras `UpSampling2D`), written as broadcast+reshape.

  `jnp.repeat`/`jax.image.resize` lower to gathers, which are slow on TPU/GPU, especially in the
  backward pass; a broadcast and a reshape are free layout ops.
  """
  n, h, w, c = x.shape
  y = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c))
  return y.reshape(n, 2 * h, 2 * w, c)


def kernel_init(init: str, gain: float = 0.02) -> Callable[..., jax.Array]:
  """Kernel initialiser from config: junyanz `init_weights('normal')` or the Keras default."""
  if init == 'normal':
    return nn.initializers.normal(stddev=gain)
  if init == 'keras':
    return nn.initializers.glorot_uniform()
  raise ValueError(f"init must be 'normal' or 'keras', got {init!r}")


def conv(features: int, kernel: int, stride: int, padding: Padding, name: str, *,
         init: str = 'normal', gain: float = 0.02, dtype: Any = jnp.float32) -> nn.Module:
  """A biased conv (bias 0 at init, as junyanz and Keras both do); params float32.

  `fast_conv.FastConv` (same variables) unless `JAXSTYLE_FAST_CONV=0`: XLA CPU's own kernel
  gradient is the slowest op of a training step (see fast_conv.py).
  """
  if fast_conv.enabled():
    return fast_conv.FastConv(features, (kernel, kernel), strides=(stride, stride),
                              padding=padding, kernel_init=kernel_init(init, gain),
                              bias_init=nn.initializers.zeros, dtype=dtype,
                              param_dtype=jnp.float32, name=name)
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding,
                 kernel_init=kernel_init(init, gain), bias_init=nn.initializers.zeros,
                 dtype=dtype, param_dtype=jnp.float32, name=name)


def conv_transpose(features: int, padding: Padding, name: str, *, init: str = 'normal',
                   gain: float = 0.02, dtype: Any = jnp.float32) -> nn.Module:
  """A 3×3 stride-2 transposed conv; kernel (kH, kW, Cout, Cin), i.e. torch's weight transposed.

  `transpose_kernel=True` semantics: the gradient of a conv, like PyTorch `ConvTranspose2d` and
  Keras `Conv2DTranspose`. PyTorch (k3, s2, p1, output_padding=1) is padding ((1, 2), (1, 2));
  Keras 'same' is ((2, 1), (2, 1)): same shape, output shifted by one pixel. Those explicit
  paddings run as `SubpixelConvTranspose` (same variables, same values); others as `nn.ConvTranspose`.
  """
  kw = dict(kernel_init=kernel_init(init, gain), bias_init=nn.initializers.zeros, dtype=dtype,
            param_dtype=jnp.float32, name=name)
  if not isinstance(padding, str) and all(lo + hi == 3 for lo, hi in padding):
    return SubpixelConvTranspose(features, tuple(tuple(p) for p in padding), **kw)
  return nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding=padding,
                          transpose_kernel=True, **kw)


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
    x = jnp.pad(x.astype(self.dtype),
                ((0, 0), (lo_h, size_h - 1 - lo_h), (lo_w, size_w - 1 - lo_w), (0, 0)))
    kernel4 = sub.reshape(size_h, size_w, cin, 4 * cout)
    if fast_conv.enabled():
      y = fast_conv.conv2d(x, kernel4)
    else:
      y = jax.lax.conv_general_dilated(x, kernel4, (1, 1), 'VALID',
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    y = y.reshape(n, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, cout)
    return y + bias.astype(self.dtype)


def _upsample_taps(size: int) -> tuple[np.ndarray, int]:
  """(T, lo): T[a, d, k] = 1 where tap k of a 'SAME' conv after nearest ×2 reads x[m + d - lo] for output 2m+a.

  Output 2m+a reads the upsampled u[2m+a+k-p] = x[m + (a+k-p)//2] (p = (size-1)//2, Keras/XLA
  'SAME' padding); zero padding of u past an edge is zero padding of x, so the identity is exact.
  """
  pad = (size - 1) // 2
  offsets = [(a + k - pad) // 2 for a in (0, 1) for k in range(size)]
  lo = -min(offsets)
  taps = np.zeros((2, max(offsets) + lo + 1, size), np.float32)
  for a in (0, 1):
    for k in range(size):
      taps[a, (a + k - pad) // 2 + lo, k] = 1.0
  return taps, lo


class UpsampleConv(nn.Module):
  """Nearest ×2 upsampling then a stride-1 'SAME' conv, computed on the low-resolution input.

  Each output phase (a, b) of the upsampled conv is a small conv of x whose taps are sums of the
  original taps (4×4 → 3×3 offsets, e.g. [w0, w1+w2, w3]); all four phases run as one 3×3 conv with
  4·Cout channels and a depth-to-space reshape: 36/64 of the products, no 4× upsampled tensor.
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
    n, h, w, cin = x.shape
    k, cout = self.kernel_size, self.features
    kernel = self.param('kernel', self.kernel_init, (k, k, cin, cout), self.param_dtype)
    bias = self.param('bias', self.bias_init, (cout,), self.param_dtype)
    taps, lo = _upsample_taps(k)
    sub = jnp.einsum('adk,bel,klio->deiabo', taps, taps, kernel)  # (D, D, Cin, 2, 2, Cout)
    kernel4 = sub.reshape(*sub.shape[:3], 4 * cout).astype(self.dtype)
    pads = ((lo, sub.shape[0] - 1 - lo),) * 2
    x = x.astype(self.dtype)
    if fast_conv.enabled():
      y = fast_conv.conv2d(x, kernel4, (1, 1), pads)
    else:
      y = jax.lax.conv_general_dilated(x, kernel4, (1, 1), pads,
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    y = y.reshape(n, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, cout)
    return y + bias.astype(self.dtype)


def upsample_conv(features: int, kernel: int, name: str, *, init: str = 'normal',
                  gain: float = 0.02, dtype: Any = jnp.float32) -> nn.Module:
  """`conv(features, kernel, 1, 'SAME', name)` applied to `upsample_nearest2x(x)`, same variables."""
  return UpsampleConv(features, kernel, kernel_init=kernel_init(init, gain),
                      bias_init=nn.initializers.zeros, dtype=dtype, param_dtype=jnp.float32,
                      name=name)


# PyTorch ConvTranspose2d(k3, s2, padding=1, output_padding=1) and Keras Conv2DTranspose(k3, s2,
# 'same') as explicit lax.conv_transpose paddings (checked against NumPy in tests/test_layers.py).
TORCH_CONVT_PADDING = ((1, 2), (1, 2))
KERAS_CONVT_PADDING = ((2, 1), (2, 1))
