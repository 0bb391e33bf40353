"""pix2pix's U-Net: junyanz `UnetGenerator` (`unet_256`: 8 downs, `unet_128`: 7) with batch norm.

Depth d = 0 (outermost) .. n-1 (innermost) is one `UnetSkipConnectionBlock`:
  d = 0:         conv4 s2 (`down_0`)  -> inner -> ReLU -> convT4 s2 (`up_0`, biased) -> tanh
  0 < d < n-1:   LeakyReLU 0.2 -> conv4 s2 (`down_d`) -> BN (`down_norm_d`) -> inner -> ReLU
                 -> convT4 s2 (`up_d`) -> BN (`up_norm_d`) [-> dropout 0.5 for d >= 4] -> concat
  d = n-1:       LeakyReLU 0.2 -> conv4 s2 (`down_d`) -> ReLU -> convT4 s2 (`up_d`) -> BN
                 (`up_norm_d`) -> concat
Widths: ngf·(1, 2, 4, 8, 8, ...). Convs followed by batch norm have no bias (torch `use_bias`
is False for batch norm); `up_0` has one. Dropout sits in the `num_downs - 5` blocks just outside
the innermost (the three innermost up blocks after it, d = 4, 5, 6 for unet_256).

**The skip carries LeakyReLU(x), not x**: the reference's `downrelu` is in place
(`nn.LeakyReLU(0.2, True)`) and runs on the very tensor that `torch.cat([x, self.model(x)])`
concatenates afterwards. A faithful port must do the same, so this module does.

Batch norm is `models/batchnorm.py` (torch semantics, running statistics in `batch_stats`).
Modes: `train=True` normalises with batch statistics and updates the running ones (apply with
`mutable=['batch_stats']`); `dropout=True` needs a 'dropout' RNG. The reference's test-time default
is `train=True, dropout=True` (no `model.eval()`), its `--eval` is `train=False, dropout=False`.

`torch_names(n)` is the port map: each Flax module path -> the reference state-dict prefix.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.models import layers
from jaxstyle.models.batchnorm import BatchNorm

# PyTorch ConvTranspose2d(k4, s2, p1) as a transposed-conv padding: k - 1 - p = 2 on each side.
CONVT4_PADDING = ((2, 2), (2, 2))
DROPOUT_FIRST_DEPTH = 4  # the blocks with dropout are depths 4 .. n-2


def widths(num_downs: int, filters: int) -> list[int]:
  """The output width of `down_d` for each depth d (ngf, 2ngf, 4ngf, then 8ngf)."""
  return [filters * min(2**d, 8) for d in range(num_downs)]


class UnetGenerator(nn.Module):
  """junyanz `UnetGenerator`; input sides must be multiples of 2**num_downs (256 for unet_256)."""

  num_downs: int = 8
  filters: int = 64
  out_channels: int = 3
  use_dropout: bool = True
  dropout_rate: float = 0.5
  init_scheme: str = 'normal'
  init_gain: float = 0.02
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'  # 'auto' or one of layers.CONV_IMPLS (same variables for all)
  bn_axis_name: str | None = None  # batch norm synced over this mesh axis (None: per device)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool, dropout: bool) -> jax.Array:
    if self.num_downs < 5:
      raise ValueError(f'num_downs must be >= 5 (as the reference), got {self.num_downs}')
    n = self.num_downs
    side = 2**n
    if x.shape[1] % side or x.shape[2] % side:
      raise ValueError(f'input sides must be multiples of {side}, got {x.shape[1:3]}')
    kinit = layers.kernel_init(self.init_scheme, self.init_gain)
    w = widths(n, self.filters)
    outs = [self.out_channels] + w[:-1]  # what up_d returns (the input width of block d)

    def down(d: int, y: jax.Array) -> jax.Array:
      conv = layers.Conv(w[d], (4, 4), (2, 2), ((1, 1), (1, 1)), kinit, use_bias=False,
                         dtype=self.dtype, impl=self.conv_impl, name=f'down_{d}')  # fmt: skip
      return conv(y)

    def up(d: int, y: jax.Array) -> jax.Array:
      conv = layers.Conv(outs[d], (4, 4), (2, 2), CONVT4_PADDING, kinit, op='transpose',
                         use_bias=d == 0, dtype=self.dtype, impl=self.conv_impl, name=f'up_{d}')  # fmt: skip
      return conv(y)

    def norm(name: str, y: jax.Array) -> jax.Array:
      return BatchNorm(init_gain=self.init_gain, axis_name=self.bn_axis_name, name=name)(
        y, use_running_average=not train
      )

    # The encoder: keep each block's (activated) input for its skip.
    skips = []
    y = down(0, x)
    for d in range(1, n):
      y = nn.leaky_relu(y, 0.2)  # in place in the reference: the skip sees it too
      skips.append(y)
      y = down(d, y)
      if d < n - 1:
        y = norm(f'down_norm_{d}', y)
    # The decoder, innermost first.
    for d in range(n - 1, 0, -1):
      y = norm(f'up_norm_{d}', up(d, nn.relu(y)))
      if self.use_dropout and DROPOUT_FIRST_DEPTH <= d < n - 1:
        y = nn.Dropout(self.dropout_rate, deterministic=not dropout)(y)
      y = jnp.concatenate([skips.pop(), y], axis=-1)
    y = up(0, nn.relu(y))
    return jnp.tanh(y.astype(jnp.float32))


def torch_names(num_downs: int = 8) -> dict[str, str]:
  """Flax module path -> the reference's state-dict prefix (append `.weight`, `.bias`, ...).

  The reference nests blocks: depth 0 is `model.model`, its submodule (Sequential index 1) is
  depth 1, and every deeper submodule sits at index 3 of its parent's Sequential. Inside a block:
  outermost [downconv 0, sub 1, relu 2, upconv 3]; middle [relu 0, downconv 1, downnorm 2, sub 3,
  relu 4, upconv 5, upnorm 6]; innermost [relu 0, downconv 1, relu 2, upconv 3, upnorm 4].
  Conv kernels: torch Conv2d (O, I, kH, kW) -> HWIO; ConvTranspose2d (I, O, kH, kW) -> (kH, kW, O, I)
  (`transpose_kernel=True` layout, the same as `layers.conv_transpose`'s). BN weight -> scale,
  running_mean / running_var -> batch_stats mean / var.
  """
  names = {'down_0': 'model.model.0', 'up_0': 'model.model.3'}
  prefix = 'model.model.1.model'
  for d in range(1, num_downs):
    if d < num_downs - 1:
      names.update(
        {
          f'down_{d}': f'{prefix}.1',
          f'down_norm_{d}': f'{prefix}.2',
          f'up_{d}': f'{prefix}.5',
          f'up_norm_{d}': f'{prefix}.6',
        }
      )
      prefix += '.3.model'
    else:
      names.update(
        {f'down_{d}': f'{prefix}.1', f'up_{d}': f'{prefix}.3', f'up_norm_{d}': f'{prefix}.4'}
      )
  return names
