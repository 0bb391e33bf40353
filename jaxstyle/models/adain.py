"""AdaIN arbitrary style transfer (Huang & Belongie, ICCV 2017): the AdaIN layer, encoder, decoder.

As naoto0804/pytorch-AdaIN (`net.py`, `function.py`), NHWC and HWIO. Images are RGB in [0, 1] (the
reference's `ToTensor`), in and out. The pieces:

  adain(content, style): the content features given the style features' per-channel mean and std
    over H, W; std = sqrt(unbiased variance + eps) as the reference's `calc_mean_std` (eps 1e-5).
  encode(params, x, kind): relu1_1, relu2_1, relu3_1, relu4_1 of a frozen VGG19. Both kinds start
    with a 1x1 `input_conv` on the [0, 1] RGB input that maps it to what the VGG weights expect:
      'normalised': the reference's `vgg_normalised.pth` (its first layer is that 1x1 conv: RGB ->
        BGR x 255 minus the Caffe means), then 3x3 convs on reflect-padded input and ceil-mode
        2x2 max pools (`nn.MaxPool2d(ceil_mode=True)`);
      'imagenet': our `models/vgg.py` VGG19 (zero 'SAME' padding, floor pools) after an
        `input_conv` that folds the weights' preprocessing (`input_conv_params`). Exact: the 1x1
        conv runs before any padding, so it is not the folding `nst/weights.py` warns against.
    Params: `{'input_conv': {kernel (1, 1, 3, 3), bias}, 'block1_conv1': ..., ...}` (vgg.py's names).
  Decoder: the reference decoder, the encoder mirrored to relu4_1: reflect-pad 1 + 3x3 conv + ReLU
    (none after the last conv), nearest x2 upsampling before conv_1, conv_5 and conv_7, no
    normalisation; 3,505,219 parameters (`NUM_DECODER_PARAMS`).

Pinned names (tests/models/test_adain.py) and the reference state-dict keys they port from
(conv weights (O, I, kh, kw) -> kernel (kh, kw, I, O)); `params_from_state_dict` does the renaming:

  Decoder conv_0 .. conv_8   <- decoder.pth  '{1,5,8,11,14,18,21,25,28}.{weight,bias}'
  input_conv                 <- vgg_normalised.pth '0.{weight,bias}'
  block{B}_conv{I}           <- vgg_normalised.pth '{2,5,9,12,16,19,22,25,29,...,51}.{weight,bias}'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.errors import UserError
from jaxstyle.models import layers, state_dicts, vgg

EPS = 1e-5
KINDS = ('normalised', 'imagenet')
# relu{B}_1 of VGG19: the AdaIN layer reads the last, the style loss all four.
ENCODER_LAYERS: tuple[str, ...] = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1')
# (name, torch index in net.decoder, cin, cout, nearest x2 before the conv, ReLU after it)
DECODER_LAYERS: tuple[tuple[str, int, int, int, bool, bool], ...] = (
  ('conv_0', 1, 512, 256, False, True),
  ('conv_1', 5, 256, 256, True, True),
  ('conv_2', 8, 256, 256, False, True),
  ('conv_3', 11, 256, 256, False, True),
  ('conv_4', 14, 256, 128, False, True),
  ('conv_5', 18, 128, 128, True, True),
  ('conv_6', 21, 128, 64, False, True),
  ('conv_7', 25, 64, 64, True, True),
  ('conv_8', 28, 64, 3, False, False),
)
NUM_DECODER_PARAMS = 3_505_219
# torch indices of net.vgg's convs: the 1x1, then VGG19's 16 3x3 convs in order.
VGG_TORCH_INDICES: tuple[int, ...] = (
  0,
  *(2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51),
)
VGG_NAMES: tuple[str, ...] = ('input_conv', *vgg.LAYER_NAMES)
# The Caffe BGR means the reference's 1x1 conv subtracts (from 0-255 BGR).
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


class AdainWeightError(UserError, ValueError):
  """An AdaIN decoder / VGG state dict has a missing, unknown or wrongly shaped key."""


#### AdaIN


def mean_std(
  feat: jax.Array, eps: float = EPS, mask: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
  """Per-(image, channel) mean and sqrt(unbiased variance + eps) over H, W of NHWC `feat`.

  `mask` (N or 1, H, W, 1) of 0/1 restricts both to the positions where it is 1 (the reference
  Lua test's spatial control computes AdaIN on the region's positions only). Two-pass in float32.
  """
  feat = feat.astype(jnp.float32)
  if mask is None:
    n = feat.shape[1] * feat.shape[2]
    mean = jnp.mean(feat, axis=(1, 2), keepdims=True)
    var = jnp.sum(jnp.square(feat - mean), axis=(1, 2), keepdims=True) / (n - 1)
  else:
    mask = mask.astype(jnp.float32)
    n = jnp.sum(mask, axis=(1, 2), keepdims=True)
    mean = jnp.sum(feat * mask, axis=(1, 2), keepdims=True) / n
    var = jnp.sum(jnp.square(feat - mean) * mask, axis=(1, 2), keepdims=True) / (n - 1)
  return mean, jnp.sqrt(var + eps)


def adain(
  content_feat: jax.Array,
  style_feat: jax.Array,
  eps: float = EPS,
  content_mask: jax.Array | None = None,
) -> jax.Array:
  """AdaIN(x, y) = std(y) (x - mean(x)) / std(x) + mean(y), per image and channel, NHWC.

  Style and content may differ in H, W; a style batch of 1 broadcasts over the content batch.
  `content_mask`: the content statistics over the masked positions only (see `mean_std`); the
  result is defined everywhere, callers keep it where the mask is 1.
  """
  c_mean, c_std = mean_std(content_feat, eps, content_mask)
  s_mean, s_std = mean_std(style_feat, eps)
  return (content_feat.astype(jnp.float32) - c_mean) / c_std * s_std + s_mean


def target_features(
  content_feat: jax.Array,
  style_feats: Sequence[jax.Array],
  weights: Sequence[float] | jax.Array,
  alpha: float | jax.Array = 1.0,
  masks: Sequence[jax.Array] | None = None,
  eps: float = EPS,
) -> jax.Array:
  """The decoder's input: Σ_i w_i AdaIN(f_c, f_s_i), then α·t + (1 - α)·f_c (pytorch-AdaIN test.py).

  With `masks` (one 0/1 (1, H, W, 1) per style, disjoint, covering the content features), region i
  gets AdaIN over its own positions with style i (the Lua reference's spatial control); `weights`
  are then unused. A region may be empty (its style is unused), not a single position.
  """
  if masks is None:
    t = sum(w * adain(content_feat, f, eps) for w, f in zip(weights, style_feats, strict=True))
  else:
    t = sum(  # `where`, not a product: an empty region's statistics are NaN (0 / 0)
      jnp.where(m > 0, adain(content_feat, f, eps, content_mask=m), 0.0)
      for m, f in zip(masks, style_feats, strict=True)
    )
  return alpha * t + (1 - alpha) * content_feat.astype(jnp.float32)


#### Encoder


def input_conv_params(
  channel_order: str, scale: float, mean: Sequence[float], std: Sequence[float]
) -> dict[str, np.ndarray]:
  """The 1x1 conv on [0, 1] RGB equal to a VGG preprocessing `(order(255 x) * scale - mean) / std`.

  The arguments are `nst.weights.Preprocessing`'s fields (network channel order).
  """
  if channel_order not in ('RGB', 'BGR'):
    raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {channel_order!r}")
  kernel = np.zeros((1, 1, 3, 3), np.float64)
  for out in range(3):
    src = 2 - out if channel_order == 'BGR' else out
    kernel[0, 0, src, out] = 255.0 * scale / std[out]
  bias = -np.asarray(mean, np.float64) / np.asarray(std, np.float64)
  return {'kernel': kernel.astype(np.float32), 'bias': bias.astype(np.float32)}


def _conv(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
  y = jax.lax.conv_general_dilated(
    x, kernel.astype(x.dtype), (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )
  return y + bias.astype(x.dtype)


def _maxpool_ceil(x: jax.Array) -> jax.Array:
  """2x2 stride-2 max pool with ceil_mode=True: odd sides keep a last, partial window."""
  n, h, w, c = x.shape
  x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
  return x.reshape(n, (h + 1) // 2, 2, (w + 1) // 2, 2, c).max(axis=(2, 4))


def encode(
  params: Mapping[str, Any],
  x: jax.Array,
  kind: str = 'normalised',
  outputs: Sequence[str] = ENCODER_LAYERS,
  kernels_t: Mapping[str, Any] | None = None,
  pool: str = 'max',
) -> dict[str, jax.Array]:
  """`{name: features}` for `outputs` (reluB_I names) of NHWC RGB [0, 1] images `x`.

  `pool='avg'` (kind 'imagenet' only) pools by averaging: the trainer's cross-device gradient
  test uses it, as max pooling's gradient jumps at near-ties (docs/development.md "Tolerances").

  Stops after the deepest output. `kernels_t` (kind 'imagenet' only): `vgg.frozen_kernels` of the
  3x3 convs, for the NST fast path of frozen weights. Each side must be at least 16 (reflect pads).
  """
  if kind not in KINDS:
    raise ValueError(f'encoder kind must be one of {KINDS}, got {kind!r}')
  canon = {vgg.canonical_name(o): o for o in outputs}
  p = params['input_conv']
  x = _conv(jnp.asarray(x, jnp.float32), p['kernel'], p['bias'])
  if kind == 'imagenet':
    net = vgg.VGG19(pool=pool, outputs=tuple(outputs))
    trunk = {k: v for k, v in params.items() if k != 'input_conv'}
    return net.apply({'params': trunk}, x, kernels_t)
  deepest = max(vgg.LAYER_NAMES.index(c) for c in canon)
  feats: dict[str, jax.Array] = {}
  for i, name in enumerate(vgg.LAYER_NAMES[: deepest + 1]):
    if i and name.endswith('_conv1'):
      x = _maxpool_ceil(x)
    x = jax.nn.relu(_conv(layers.reflect_pad(x, 1), params[name]['kernel'], params[name]['bias']))
    if name in canon:
      feats[canon[name]] = x
  return feats


def encoder_shapes(upto: str = 'block4_conv1') -> dict[str, dict[str, tuple[int, ...]]]:
  """HWIO kernel / bias shapes of the encoder params up to `upto` (inclusive)."""
  shapes = {'input_conv': {'kernel': (1, 1, 3, 3), 'bias': (3,)}}
  last = vgg.LAYER_NAMES.index(vgg.canonical_name(upto))
  for name in vgg.LAYER_NAMES[: last + 1]:
    shapes[name] = vgg.expected_shapes()[name]
  return shapes


def random_encoder(
  seed: int = 0, kind: str = 'normalised', upto: str = 'block4_conv1'
) -> dict[str, Any]:
  """Seeded He-normal VGG convs (NumPy: no compile) and the kind's real input conv; for tests."""
  rng = np.random.default_rng(seed)
  params = {}
  for name, s in encoder_shapes(upto).items():
    if name == 'input_conv':
      continue
    fan_in = int(np.prod(s['kernel'][:3]))
    kernel = rng.standard_normal(s['kernel']) * np.sqrt(2.0 / fan_in)
    params[name] = {'kernel': kernel.astype(np.float32), 'bias': np.zeros(s['bias'], np.float32)}
  if kind == 'normalised':
    scale, mean, order = 1.0, CAFFE_BGR_MEAN, 'BGR'
  else:  # torchvision's preprocessing
    scale, mean, order = 1 / 255, (0.485, 0.456, 0.406), 'RGB'
  std = (1.0, 1.0, 1.0) if kind == 'normalised' else (0.229, 0.224, 0.225)
  params['input_conv'] = input_conv_params(order, scale, mean, std)
  return params


#### Decoder


def _torch_bias_init(fan_in: int) -> Callable[..., jax.Array]:
  bound = 1.0 / np.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class Decoder(nn.Module):
  """relu4_1 features (N, h, w, 512) -> RGB [0, 1]-range image (N, 8h, 8w, 3), unbounded.

  PyTorch's default init (kaiming_uniform(a=sqrt(5)): U(+-1/sqrt(fan_in)) for kernels and biases),
  as the reference trains from. `conv_impl`: layers.Conv's `impl` (same variables for all).
  Params float32; `dtype` is the convs' compute dtype; the output is float32.
  """

  dtype: Any = jnp.float32
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.astype(self.dtype)
    for name, _, cin, cout, up, relu in DECODER_LAYERS:
      conv = layers.Conv(
        cout,
        (3, 3),
        padding='VALID',
        op='upsample_reflect' if up else 'conv',
        kernel_init=nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform'),
        bias_init=_torch_bias_init(9 * cin),
        dtype=self.dtype,
        impl=self.conv_impl,
        name=name,
      )
      x = conv(x) if up else conv(layers.reflect_pad(x, 1))
      if relu:
        x = nn.relu(x)
    return x.astype(jnp.float32)


def init_decoder(rng: jax.Array, conv_impl: str = 'auto') -> dict[str, Any]:
  """Fresh decoder params (PyTorch default init)."""
  return Decoder(conv_impl=conv_impl).init(rng, jnp.zeros((1, 2, 2, 512), jnp.float32))['params']


#### Ports (state dict -> params)


def decoder_torch_shapes() -> dict[str, tuple[int, ...]]:
  """`net.decoder`'s state dict: key -> shape."""
  shapes = {}
  for _, idx, cin, cout, _, _ in DECODER_LAYERS:
    shapes[f'{idx}.weight'] = (cout, cin, 3, 3)
    shapes[f'{idx}.bias'] = (cout,)
  return shapes


def vgg_torch_shapes() -> dict[str, tuple[int, ...]]:
  """`net.vgg`'s state dict (`vgg_normalised.pth`, all 17 convs): key -> shape."""
  shapes = {'0.weight': (3, 3, 1, 1), '0.bias': (3,)}
  for idx, s in zip(VGG_TORCH_INDICES[1:], vgg.expected_shapes().values(), strict=True):
    kh, kw, cin, cout = s['kernel']
    shapes[f'{idx}.weight'] = (cout, cin, kh, kw)
    shapes[f'{idx}.bias'] = (cout,)
  return shapes


def _renamed(arrays: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, int]]) -> dict[str, Any]:
  return {
    name: {
      'kernel': np.ascontiguousarray(arrays[f'{idx}.weight'].transpose(2, 3, 1, 0)),
      'bias': arrays[f'{idx}.bias'],
    }
    for name, idx in pairs
  }


def params_from_state_dict(sd: Mapping[str, Any], network: str) -> dict[str, Any]:
  """A reference state dict (arrays) -> params: `network` 'decoder' (Decoder) or 'vgg' (encode).

  Any unknown or missing key or wrong shape raises `AdainWeightError` naming the key.
  """
  if network == 'decoder':
    expected, what = decoder_torch_shapes(), "pytorch-AdaIN's net.decoder (decoder.pth)"
    pairs = [(name, idx) for name, idx, *_ in DECODER_LAYERS]
  elif network == 'vgg':
    expected, what = vgg_torch_shapes(), "pytorch-AdaIN's net.vgg (vgg_normalised.pth)"
    pairs = list(zip(VGG_NAMES, VGG_TORCH_INDICES, strict=True))
  else:
    raise ValueError(f"network must be 'decoder' or 'vgg', got {network!r}")
  arrays = state_dicts.checked_arrays(
    sd, expected, skip=lambda k: False, error=AdainWeightError, network=what
  )
  return _renamed(arrays, pairs)
