"""Book U-Net generator (GDL `build_generator_unet`; docs/design/cyclegan.md).

4 stride-2 downs, 3 ups with skip concatenation, then ×2 → conv → tanh. Kernel 4 everywhere
with Keras 'same' padding (stride-1 k4 pads 1 before, 2 after; Flax 'SAME' is the same XLA rule).
Upsampling is nearest ×2 + conv (no transposed conv; computed as one conv of the low-resolution
input, `layers.upsample_conv`, same variables and values), and the encoder uses ReLU, as in the
book (not LeakyReLU as in Keras-GAN/pix2pix). The book's `dropout_rate` is dead code and omitted.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.models import layers


class UnetBookGenerator(nn.Module):
  """Book U-Net; input sides must be multiples of 16. Names: `down_0..3`, `up_0..2`, `head`."""

  filters: int = 32
  out_channels: int = 3
  norm_eps: float = 1e-3
  eps_mode: str = 'std'
  init_scheme: str = 'keras'
  init_gain: float = 0.02
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'  # 'auto' or one of layers.CONV_IMPLS (same variables for all)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ck = dict(init=self.init_scheme, gain=self.init_gain, dtype=self.dtype, impl=self.conv_impl)
    norm = lambda y: layers.InstanceNorm(self.norm_eps, self.eps_mode)(y)
    g = self.filters
    skips = []
    y = x
    for i in range(4):
      y = nn.relu(norm(layers.conv(g * 2**i, 4, 2, 'SAME', f'down_{i}', **ck)(y)))
      skips.append(y)
    skips.pop()  # the bottleneck is not a skip
    for i in range(3):
      y = layers.upsample_conv(g * 2 ** (2 - i), 4, f'up_{i}', **ck)(y)
      y = nn.relu(norm(y))
      y = jnp.concatenate([y, skips.pop().astype(y.dtype)], axis=-1)
    y = layers.upsample_conv(self.out_channels, 4, 'head', **ck)(y)
    return jnp.tanh(y.astype(jnp.float32))
