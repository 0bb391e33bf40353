"""Shared building blocks for the CycleGAN networks (docs/design/cyclegan.md, "Parity").

Everything here is chosen for exact parity with PyTorch (junyanz) or Keras (GDL book), not for
Flax defaults: Flax's own `InstanceNorm` uses eps 1e-6 with scale/bias on, which is neither.
This is the models' only door to `kernels.dispatch`: the conv layers own their variables (the same
names, shapes and init for every `conv_impl`) and hand the arithmetic to the chosen implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.kernels import dispatch

Padding = str | Sequence[tuple[int, int]]
CONV_IMPLS = dispatch.CONV_IMPLS


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
    y = _normalize(x, self.epsilon, self.eps_mode)
    if self.affine:
      c = x.shape[-1]
      y = y * self.param('scale', nn.initializers.ones, (c,), jnp.float32)
      y = y + self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    return y.astype(x.dtype)


def _normalize(x: jax.Array, epsilon: float, eps_mode: str) -> jax.Array:
  """The float32 (x-μ)/√(σ²+eps) or (x-μ)/(σ+eps) over H, W shared by both instance norms."""
  if eps_mode not in ('var', 'std'):
    raise ValueError(f"eps_mode must be 'var' or 'std', got {eps_mode!r}")
  x32 = x.astype(jnp.float32)
  centred = x32 - jnp.mean(x32, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(centred), axis=(1, 2), keepdims=True)
  if eps_mode == 'var':
    return centred * jax.lax.rsqrt(var + epsilon)
  return centred / (jnp.sqrt(var) + epsilon)


class ConditionalInstanceNorm(nn.Module):
  """Instance norm with one (γ, β) row per style (Dumoulin et al. 2017, "A learned representation
  for artistic style"): params `scale` (n_styles, C), init ones, and `bias` (n_styles, C), zeros.

  `style` is either integer ids, a scalar or (N,), which pick rows, or float weights, (n_styles,)
  for the whole batch or (N, n_styles), which blend them: γ = w·scale, β = w·bias. The blend is an
  elementwise product and sum in float32, not a matmul, so a one-hot weight gives its row exactly
  on every backend (TPU matmuls round to bf16 by default). Ids outside [0, n_styles) raise when
  given as Python/NumPy values; as device or traced arrays they give NaN outputs (a silent clamp,
  jnp's default, would hide the bug).
  Normalisation is `InstanceNorm`'s, so the row of a one-hot weight reproduces
  `InstanceNorm(affine=True)` with that row as its (C,) `scale` and `bias`.
  """

  n_styles: int
  epsilon: float = 1e-5
  eps_mode: str = 'var'

  @nn.compact
  def __call__(self, x: jax.Array, style: jax.Array | int) -> jax.Array:
    c, s = x.shape[-1], self.n_styles
    scale = self.param('scale', nn.initializers.ones, (s, c), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (s, c), jnp.float32)
    if isinstance(style, (int, np.integer, np.ndarray)):  # host values: check without a transfer
      host = np.asarray(style)
      if np.issubdtype(host.dtype, np.integer) and not np.all((host >= 0) & (host < s)):
        raise ValueError(f'style ids must lie in [0, {s}), got {host.tolist()}')
    style = jnp.asarray(style)
    if jnp.issubdtype(style.dtype, jnp.integer):
      ids = jnp.broadcast_to(style, x.shape[:1]) if style.ndim == 0 else style
      if ids.shape != x.shape[:1]:
        raise ValueError(f'style ids must be a scalar or ({x.shape[0]},), got {ids.shape}')
      ids = jnp.where((ids >= 0) & (ids < s), ids, s)  # out of range -> the NaN fill
      gamma = jnp.take(scale, ids, axis=0, mode='fill', fill_value=jnp.nan)
      beta = jnp.take(bias, ids, axis=0, mode='fill', fill_value=jnp.nan)
    else:
      if style.shape not in ((s,), (x.shape[0], s)):
        raise ValueError(f'style weights must be ({s},) or ({x.shape[0]}, {s}), got {style.shape}')
      w = jnp.broadcast_to(style.astype(jnp.float32), (x.shape[0], s))[:, :, None]
      gamma, beta = jnp.sum(w * scale, axis=1), jnp.sum(w * bias, axis=1)
    y = _normalize(x, self.epsilon, self.eps_mode)
    return (y * gamma[:, None, None, :] + beta[:, None, None, :]).astype(x.dtype)


def reflect_pad(x: jax.Array, n: int) -> jax.Array:
  """PyTorch `ReflectionPad2d(n)` on NHWC (edge not repeated; 'symmetric' would be wrong)."""
  return jnp.pad(x, ((0, 0), (n, n), (n, n), (0, 0)), mode='reflect')


upsample_nearest2x = dispatch.upsample_nearest2x  # Keras `UpSampling2D` as broadcast + reshape

# Frozen 3×3 'SAME' convs (VGG19 for NST): `frozen_kernels` prepares each layer's input-gradient
# kernel once per run for `frozen_conv3x3` (see kernels/frozen.py).
frozen_kernels = dispatch.frozen_kernels
frozen_conv3x3 = dispatch.frozen_conv3x3
# Convs of the frozen FID Inception (HIGHEST precision; GEMM 1x1s and aligned inputs on CPU).
inference_conv = dispatch.inference_conv2d
pointwise = dispatch.pointwise_conv


def kernel_init(init: str, gain: float = 0.02) -> Callable[..., jax.Array]:
  """Kernel initialiser from config: junyanz `init_weights('normal')`, its 'xavier' (CUT's default:
  torch `xavier_normal_(gain)`, std gain·√(2/(fan_in+fan_out))) or the Keras default."""
  if init == 'normal':
    return nn.initializers.normal(stddev=gain)
  if init == 'xavier':
    return nn.initializers.variance_scaling(gain**2, 'fan_avg', 'normal')
  if init == 'keras':
    return nn.initializers.glorot_uniform()
  raise ValueError(f"init must be 'normal', 'xavier' or 'keras', got {init!r}")


class Conv(nn.Module):
  """A biased 2-D conv layer (NHWC) whose arithmetic `kernels.dispatch` does for `impl`.

  `op='conv'` is the `nn.Conv` subset (kernel HWIO); `op='transpose'` a 3×3 stride-2 transposed conv
  (`nn.ConvTranspose(transpose_kernel=True)`, kernel (3, 3, Cout, Cin)); `op='upsample'` nearest ×2
  then a stride-1 'SAME' conv (kernel HWIO); `op='upsample_reflect'` nearest ×2, reflect pad 1, a
  3×3 VALID conv. Variables (`kernel`, then `bias`) are those of the Flax
  layer each replaces, for every impl, so checkpoints and weight ports do not depend on the choice.
  """

  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: Padding = 'SAME'
  kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal()
  bias_init: Callable[..., jax.Array] = nn.initializers.zeros
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  impl: str = 'auto'
  op: str = 'conv'
  use_bias: bool = True  # False: no `bias` variable (junyanz convs followed by batch norm)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cin = x.shape[-1]
    io = (self.features, cin) if self.op == 'transpose' else (cin, self.features)
    kernel = self.param('kernel', self.kernel_init, (*self.kernel_size, *io), self.param_dtype)
    x = x.astype(self.dtype)
    if self.op == 'conv':
      y = dispatch.conv2d(x, kernel.astype(self.dtype), self.strides, self.padding, self.impl)
    elif self.op == 'transpose':  # the kernel is cast after its re-arrangement (dispatch)
      y = dispatch.conv_transpose(x, kernel, self.padding, self.impl)
    elif self.op == 'upsample':
      y = dispatch.upsample_conv(x, kernel, self.impl)
    elif self.op == 'upsample_reflect':
      y = dispatch.upsample_conv_reflect(x, kernel, self.impl)
    else:
      raise ValueError(
        f"op must be 'conv', 'transpose', 'upsample' or 'upsample_reflect', got {self.op!r}"
      )
    if not self.use_bias:
      return y
    bias = self.param('bias', self.bias_init, (self.features,), self.param_dtype)
    return y + bias.astype(self.dtype)


def conv(
  features: int,
  kernel: int,
  stride: int,
  padding: Padding,
  name: str,
  *,
  init: str = 'normal',
  gain: float = 0.02,
  dtype: Any = jnp.float32,
  impl: str = 'auto',
) -> nn.Module:
  """A biased conv (bias 0 at init, as junyanz and Keras both do); params float32."""
  return Conv(
    features,
    (kernel, kernel),
    strides=(stride, stride),
    padding=_hashable(padding),
    kernel_init=kernel_init(init, gain),
    bias_init=nn.initializers.zeros,
    dtype=dtype,
    param_dtype=jnp.float32,
    impl=impl,
    name=name,
  )


def conv_transpose(
  features: int,
  padding: Padding,
  name: str,
  *,
  init: str = 'normal',
  gain: float = 0.02,
  dtype: Any = jnp.float32,
  impl: str = 'auto',
) -> nn.Module:
  """A 3×3 stride-2 transposed conv; kernel (kH, kW, Cout, Cin), i.e. torch's weight transposed.

  `transpose_kernel=True` semantics: the gradient of a conv, like PyTorch `ConvTranspose2d` and
  Keras `Conv2DTranspose`. PyTorch (k3, s2, p1, output_padding=1) is padding ((1, 2), (1, 2));
  Keras 'same' is ((2, 1), (2, 1)): same shape, output shifted by one pixel. Every impl but 'xla'
  runs those two in the sub-pixel form (kernels/subpixel.py): same variables, same values.
  """
  return Conv(
    features,
    (3, 3),
    strides=(2, 2),
    padding=_hashable(padding),
    op='transpose',
    kernel_init=kernel_init(init, gain),
    bias_init=nn.initializers.zeros,
    dtype=dtype,
    param_dtype=jnp.float32,
    impl=impl,
    name=name,
  )


def upsample_conv(
  features: int,
  kernel: int,
  name: str,
  *,
  init: str = 'normal',
  gain: float = 0.02,
  dtype: Any = jnp.float32,
  impl: str = 'auto',
) -> nn.Module:
  """`conv(features, kernel, 1, 'SAME', name)` applied to `upsample_nearest2x(x)`, same variables."""
  return Conv(
    features,
    (kernel, kernel),
    op='upsample',
    kernel_init=kernel_init(init, gain),
    bias_init=nn.initializers.zeros,
    dtype=dtype,
    param_dtype=jnp.float32,
    impl=impl,
    name=name,
  )


def upsample_conv_reflect(
  features: int,
  name: str,
  *,
  init: str = 'normal',
  gain: float = 0.02,
  dtype: Any = jnp.float32,
  impl: str = 'auto',
) -> nn.Module:
  """`conv(features, 3, 1, 'VALID', name)` of `reflect_pad(upsample_nearest2x(x), 1)`, same
  variables; computed on the low-res x (kernels/subpixel.py) unless `impl` is 'xla'."""
  return Conv(
    features,
    (3, 3),
    op='upsample_reflect',
    kernel_init=kernel_init(init, gain),
    bias_init=nn.initializers.zeros,
    dtype=dtype,
    param_dtype=jnp.float32,
    impl=impl,
    name=name,
  )


def _hashable(padding: Padding) -> Padding:
  return padding if isinstance(padding, str) else tuple(tuple(p) for p in padding)


# PyTorch ConvTranspose2d(k3, s2, padding=1, output_padding=1) and Keras Conv2DTranspose(k3, s2,
# 'same') as explicit lax.conv_transpose paddings (checked against NumPy in tests/models/test_layers.py).
TORCH_CONVT_PADDING = ((1, 2), (1, 2))
KERAS_CONVT_PADDING = ((2, 1), (2, 1))
