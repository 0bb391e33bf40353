"""Frozen-weight 3×3 'SAME' convs (NST's VGG19) whose input gradient uses a kernel given as data.

XLA's own transpose of a conv uses the kernel in `01oi` order; inside a `while` loop (every L-BFGS
line search) XLA:CPU then leaves that conv out of its YNNPACK fusions. An `01io` kernel keeps it
fused, and passing it in lets NST prepare it once per run instead of once per evaluation
(`dispatch.frozen_kernels`). A `winograd.Prepared` kernel_t runs both convs as Winograd convs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxstyle.kernels import winograd

transposed = winograd.flipped_transposed  # the input gradient's kernel of a 3×3 'SAME' conv


def conv_same(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Plain NHWC × HWIO stride-1 'SAME' conv."""
  return jax.lax.conv_general_dilated(
    x, kernel, window_strides=(1, 1), padding='SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array, kernel_t: jax.Array | winograd.Prepared) -> jax.Array:
  """3×3 'SAME' conv whose input gradient is a conv with `kernel_t`, the flipped, transposed kernel."""
  return _conv_fwd_only(x, kernel, kernel_t)


def _conv_fwd_only(x, kernel, kernel_t):
  if isinstance(kernel_t, winograd.Prepared):
    return winograd.conv3x3_same(x, kernel_t.u)
  return conv_same(x, kernel)


def _conv3x3_fwd(x, kernel, kernel_t):
  return _conv_fwd_only(x, kernel, kernel_t), (x, kernel, kernel_t)


def _conv3x3_bwd(res, dy):
  x, kernel, kernel_t = res
  if isinstance(kernel_t, winograd.Prepared):
    dx = winograd.conv3x3_same(dy, kernel_t.u_t)
  else:
    dx = conv_same(dy, kernel_t)
  (dk,) = jax.vjp(lambda k: conv_same(x, k), kernel)[1](dy)  # dead code unless weights train
  return dx, dk, jax.tree.map(jnp.zeros_like, kernel_t)


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)
