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

from jaxstyle.kernels import fast_conv
from jaxstyle.kernels.subpixel import SubpixelConvTranspose, UpsampleConv

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


def upsample_conv(features: int, kernel: int, name: str, *, init: str = 'normal',
                  gain: float = 0.02, dtype: Any = jnp.float32) -> nn.Module:
  """`conv(features, kernel, 1, 'SAME', name)` applied to `upsample_nearest2x(x)`, same variables."""
  return UpsampleConv(features, kernel, kernel_init=kernel_init(init, gain),
                      bias_init=nn.initializers.zeros, dtype=dtype, param_dtype=jnp.float32,
                      name=name)


# PyTorch ConvTranspose2d(k3, s2, padding=1, output_padding=1) and Keras Conv2DTranspose(k3, s2,
# 'same') as explicit lax.conv_transpose paddings (checked against NumPy in tests/models/test_layers.py).
TORCH_CONVT_PADDING = ((1, 2), (1, 2))
KERAS_CONVT_PADDING = ((2, 1), (2, 1))
