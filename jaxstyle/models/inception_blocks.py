"""Building blocks of the FID InceptionV3 (`inception.py`): conv+BN, pools, Mixed blocks, resize.

Every layer table lives in `block_convs`, so the forward pass and the weight port read one source.
Names are pytorch-fid's state-dict names; a BasicConv2d's params are `conv/kernel` (HWIO) and
`bn/{scale,bias,mean,var}` (torch `bn.weight/bias/running_mean/running_var`). Running stats are
plain params because the network is inference-only (no `batch_stats` collection to thread).

`Conv` and `BasicConv2d` use `setup` rather than the house style's single `@nn.compact`, so that
`Mixed` can read its 1x1 convs' kernels and run those reading the same input as one GEMM (faster on
CPU: docs/performance.md, "FID Inception on CPU"; the param tree is unchanged).
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.models import layers

BN_EPS = 0.001  # torchvision's BasicConv2d (the TF graph's value)
_HIGHEST = jax.lax.Precision.HIGHEST  # no TF32/bf16 passes: FID features must be reproducible


class ConvSpec(NamedTuple):
  """One BasicConv2d: torch `Conv2d(cin, cout, kernel, stride, padding, bias=False)`."""

  cin: int
  cout: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: tuple[int, int] = (0, 0)


def conv_spec(
  cin: int, cout: int, k: int | tuple[int, int], stride: int = 1, pad: int | tuple[int, int] = 0
) -> ConvSpec:
  """Short form for the layer tables: square kernels/paddings may be given as one int."""
  k2 = (k, k) if isinstance(k, int) else k
  p2 = (pad, pad) if isinstance(pad, int) else pad
  return ConvSpec(cin, cout, k2, stride, p2)


_c = conv_spec


def block_convs(kind: str, cin: int, arg: int = 0) -> dict[str, ConvSpec]:
  """The convs of a Mixed block (torchvision Inception3 layout); `arg` is pool_features / c7."""
  if kind == 'A':
    return {
      'branch1x1': _c(cin, 64, 1),
      'branch5x5_1': _c(cin, 48, 1),
      'branch5x5_2': _c(48, 64, 5, pad=2),
      'branch3x3dbl_1': _c(cin, 64, 1),
      'branch3x3dbl_2': _c(64, 96, 3, pad=1),
      'branch3x3dbl_3': _c(96, 96, 3, pad=1),
      'branch_pool': _c(cin, arg, 1),
    }
  if kind == 'B':
    return {
      'branch3x3': _c(cin, 384, 3, stride=2),
      'branch3x3dbl_1': _c(cin, 64, 1),
      'branch3x3dbl_2': _c(64, 96, 3, pad=1),
      'branch3x3dbl_3': _c(96, 96, 3, stride=2),
    }
  if kind == 'C':
    c7 = arg
    return {
      'branch1x1': _c(cin, 192, 1),
      'branch7x7_1': _c(cin, c7, 1),
      'branch7x7_2': _c(c7, c7, (1, 7), pad=(0, 3)),
      'branch7x7_3': _c(c7, 192, (7, 1), pad=(3, 0)),
      'branch7x7dbl_1': _c(cin, c7, 1),
      'branch7x7dbl_2': _c(c7, c7, (7, 1), pad=(3, 0)),
      'branch7x7dbl_3': _c(c7, c7, (1, 7), pad=(0, 3)),
      'branch7x7dbl_4': _c(c7, c7, (7, 1), pad=(3, 0)),
      'branch7x7dbl_5': _c(c7, 192, (1, 7), pad=(0, 3)),
      'branch_pool': _c(cin, 192, 1),
    }
  if kind == 'D':
    return {
      'branch3x3_1': _c(cin, 192, 1),
      'branch3x3_2': _c(192, 320, 3, stride=2),
      'branch7x7x3_1': _c(cin, 192, 1),
      'branch7x7x3_2': _c(192, 192, (1, 7), pad=(0, 3)),
      'branch7x7x3_3': _c(192, 192, (7, 1), pad=(3, 0)),
      'branch7x7x3_4': _c(192, 192, 3, stride=2),
    }
  if kind in ('E_1', 'E_2'):
    return {
      'branch1x1': _c(cin, 320, 1),
      'branch3x3_1': _c(cin, 384, 1),
      'branch3x3_2a': _c(384, 384, (1, 3), pad=(0, 1)),
      'branch3x3_2b': _c(384, 384, (3, 1), pad=(1, 0)),
      'branch3x3dbl_1': _c(cin, 448, 1),
      'branch3x3dbl_2': _c(448, 384, 3, pad=1),
      'branch3x3dbl_3a': _c(384, 384, (1, 3), pad=(0, 1)),
      'branch3x3dbl_3b': _c(384, 384, (3, 1), pad=(1, 0)),
      'branch_pool': _c(cin, 192, 1),
    }
  raise ValueError(f'unknown Inception block kind {kind!r}')


class Conv(nn.Module):
  """Bias-free conv with torch's symmetric explicit padding (HWIO kernel); `kernel` is readable
  by the parent (`Mixed` merges the kernels of 1x1 convs that read the same input)."""

  spec: ConvSpec

  def setup(self):
    s = self.spec
    self.kernel = self.param('kernel', nn.initializers.lecun_normal(), (*s.kernel, s.cin, s.cout))

  def __call__(self, x: jax.Array) -> jax.Array:
    s = self.spec
    return layers.inference_conv(x, self.kernel.astype(x.dtype), s.stride, s.padding)


class FrozenBatchNorm(nn.Module):
  """Inference BatchNorm from running stats: (x - mean) / sqrt(var + eps) * scale + bias."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = (self.features,)
    scale = self.param('scale', nn.initializers.ones, c)
    bias = self.param('bias', nn.initializers.zeros, c)
    mean = self.param('mean', nn.initializers.zeros, c)
    var = self.param('var', nn.initializers.ones, c)
    return (x - mean) * (scale * jax.lax.rsqrt(var + BN_EPS)) + bias


class BasicConv2d(nn.Module):
  """torchvision's BasicConv2d: conv (no bias) -> BatchNorm(eps=0.001) -> ReLU."""

  spec: ConvSpec

  def setup(self):
    self.conv = Conv(self.spec)
    self.bn = FrozenBatchNorm(self.spec.cout)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.activate(self.conv(x))

  def activate(self, y: jax.Array) -> jax.Array:
    """BatchNorm and ReLU of this layer's conv output `y` (computed elsewhere, e.g. merged)."""
    return nn.relu(self.bn(y))


def max_pool(x: jax.Array, stride: int, pad: int = 0) -> jax.Array:
  """3x3 max pool; padding counts as -inf (torch's MaxPool2d / F.max_pool2d)."""
  p = ((0, 0), (pad, pad), (pad, pad), (0, 0))
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, stride, stride, 1), p)


def avg_pool_exclude_pad(x: jax.Array) -> jax.Array:
  """3x3 stride-1 pad-1 average over the real pixels only (count_include_pad=False, as TF)."""
  p = ((0, 0), (1, 1), (1, 1), (0, 0))
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), p)
  ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
  count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), p)
  return total / count


class Mixed(nn.Module):
  """One Mixed_* block: FIDInceptionA / InceptionB / FIDInceptionC / InceptionD / FIDInceptionE_1/2."""

  kind: str
  cin: int
  arg: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    specs = block_convs(self.kind, self.cin, self.arg)
    convs = {n: BasicConv2d(s, name=n) for n, s in specs.items()}

    def chain(y: jax.Array, *names: str) -> jax.Array:
      for n in names:
        y = convs[n](y)
      return y

    # Every 1x1 conv reading x runs as one GEMM (a wider one is faster on CPU); the avg-pool
    # branch pools its conv's output instead of the input (pool and 1x1 conv are both linear and
    # commute exactly; the pool then runs on 192 channels, not 768): same sums, other order.
    avg_pool_branch = self.kind in ('A', 'C', 'E_1')
    heads = [
      n
      for n, s in specs.items()
      if s.cin == self.cin and s.kernel == (1, 1) and (n != 'branch_pool' or avg_pool_branch)
    ]
    kernels = jnp.concatenate([convs[n].conv.kernel for n in heads], -1)
    merged = layers.pointwise(x, kernels.astype(x.dtype))
    bounds = np.cumsum([0] + [specs[n].cout for n in heads])
    head = {n: merged[..., a:b] for n, a, b in zip(heads, bounds[:-1], bounds[1:])}
    if avg_pool_branch:
      head['branch_pool'] = avg_pool_exclude_pad(head['branch_pool'])
    head = {n: convs[n].activate(y) for n, y in head.items()}

    def branch(first: str, *rest: str) -> jax.Array:
      return chain(head[first] if first in head else convs[first](x), *rest)

    if self.kind == 'A':
      outs = [
        head['branch1x1'],
        branch('branch5x5_1', 'branch5x5_2'),
        branch('branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3'),
        head['branch_pool'],
      ]
    elif self.kind == 'B':
      outs = [
        branch('branch3x3'),
        branch('branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3'),
        max_pool(x, stride=2),
      ]
    elif self.kind == 'C':
      outs = [
        head['branch1x1'],
        branch('branch7x7_1', 'branch7x7_2', 'branch7x7_3'),
        branch(*(f'branch7x7dbl_{i}' for i in range(1, 6))),
        head['branch_pool'],
      ]
    elif self.kind == 'D':
      outs = [
        branch('branch3x3_1', 'branch3x3_2'),
        branch(*(f'branch7x7x3_{i}' for i in range(1, 5))),
        max_pool(x, stride=2),
      ]
    else:  # E_1 / E_2: identical but for the pool (pytorch-fid: E_2's max pool is the TF graph's)
      b3 = head['branch3x3_1']
      d3 = branch('branch3x3dbl_1', 'branch3x3dbl_2')
      pool = (
        head['branch_pool']
        if avg_pool_branch
        else convs['branch_pool'](max_pool(x, stride=1, pad=1))
      )
      outs = [
        head['branch1x1'],
        jnp.concatenate([convs['branch3x3_2a'](b3), convs['branch3x3_2b'](b3)], -1),
        jnp.concatenate([convs['branch3x3dbl_3a'](d3), convs['branch3x3dbl_3b'](d3)], -1),
        pool,
      ]
    return jnp.concatenate(outs, axis=-1)


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) weights of torch's bilinear, align_corners=False, no antialias, along one axis.

  Half-pixel centres: src = (i + 0.5) * n_in / n_out - 0.5, clamped below at 0; the upper
  neighbour is clamped to n_in - 1. Unlike `jax.image.resize`, downscaling does not low-pass.
  """
  scale = n_in / n_out
  src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
  i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
  i1 = np.minimum(i0 + 1, n_in - 1)
  lam = src - i0
  m = np.zeros((n_out, n_in), np.float64)
  np.add.at(m, (np.arange(n_out), i0), 1.0 - lam)
  np.add.at(m, (np.arange(n_out), i1), lam)
  return m


def resize_bilinear(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """NHWC resize equal to F.interpolate(mode='bilinear', align_corners=False, antialias=False)."""
  mh = jnp.asarray(_bilinear_matrix(x.shape[1], size[0]), x.dtype)
  mw = jnp.asarray(_bilinear_matrix(x.shape[2], size[1]), x.dtype)
  return jnp.einsum('oh,nhwc,pw->nopc', mh, x, mw, precision=_HIGHEST)
