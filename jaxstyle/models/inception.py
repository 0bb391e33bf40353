"""The FID InceptionV3 (2015-12-05 TF graph, as pytorch-fid builds it) up to the 2048-d pool3 feature.

pytorch-fid's `InceptionV3(resize_input=True, normalize_input=True)` with its `FIDInceptionA/C/E_1/
E_2` patches: avg pools that ignore padding in the A, C and E_1 blocks, a 3x3 stride-1 max pool in
Mixed_7c's branch_pool, input resized bilinearly (no antialias) to 299x299 and mapped [0,1]->[-1,1].
Inference only: BatchNorm uses running statistics (eps 0.001).

Param tree, pinned to pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` names (a port maps onto
it one key at a time, see `params_from_state_dict`):

  {'Conv2d_1a_3x3': {'conv': {'kernel'}, 'bn': {'scale', 'bias', 'mean', 'var'}}, ...,
   'Mixed_5b': {'branch1x1': {'conv': ..., 'bn': ...}, ...}, ..., 'Mixed_7c': {...}}

  torch `X.conv.weight` (O,I,kh,kw)  -> `X/conv/kernel` (kh,kw,I,O)
  torch `X.bn.weight / bias`         -> `X/bn/scale / bias`
  torch `X.bn.running_mean / _var`   -> `X/bn/mean / var`
  torch `fc.weight` (1008,2048) / `fc.bias` -> `fc/kernel` (2048,1008) / `fc/bias`, kept when the
      file has them (the Inception Score's logits); `*.num_batches_tracked` are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import UserError
from jaxstyle.models import state_dicts
from jaxstyle.models.inception_blocks import BasicConv2d, ConvSpec, Mixed, block_convs, max_pool
from jaxstyle.models.inception_blocks import conv_spec as _c
from jaxstyle.models.inception_blocks import resize_bilinear as resize_bilinear

INPUT_SIZE = (299, 299)
FEATURE_DIM = 2048
NUM_CLASSES = 1008  # the 2015-12-05 graph's softmax: 1000 ImageNet classes + 8 unused

# The stem: name -> conv, in order (maxpools after Conv2d_2b_3x3 and Conv2d_4a_3x3).
STEM: dict[str, ConvSpec] = {
  'Conv2d_1a_3x3': _c(3, 32, 3, stride=2),
  'Conv2d_2a_3x3': _c(32, 32, 3),
  'Conv2d_2b_3x3': _c(32, 64, 3, pad=1),
  'Conv2d_3b_1x1': _c(64, 80, 1),
  'Conv2d_4a_3x3': _c(80, 192, 3),
}
# Mixed blocks: name -> (kind, in channels, pool_features / channels_7x7), as fid_inception_v3().
MIXED: dict[str, tuple[str, int, int]] = {
  'Mixed_5b': ('A', 192, 32),
  'Mixed_5c': ('A', 256, 64),
  'Mixed_5d': ('A', 288, 64),
  'Mixed_6a': ('B', 288, 0),
  'Mixed_6b': ('C', 768, 128),
  'Mixed_6c': ('C', 768, 160),
  'Mixed_6d': ('C', 768, 160),
  'Mixed_6e': ('C', 768, 192),
  'Mixed_7a': ('D', 768, 0),
  'Mixed_7b': ('E_1', 1280, 0),
  'Mixed_7c': ('E_2', 2048, 0),
}
_SKIPPED_SUFFIXES = ('.num_batches_tracked',)
FC_SHAPES = {'fc.weight': (NUM_CLASSES, FEATURE_DIM), 'fc.bias': (NUM_CLASSES,)}


class InceptionWeightError(UserError, ValueError):
  """An Inception state dict has a missing, unknown or wrongly shaped key."""


def conv_specs() -> dict[str, ConvSpec]:
  """Every BasicConv2d by its dotted torch prefix (`Conv2d_1a_3x3`, `Mixed_5b.branch1x1`, ...)."""
  specs = dict(STEM)
  for block, (kind, cin, arg) in MIXED.items():
    specs.update({f'{block}.{n}': s for n, s in block_convs(kind, cin, arg).items()})
  return specs


def torch_shapes() -> dict[str, tuple[int, ...]]:
  """The pool3 part of the pytorch-fid state dict: torch key -> shape (fc and counters excluded)."""
  shapes = {}
  for prefix, s in conv_specs().items():
    shapes[f'{prefix}.conv.weight'] = (s.cout, s.cin, *s.kernel)
    for k in ('weight', 'bias', 'running_mean', 'running_var'):
      shapes[f'{prefix}.bn.{k}'] = (s.cout,)
  return shapes


def preprocess(images: jax.Array) -> jax.Array:
  """[0,1] NHWC images of any size -> the 299x299 [-1,1] input the TF graph was trained on."""
  x = images.astype(jnp.float32)
  if x.shape[1:3] != INPUT_SIZE:
    x = resize_bilinear(x, INPUT_SIZE)
  return 2.0 * x - 1.0


class _Logits(nn.Module):
  """The 1008-way classifier, applied without its bias: torch-fidelity's `logits_unbiased`,
  which its Inception Score uses (the bias is stored, for completeness, but unused)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', nn.initializers.zeros, (FEATURE_DIM, NUM_CLASSES))
    self.param('bias', nn.initializers.zeros, (NUM_CLASSES,))
    return jnp.dot(x, kernel, precision=jax.lax.Precision.HIGHEST)


class FIDInceptionV3(nn.Module):
  """NHWC float32 images in [0, 1], any HxW -> (N, 2048) pool3 features (pytorch-fid's block 3).

  `resize_input=False` takes already-`preprocess`ed 299x299 [-1,1] input, so callers that see
  several image sizes can compile the trunk once and resize outside it. `logits=True` returns
  (features, unbiased 1008-way logits) from the same forward pass (needs `fc` params).
  """

  resize_input: bool = True
  logits: bool = False

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = preprocess(images) if self.resize_input else images.astype(jnp.float32)
    for name, spec in STEM.items():
      x = BasicConv2d(spec, name=name)(x)
      if name in ('Conv2d_2b_3x3', 'Conv2d_4a_3x3'):
        x = max_pool(x, stride=2)
    for name, (kind, cin, arg) in MIXED.items():
      x = Mixed(kind, cin, arg, name=name)(x)
    feats = jnp.mean(x, axis=(1, 2))  # adaptive avg pool to 1x1, squeezed
    if self.logits:
      return feats, _Logits(name='fc')(feats)
    return feats


def has_logits(params: Mapping[str, Any]) -> bool:
  """Whether `{'params': ...}` holds the classifier (`fc`) the Inception Score needs."""
  return 'fc' in params.get('params', params)


def params_from_state_dict(sd: Mapping[str, Any]) -> dict[str, Any]:
  """pytorch-fid's .pth key layout (arrays, NCHW/OIHW) -> `FIDInceptionV3` params.

  Every needed key must be present with its exact shape and no unknown key may appear (errors name
  the key), so a torchvision Inception3 or a truncated file fails here, not as wrong FID numbers.
  """
  arrays = state_dicts.checked_arrays(
    sd,
    torch_shapes(),
    error=InceptionWeightError,
    network='pytorch-fid pt_inception-2015-12-05',
    skip=lambda k: k in FC_SHAPES or k.endswith(_SKIPPED_SUFFIXES),
  )
  params: dict[str, Any] = {}
  present = [k for k in FC_SHAPES if k in sd]
  if present:  # both or neither, of exactly the 1008-way shapes
    fc = state_dicts.checked_arrays(
      {k: sd[k] for k in present},
      FC_SHAPES,
      skip=lambda k: False,
      error=InceptionWeightError,
      network='the 1008-way fc of pt_inception-2015-12-05',
    )
    params['fc'] = {
      'kernel': jnp.asarray(fc['fc.weight'].T),
      'bias': jnp.asarray(fc['fc.bias']),
    }
  for prefix in conv_specs():
    node = params
    for part in prefix.split('.'):
      node = node.setdefault(part, {})
    node['conv'] = {'kernel': jnp.asarray(arrays[f'{prefix}.conv.weight'].transpose(2, 3, 1, 0))}
    node['bn'] = {
      ours: jnp.asarray(arrays[f'{prefix}.bn.{theirs}'])
      for ours, theirs in (
        ('scale', 'weight'),
        ('bias', 'bias'),
        ('mean', 'running_mean'),
        ('var', 'running_var'),
      )
    }
  return {'params': params}


def count_params(params: Mapping[str, Any]) -> dict[str, int]:
  """Counts as torch does: `parameters` (conv kernels, BN scale/bias) and `buffers` (running stats)."""
  counts = {'parameters': 0, 'buffers': 0}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    name = getattr(path[-1], 'key', str(path[-1]))
    counts['buffers' if name in ('mean', 'var') else 'parameters'] += int(np.prod(leaf.shape))
  return counts
