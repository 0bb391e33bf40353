"""CycleGAN losses: pure functions of arrays, means over every element (as junyanz and Keras).

NST losses live in `nst_losses.py`. Both functions compute in float32 so that a bfloat16
forward pass does not lose precision in the reduction.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxstyle import gan_losses

# The LSGAN loss is the one shared by every translation task (`jaxstyle/gan_losses.py`, with
# `vanilla` and `wgangp`): mean squared error against a constant or an array target.
mse = gan_losses.lsgan


def l1(pred: jax.Array, target: jax.Array) -> jax.Array:
  """Cycle / identity loss: mean absolute error (`nn.L1Loss`, Keras 'mae')."""
  return jnp.mean(jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)))
