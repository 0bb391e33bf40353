"""pix2pix's discriminator: junyanz `NLayerDiscriminator` with batch norm (`--netD basic --norm
batch`), conditional on concat(A, B) (6 input channels for RGB pairs).

conv4 s2 (`conv_0`, biased) -> LeakyReLU 0.2, then for i = 1..n: conv4 (`conv_i`, stride 2 except
the last, no bias: batch norm follows) -> BN (`norm_i`) -> LeakyReLU 0.2, then conv4 s1 to one
logit per patch (`head`, biased). Padding 1 everywhere: a 70x70 field, 30x30 logits at 256².
Names follow `PatchDiscriminator`'s pins; torch's Sequential indices are in `torch_names`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.models import layers
from jaxstyle.models.batchnorm import BatchNorm

_PAD = ((1, 1), (1, 1))


class PatchDiscriminatorBN(nn.Module):
  """The reference 70x70 PatchGAN with batch norm; returns raw logits (N, h, w, 1), float32."""

  filters: int = 64
  n_layers: int = 3
  init_scheme: str = 'normal'
  init_gain: float = 0.02
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'
  bn_axis_name: str | None = None  # batch norm synced over this mesh axis (None: per device)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    kinit = layers.kernel_init(self.init_scheme, self.init_gain)

    def conv(features: int, stride: int, name: str, bias: bool) -> nn.Module:
      return layers.Conv(features, (4, 4), (stride, stride), _PAD, kinit, use_bias=bias,
                         dtype=self.dtype, impl=self.conv_impl, name=name)  # fmt: skip

    y = nn.leaky_relu(conv(self.filters, 2, 'conv_0', True)(x), 0.2)
    for i in range(1, self.n_layers + 1):
      stride = 2 if i < self.n_layers else 1
      y = conv(self.filters * min(2**i, 8), stride, f'conv_{i}', False)(y)
      y = BatchNorm(init_gain=self.init_gain, axis_name=self.bn_axis_name, name=f'norm_{i}')(
        y, use_running_average=not train
      )
      y = nn.leaky_relu(y, 0.2)
    return conv(1, 1, 'head', True)(y).astype(jnp.float32)


def torch_names(n_layers: int = 3) -> dict[str, str]:
  """Flax module path -> the reference's `model.<index>` (conv, BN, LeakyReLU triples)."""
  names = {'conv_0': 'model.0'}
  for i in range(1, n_layers + 1):
    names[f'conv_{i}'] = f'model.{3 * i - 1}'
    names[f'norm_{i}'] = f'model.{3 * i}'
  names['head'] = f'model.{3 * n_layers + 2}'
  return names
