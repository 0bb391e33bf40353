"""PatchGAN discriminators: junyanz `NLayerDiscriminator` and the book's D
(docs/design/cyclegan.md, "Architectures").

Both are conv4 stacks C(f)-C(2f)-...-C(min(2^n,8)·f) with LeakyReLU 0.2, IN on all but the first
conv, then a conv to 1 channel with no activation (LSGAN scores, no sigmoid). The reference pads
explicitly by 1 (70 px field, 30×30 at 256²); the book uses Keras 'same' (H/8, e.g. 32×32 at 256²).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.models import layers


class PatchDiscriminator(nn.Module):
  """Reference (`book=False`) or book (`book=True`) PatchGAN. Names: `conv_0..conv_{n}`, `head`."""

  filters: int = 64
  n_layers: int = 3
  book: bool = False
  norm_eps: float = 1e-5
  eps_mode: str = 'var'
  init_scheme: str = 'normal'
  init_gain: float = 0.02
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'  # 'auto' or one of layers.CONV_IMPLS (same variables for all)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ck = dict(init=self.init_scheme, gain=self.init_gain, dtype=self.dtype, impl=self.conv_impl)
    # 'SAME' with a k4 stride-1 conv pads (1, 2): keeps H but shifts the field vs explicit 1.
    pad = 'SAME' if self.book else ((1, 1), (1, 1))
    y = x
    for i in range(self.n_layers + 1):
      stride = 2 if i < self.n_layers else 1
      y = layers.conv(self.filters * min(2**i, 8), 4, stride, pad, f'conv_{i}', **ck)(y)
      if i > 0:
        y = layers.InstanceNorm(self.norm_eps, self.eps_mode)(y)
      y = nn.leaky_relu(y, 0.2)
    y = layers.conv(1, 4, 1, pad, 'head', **ck)(y)
    return y.astype(jnp.float32)
