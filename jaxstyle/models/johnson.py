"""Johnson et al. 2016 transformation net for fast (feed-forward) style transfer (issue #15).

`JohnsonNet(upsample='resize', output='linear')` is, layer for layer, the `TransformerNet` of
pytorch/examples `fast_neural_style` (`PYTORCH_EXAMPLE`; 1,679,235 parameters):

  c9s1-32, d64, d128 (3×3 stride-2), R128 ×5, u64, u32 (nearest ×2 + 3×3), c9s1-3, no activation.

Every conv is reflect-pad k//2 + a biased VALID conv (the downs too: pytorch's `ConvLayer`), every
conv but the head is followed by an affine InstanceNorm (eps 1e-5) and ReLU, and a residual block
is conv → IN → ReLU → conv → IN, plus the input, with no ReLU after the add.

Submodule names (pinned by tests/models/test_johnson.py) and the pytorch state-dict keys they
port from (`params_from_state_dict`; conv weights (O, I, kh, kw) -> kernel (kh, kw, I, O)):

  stem, stem_norm                 <- conv1.conv2d.{weight,bias}, in1.{weight,bias}
  down_0, down_0_norm             <- conv2.conv2d.*, in2.*
  down_1, down_1_norm             <- conv3.conv2d.*, in3.*
  block_{i}/conv_{j}, /norm_{j}   <- res{i+1}.conv{j+1}.conv2d.*, res{i+1}.in{j+1}.*
  up_0, up_0_norm                 <- deconv1.conv2d.*, in4.*
  up_1, up_1_norm                 <- deconv2.conv2d.*, in5.*
  head                            <- deconv3.conv2d.*

Convs hold `kernel`, `bias`; norms `scale` (<- weight) and `bias`: (C,) for `n_styles=1`, and
(n_styles, C) for the conditional net (Dumoulin et al. 2017: one γ, β row per style, everything
else shared). With `upsample='transpose'` (Johnson's original: a 3×3 stride-2 transposed conv,
padding 1, output_padding 1) `up_{i}` holds the (kh, kw, Cout, Cin) kernel of a torch
`ConvTranspose2d` weight (Cin, Cout, kh, kw); same parameter count. Resize-conv is the default
because it cannot make checkerboard artefacts (Odena et al. 2016), which style losses amplify.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import UserError
from jaxstyle.models import layers, state_dicts

UPSAMPLES = ('resize', 'transpose')
OUTPUTS = ('linear', 'tanh')
TANH_CENTRE, TANH_SCALE = 127.5, 150.0
# The pytorch example's configuration (its checkpoints, e.g. candy.pth, need exactly this).
PYTORCH_EXAMPLE: dict[str, Any] = dict(upsample='resize', output='linear', n_styles=1)
# The example's saved models carry IN running stats from old torch; its own loader drops them.
_SKIPPED_SUFFIXES = ('.running_mean', '.running_var', '.num_batches_tracked')


class JohnsonWeightError(UserError, ValueError):
  """A fast-style state dict has a missing, unknown or wrongly shaped key."""


def _norm(y: jax.Array, style: Any, n_styles: int, name: str) -> jax.Array:
  """Affine IN with (C,) params for one style (the usual checkpoint layout), else conditional IN."""
  if n_styles == 1:
    return layers.InstanceNorm(affine=True, name=name)(y)
  return layers.ConditionalInstanceNorm(n_styles, name=name)(y, style)


class JohnsonBlock(nn.Module):
  """Reflect-pad 1 → conv3 → IN → ReLU → reflect-pad 1 → conv3 → IN, plus the skip (no ReLU)."""

  n_styles: int = 1
  init_scheme: str = 'normal'
  init_gain: float = 0.02
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array, style: Any = None) -> jax.Array:
    ck = dict(init=self.init_scheme, gain=self.init_gain, dtype=self.dtype, impl=self.conv_impl)
    c = x.shape[-1]
    h = layers.conv(c, 3, 1, 'VALID', 'conv_0', **ck)(layers.reflect_pad(x, 1))
    h = nn.relu(_norm(h, style, self.n_styles, 'norm_0'))
    h = layers.conv(c, 3, 1, 'VALID', 'conv_1', **ck)(layers.reflect_pad(h, 1))
    return x + _norm(h, style, self.n_styles, 'norm_1')


class JohnsonNet(nn.Module):
  """NHWC RGB float in [0, 255] (what `jaxstyle.nst` uses; no preprocessing) -> the stylised image.

  Each side should be a multiple of 4: then the output has the input's size. Otherwise each
  stride-2 down rounds up (ceil(H/2)) and the output sides are 4·ceil(side/4), as in the pytorch
  example; crop if needed. Sides below 5 fail at the stem's reflect pad.

  `output='tanh'` (the default, and what the fast-style trainer is to use) is Johnson's scaled
  tanh, 150·tanh(y), re-centred on 127.5 for our 0-255 range: bounded to [-22.5, 277.5] so the VGG
  losses never chase far out-of-gamut pixels, yet 0 and 255 are reached at finite activations
  (saturating exactly at the gamut would stall gradients there), and a fresh net starts near
  mid-grey instead of near-black. `output='linear'` is the pytorch example's unbounded output
  (clipped only when saved), for parity and for its checkpoints.

  `n_styles > 1` makes every norm conditional: `__call__(x, style)` takes int ids (scalar or (N,))
  or float weights ((n_styles,) or (N, n_styles), e.g. one-hot or a blend). `n_styles=1` takes no
  style. Params float32; `dtype` is the convs' compute dtype (norms compute in float32) and the
  output is float32.
  """

  upsample: str = 'resize'
  output: str = 'tanh'
  n_styles: int = 1
  filters: int = 32
  n_blocks: int = 5
  init_scheme: str = 'normal'
  init_gain: float = 0.02
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'  # 'auto' or one of layers.CONV_IMPLS (same variables for all)

  @nn.compact
  def __call__(self, x: jax.Array, style: Any = None) -> jax.Array:
    if self.upsample not in UPSAMPLES:
      raise ValueError(f'upsample must be one of {UPSAMPLES}, got {self.upsample!r}')
    if self.output not in OUTPUTS:
      raise ValueError(f'output must be one of {OUTPUTS}, got {self.output!r}')
    if self.n_styles < 1:
      raise ValueError(f'n_styles must be >= 1, got {self.n_styles}')
    if (style is None) != (self.n_styles == 1):
      raise ValueError(
        'a single-style net (n_styles=1) takes no style; a conditional net '
        f'(n_styles={self.n_styles}) needs style ids or weights'
      )
    ck = dict(init=self.init_scheme, gain=self.init_gain, dtype=self.dtype, impl=self.conv_impl)
    norm = lambda y, name: nn.relu(_norm(y, style, self.n_styles, name))
    g = self.filters

    y = norm(layers.conv(g, 9, 1, 'VALID', 'stem', **ck)(layers.reflect_pad(x, 4)), 'stem_norm')
    for i in range(2):
      y = layers.conv(g * 2 ** (i + 1), 3, 2, 'VALID', f'down_{i}', **ck)(layers.reflect_pad(y, 1))
      y = norm(y, f'down_{i}_norm')

    for i in range(self.n_blocks):
      y = JohnsonBlock(
        self.n_styles,
        self.init_scheme,
        self.init_gain,
        self.dtype,
        self.conv_impl,
        name=f'block_{i}',
      )(y, style)

    for i in range(2):
      features = g * 2 ** (1 - i)
      if self.upsample == 'transpose':
        y = layers.conv_transpose(features, layers.TORCH_CONVT_PADDING, f'up_{i}', **ck)(y)
      else:
        y = layers.upsample_conv_reflect(features, f'up_{i}', **ck)(y)  # sub-pixel unless xla
      y = norm(y, f'up_{i}_norm')

    y = layers.conv(3, 9, 1, 'VALID', 'head', **ck)(layers.reflect_pad(y, 4)).astype(jnp.float32)
    return TANH_CENTRE + TANH_SCALE * jnp.tanh(y) if self.output == 'tanh' else y


def layer_specs(
  filters: int = 32, n_blocks: int = 5
) -> tuple[list[tuple[str, str, int, int, int]], list[tuple[str, str, int]]]:
  """([(our conv path, torch prefix, cin, cout, k)], [(our norm path, torch prefix, C)])."""
  g, c4 = filters, filters * 4
  convs = [
    ('stem', 'conv1', 3, g, 9),
    ('down_0', 'conv2', g, 2 * g, 3),
    ('down_1', 'conv3', 2 * g, c4, 3),
  ]
  norms = [('stem_norm', 'in1', g), ('down_0_norm', 'in2', 2 * g), ('down_1_norm', 'in3', c4)]
  for i in range(n_blocks):
    for j in range(2):
      convs.append((f'block_{i}/conv_{j}', f'res{i + 1}.conv{j + 1}', c4, c4, 3))
      norms.append((f'block_{i}/norm_{j}', f'res{i + 1}.in{j + 1}', c4))
  convs += [
    ('up_0', 'deconv1', c4, 2 * g, 3),
    ('up_1', 'deconv2', 2 * g, g, 3),
    ('head', 'deconv3', g, 3, 9),
  ]
  norms += [('up_0_norm', 'in4', 2 * g), ('up_1_norm', 'in5', g)]
  return convs, norms


def torch_shapes(upsample: str = 'resize') -> dict[str, tuple[int, ...]]:
  """The pytorch example's state dict (key -> shape); `transpose` stores deconv{1,2} as (I, O, k, k)."""
  convs, norms = layer_specs()
  shapes = {}
  for ours, prefix, cin, cout, k in convs:
    transposed = upsample == 'transpose' and ours.startswith('up_')
    shapes[f'{prefix}.conv2d.weight'] = (cin, cout, k, k) if transposed else (cout, cin, k, k)
    shapes[f'{prefix}.conv2d.bias'] = (cout,)
  for _, prefix, c in norms:
    shapes[f'{prefix}.weight'] = shapes[f'{prefix}.bias'] = (c,)
  return shapes


def params_from_state_dict(sd: Mapping[str, Any], upsample: str = 'resize') -> dict[str, Any]:
  """A pytorch-example `TransformerNet` state dict (arrays) -> `{'params': ...}` for `JohnsonNet`.

  Use with `JohnsonNet(**PYTORCH_EXAMPLE)` (`upsample='transpose'` for a ConvTranspose2d twin).
  IN running stats, which the example's old checkpoints hold and its own loader deletes, are
  skipped; any other unknown key, a missing key or a wrong shape raises, naming the key.
  """
  if upsample not in UPSAMPLES:
    raise ValueError(f'upsample must be one of {UPSAMPLES}, got {upsample!r}')
  _, norms = layer_specs()
  norm_prefixes = tuple(f'{p}.' for _, p, _ in norms)
  arrays = state_dicts.checked_arrays(
    sd,
    torch_shapes(upsample),
    error=JohnsonWeightError,
    network='pytorch/examples fast_neural_style TransformerNet',
    skip=lambda k: k.startswith(norm_prefixes) and k.endswith(_SKIPPED_SUFFIXES),
    shape_hint=lambda k: (
      " (upsample='transpose' expects ConvTranspose2d (I, O, k, k))" if 'deconv' in k else ''
    ),
  )

  params: dict[str, Any] = {}

  def put(path: str, leaves: dict[str, np.ndarray]) -> None:
    node = params
    for part in path.split('/'):
      node = node.setdefault(part, {})
    node.update({k: jnp.asarray(v) for k, v in leaves.items()})

  convs, norms = layer_specs()
  for ours, prefix, *_ in convs:  # Conv2d (O,I,k,k) and ConvTranspose2d (I,O,k,k): same transpose
    put(
      ours,
      {
        'kernel': arrays[f'{prefix}.conv2d.weight'].transpose(2, 3, 1, 0),
        'bias': arrays[f'{prefix}.conv2d.bias'],
      },
    )
  for ours, prefix, _ in norms:
    put(ours, {'scale': arrays[f'{prefix}.weight'], 'bias': arrays[f'{prefix}.bias']})
  return {'params': params}


def count_params(params: Mapping[str, Any]) -> int:
  """Number of scalars in a param tree (what torch's `sum(p.numel() for p in parameters())` gives)."""
  return int(sum(np.prod(np.shape(leaf)) for leaf in jax.tree_util.tree_leaves(params)))
