"""The one convolution dispatch: which implementation every conv of the models runs.

Chosen by config (`model.conv_impl`, `vgg.conv_impl`) and recorded in the run's config.json
(`runtime_record`): the choice changes the numbers (Winograd F(4×4): ~2e-5 relative) and the speed,
never the variables. `models/layers.py` is its only caller among the models.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
from jax import lax

from jaxstyle.kernels import fast_conv, frozen, inference_conv, subpixel, winograd

CONV_IMPLS: tuple[str, ...] = ('xla', 'subpixel', 'cpu_fast', 'cpu_winograd')
MEANING: dict[str, str] = {
  'xla': "XLA's own convs everywhere: lax convs, lax.conv_transpose, nearest x2 then a conv "
  '(the plain reference formulation)',
  'subpixel': 'XLA convs, up-convs in the sub-pixel form (kernels/subpixel.py): the GPU/TPU default',
  'cpu_fast': 'subpixel + fast_conv: aligned YNNPACK inputs, shifted-GEMM kernel gradients, '
  'per-phase input gradients, even-kernel transposed convs as one tap GEMM; up-convs below '
  'UPSAMPLE_MIN_PIXELS as in xla',
  'cpu_winograd': 'cpu_fast + Winograd for the wide 3x3 and 4x4 stride-1 layers winograd.choose '
  'picks: the CPU default',
}
ENV = 'JAXSTYLE_CONV_IMPL'  # when set, overrides the config (A/B timing without editing configs)
# Under 'cpu_fast'/'cpu_winograd', a nearest ×2 + K×K 'SAME' up-conv (`upsample_conv`) whose output
# has fewer than this many pixels (N·2H·2W) runs in XLA's plain form, as 'xla' does: the sub-pixel
# form's weight-sized work is not paid back by so few pixels. The measurements behind the threshold,
# and why the other up-conv kinds get no such rule: docs/performance.md, "Small up-convs".
UPSAMPLE_MIN_PIXELS = 512
Padding = str | Sequence[tuple[int, int]]
_DN = ('NHWC', 'HWIO', 'NHWC')
upsample_nearest2x = subpixel.upsample_nearest2x
# Frozen inference nets (FID Inception): HIGHEST precision, CPU fast paths chosen by shape.
pointwise_conv = inference_conv.pointwise
inference_conv2d = inference_conv.conv


def _check(value: str, source: str) -> str:
  if value != 'auto' and value not in CONV_IMPLS:
    raise ValueError(f"{source} must be 'auto' or one of {', '.join(CONV_IMPLS)}; got {value!r}")
  return value


def resolve(requested: str = 'auto') -> str:
  """The implementation to trace: `$JAXSTYLE_CONV_IMPL` if set, else `requested`; 'auto' by backend."""
  choice = _check(str(requested), 'conv_impl')
  forced = os.environ.get(ENV)
  if forced:
    choice = _check(forced, ENV)
  if choice == 'auto':
    return 'cpu_winograd' if jax.default_backend() == 'cpu' else 'subpixel'
  return choice


def runtime_record(requested: str = 'auto') -> dict[str, Any]:
  """What a run actually executed with, for config.json and bench lines (the config says 'auto')."""
  impl = resolve(requested)
  return {
    'conv_impl': impl,
    'conv_impl_requested': str(requested),
    'conv_impl_env': os.environ.get(ENV) or None,
    # the shape rule in force: up-convs with fewer output pixels run as 'xla' (None: no rule)
    'upsample_xla_below_pixels': UPSAMPLE_MIN_PIXELS if impl in _CPU_IMPLS else None,
    'backend': jax.default_backend(),
    'jax': jax.__version__,
    'jaxlib': jaxlib.__version__,
    'devices': jax.device_count(),
  }


#### Trainable convs (CycleGAN generators and discriminators)

_CPU_IMPLS = ('cpu_fast', 'cpu_winograd')


def upsample_impl(x_shape: Sequence[int], impl: str) -> str:
  """The impl `upsample_conv` runs for an NHWC input of `x_shape`: 'xla' for the custom CPU impls
  below `UPSAMPLE_MIN_PIXELS` output pixels, else `impl` (already resolved)."""
  n, h, w = x_shape[:3]
  return 'xla' if impl in _CPU_IMPLS and n * 4 * h * w < UPSAMPLE_MIN_PIXELS else impl


def _winograd_variant(
  x: jax.Array, w: jax.Array, strides: tuple[int, int], pads: tuple[tuple[int, int], ...]
) -> str | None:
  size = w.shape[0]
  if (
    strides != (1, 1)
    or w.shape[:2] not in ((3, 3), (4, 4))
    or x.dtype != jnp.float32
    or not winograd.transposable(pads, size)
  ):
    return None
  out_h, out_w = (x.shape[i + 1] + sum(pads[i]) - size + 1 for i in (0, 1))
  return winograd.choose(w.shape[2], w.shape[3], out_h, out_w, size)


def conv2d(
  x: jax.Array,
  w: jax.Array,
  strides: Sequence[int] = (1, 1),
  padding: Padding = 'VALID',
  impl: str = 'auto',
) -> jax.Array:
  """NHWC × HWIO conv (no dilation, no groups) as `impl` computes it."""
  impl = resolve(impl)
  strides = (int(strides[0]), int(strides[1]))
  pads = fast_conv.explicit_pads(x.shape, w.shape, strides, padding)
  if impl in ('xla', 'subpixel'):
    return lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_DN)
  variant = _winograd_variant(x, w, strides, pads) if impl == 'cpu_winograd' else None
  if variant:  # wide 3×3 and 4×4 layers (ResNet blocks, PatchGAN): fewer multiplies, winograd.py
    return winograd.conv(x, w, pads, variant)
  return fast_conv.conv2d(x, w, strides, pads)


def _stride1(impl: str) -> subpixel.ConvFn:
  return lambda x, w, pads: conv2d(x, w, (1, 1), pads, impl)


def conv_transpose(
  x: jax.Array, kernel: jax.Array, padding: Padding, impl: str = 'auto'
) -> jax.Array:
  """K×K stride-2 transposed conv (`transpose_kernel=True`, kernel (K, K, Cout, Cin)) of `x`.

  Sub-pixel form for the explicit paddings it covers unless `impl` is 'xla'; the kernel is cast to
  `x.dtype` after any re-arrangement, so sums over taps happen in the params' precision.
  """
  impl = resolve(impl)
  size = kernel.shape[0]
  if impl in _CPU_IMPLS and size % 2 == 0 and subpixel.supports_transpose(padding, size):
    return subpixel.conv_transpose_taps(x, kernel, padding)  # one GEMM: the useful products only
  if impl != 'xla' and subpixel.supports_transpose(padding, size):
    return subpixel.conv_transpose(x, kernel, padding, _stride1(impl))
  return lax.conv_transpose(
    x, kernel.astype(x.dtype), (2, 2), padding, dimension_numbers=_DN, transpose_kernel=True
  )


def upsample_conv(x: jax.Array, kernel: jax.Array, impl: str = 'auto') -> jax.Array:
  """Nearest ×2 upsampling then a stride-1 'SAME' conv with HWIO `kernel` (K, K, Cin, Cout).

  Sub-pixel form (kernels/subpixel.py) unless `impl` is 'xla' or the output is too small for it
  to pay off under the CPU impls (`UPSAMPLE_MIN_PIXELS`).
  """
  impl = upsample_impl(x.shape, resolve(impl))
  if impl == 'xla':
    return conv2d(subpixel.upsample_nearest2x(x), kernel.astype(x.dtype), (1, 1), 'SAME', impl)
  return subpixel.upsample_conv(x, kernel, _stride1(impl))


def upsample_conv_reflect(x: jax.Array, kernel: jax.Array, impl: str = 'auto') -> jax.Array:
  """Nearest ×2, reflect-pad 1, then a 3×3 VALID conv with HWIO `kernel` (the Johnson net's ups)."""
  impl = resolve(impl)
  if impl == 'xla':
    up = jnp.pad(subpixel.upsample_nearest2x(x), ((0, 0), (1, 1), (1, 1), (0, 0)), mode='reflect')
    return conv2d(up, kernel.astype(x.dtype), (1, 1), 'VALID', impl)
  return subpixel.upsample_conv_reflect(x, kernel, _stride1(impl))


#### Frozen convs (NST's VGG19): input-gradient kernels prepared once per run


@functools.partial(jax.jit, static_argnums=1)
def _prepare(
  kernels: Mapping[str, jax.Array],
  variants: tuple[tuple[str, str | None], ...],
) -> dict[str, jax.Array | winograd.Prepared]:
  out: dict[str, jax.Array | winograd.Prepared] = {}
  for name, variant in variants:
    kernel = jnp.asarray(kernels[name])
    out[name] = winograd.prepare(kernel, variant) if variant else frozen.transposed(kernel)
  return out


def frozen_kernels(
  params: Mapping[str, Mapping[str, Any]],
  layer_hw: Mapping[str, tuple[int, int]] | None = None,
  impl: str = 'auto',
) -> dict[str, jax.Array | winograd.Prepared]:
  """`{layer: kernel_t}` for `frozen_conv3x3`, from frozen 3×3 'SAME' conv params.

  `layer_hw` gives each layer's input size; with it, 'cpu_winograd' gives the layers `winograd.choose`
  picks a `winograd.Prepared` (both convs of the layer then run in the Winograd domain).
  """
  impl = resolve(impl)
  variants = []
  for name, p in params.items():
    shape = jnp.shape(p['kernel'])
    hw = None if layer_hw is None else layer_hw.get(name)
    use = impl == 'cpu_winograd' and hw is not None
    variants.append((name, winograd.choose(shape[2], shape[3], *hw) if use else None))
  return _prepare({name: p['kernel'] for name, p in params.items()}, tuple(variants))


def frozen_conv3x3(
  x: jax.Array, kernel: jax.Array, kernel_t: jax.Array | winograd.Prepared | None = None
) -> jax.Array:
  """3×3 'SAME' conv of frozen weights; `kernel_t` from `frozen_kernels`, or None (computed here)."""
  kernel = kernel.astype(x.dtype)
  if kernel_t is None or (isinstance(kernel_t, winograd.Prepared) and x.dtype != jnp.float32):
    kernel_t = frozen.transposed(kernel)  # Winograd's rounding is only checked in float32
  elif not isinstance(kernel_t, winograd.Prepared):
    kernel_t = kernel_t.astype(x.dtype)
  return frozen.conv3x3(x, kernel, kernel_t)
