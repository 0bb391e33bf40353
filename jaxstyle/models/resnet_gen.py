"""ResNet generators: junyanz `ResnetGenerator` and the book's variant
(docs/design/cyclegan.md, "Architectures").

c7s1-g, d2g, d4g, R4g×N, u2g, ug, c7s1-out. The two differ only at the stride-2 layers: the
reference uses explicit zero padding 1 and a PyTorch-aligned ConvTranspose; the book uses Keras
'same' convs and a Keras-aligned `Conv2DTranspose` (same shape, output shifted by one pixel).
Submodule names are pinned (ARCHITECTURE.md) because the weight ports map onto them.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.models import layers


class ResBlock(nn.Module):
  """Reflect-pad 1 → conv3 → IN → ReLU → reflect-pad 1 → conv3 → IN, plus the skip.

  No activation after the add, as in junyanz `ResnetBlock` and the book's `residual`.
  """

  norm_eps: float = 1e-5
  eps_mode: str = 'var'
  init_scheme: str = 'normal'
  init_gain: float = 0.02
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'  # 'auto' or one of layers.CONV_IMPLS (same variables for all)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ck = dict(init=self.init_scheme, gain=self.init_gain, dtype=self.dtype, impl=self.conv_impl)
    c = x.shape[-1]
    h = layers.conv(c, 3, 1, 'VALID', 'conv_0', **ck)(layers.reflect_pad(x, 1))
    h = nn.relu(layers.InstanceNorm(self.norm_eps, self.eps_mode)(h))
    h = layers.conv(c, 3, 1, 'VALID', 'conv_1', **ck)(layers.reflect_pad(h, 1))
    return x + layers.InstanceNorm(self.norm_eps, self.eps_mode)(h)


class ResnetGenerator(nn.Module):
  """Reference (`book=False`) or book (`book=True`) ResNet generator; NHWC in [-1, 1] → tanh.

  Each input side must be a multiple of 4. `upsample='resize_conv'` replaces each ConvTranspose
  by nearest ×2 + reflect-pad 1 + 3×3 conv (same parameter count, no checkerboard artefacts).
  """

  filters: int = 64
  n_blocks: int = 9
  out_channels: int = 3
  book: bool = False
  upsample: str = 'deconv'
  norm_eps: float = 1e-5
  eps_mode: str = 'var'
  init_scheme: str = 'normal'
  init_gain: float = 0.02
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'  # 'auto' or one of layers.CONV_IMPLS (same variables for all)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.upsample not in ('deconv', 'resize_conv'):
      raise ValueError(f"upsample must be 'deconv' or 'resize_conv', got {self.upsample!r}")
    ck = dict(init=self.init_scheme, gain=self.init_gain, dtype=self.dtype, impl=self.conv_impl)
    norm = lambda y: layers.InstanceNorm(self.norm_eps, self.eps_mode)(y)
    g = self.filters

    y = layers.conv(g, 7, 1, 'VALID', 'stem', **ck)(layers.reflect_pad(x, 3))
    y = nn.relu(norm(y))
    # The book's downsampling convs are Keras 'same' (pad (0, 1) for even sides); the reference
    # pads 1 on both sides. Inputs are multiples of 4, so both halve exactly.
    down_pad = 'SAME' if self.book else ((1, 1), (1, 1))
    for i in range(2):
      y = nn.relu(norm(layers.conv(g * 2 ** (i + 1), 3, 2, down_pad, f'down_{i}', **ck)(y)))

    for i in range(self.n_blocks):
      y = ResBlock(
        self.norm_eps,
        self.eps_mode,
        self.init_scheme,
        self.init_gain,
        self.dtype,
        self.conv_impl,
        name=f'block_{i}',
      )(y)

    for i in range(2):
      features = g * 2 ** (1 - i)
      if self.upsample == 'deconv':
        pad = layers.KERAS_CONVT_PADDING if self.book else layers.TORCH_CONVT_PADDING
        y = layers.conv_transpose(features, pad, f'up_{i}', **ck)(y)
      else:
        y = layers.reflect_pad(layers.upsample_nearest2x(y), 1)
        y = layers.conv(features, 3, 1, 'VALID', f'up_{i}', **ck)(y)
      y = nn.relu(norm(y))

    y = layers.conv(self.out_channels, 7, 1, 'VALID', 'head', **ck)(layers.reflect_pad(y, 3))
    return jnp.tanh(y.astype(jnp.float32))
