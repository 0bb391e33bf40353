"""Batch norm as PyTorch's `BatchNorm2d` computes it, with its running statistics as explicit state.

Used by pix2pix's networks (`unet256.py`, `patchgan_bn.py`). The running statistics live in the
`batch_stats` collection (house style §2): the caller passes them in, and training applies the
module with `mutable=['batch_stats']` and keeps what comes back; nothing is hidden in a module.

It differs from `flax.linen.BatchNorm` on purpose, to match torch: the running variance is updated
with the *unbiased* batch variance (n / (n - 1) times the biased one used to normalise), momentum
is torch's (running = (1 - m) · running + m · batch, m = 0.1), and the scale starts at N(1, gain)
as junyanz's `init_weights` draws it. Statistics are always float32. Variable names are Flax's
(`scale`, `bias`; `mean`, `var`), so a torch `weight, bias, running_mean, running_var` ports by
renaming (`num_batches_tracked` is not needed: momentum is fixed).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def _scale_init(gain: float) -> Any:
  def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    return 1.0 + gain * jax.random.normal(key, shape, dtype)

  return init


class BatchNorm(nn.Module):
  """NHWC batch norm over (N, H, W). `use_running_average=True` is torch's `eval()` mode."""

  momentum: float = 0.1
  epsilon: float = 1e-5
  init_gain: float = 0.02
  axis_name: str | None = None  # set: batch moments pmean-ed over it (torch SyncBatchNorm)

  @nn.compact
  def __call__(self, x: jax.Array, use_running_average: bool) -> jax.Array:
    c = x.shape[-1]
    scale = self.param('scale', _scale_init(self.init_gain), (c,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    ra_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros((c,), jnp.float32))
    ra_var = self.variable('batch_stats', 'var', lambda: jnp.ones((c,), jnp.float32))
    x32 = x.astype(jnp.float32)
    if use_running_average:
      mean, var = ra_mean.value, ra_var.value
    else:
      n = x.shape[0] * x.shape[1] * x.shape[2]
      mean = jnp.mean(x32, axis=(0, 1, 2))
      if self.axis_name is not None:  # equal batches per device: the mean of means is exact
        mean = jax.lax.pmean(mean, self.axis_name)
        n = n * jax.lax.psum(1, self.axis_name)
      var = jnp.mean(jnp.square(x32 - mean), axis=(0, 1, 2))
      if self.axis_name is not None:
        var = jax.lax.pmean(var, self.axis_name)
      if not self.is_initializing():
        unbiased = var * (n / jnp.maximum(n - 1, 1))
        ra_mean.value = (1.0 - self.momentum) * ra_mean.value + self.momentum * mean
        ra_var.value = (1.0 - self.momentum) * ra_var.value + self.momentum * unbiased
    y = (x32 - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias
    return y.astype(x.dtype)
