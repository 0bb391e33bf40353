"""CUT / FastCUT networks (Park et al. 2020, taesungp/contrastive-unpaired-translation; docs/cut.md).

The reference defaults (`no_antialias`, `no_antialias_up` both False): a ResNet generator whose
stride-2 convs become stride-1 convs followed by a blur-pool `Downsample` (reflect pad 1, [1,2,1]²/16,
stride 2) and whose transposed convs become a blur `Upsample` (replicate pad, [1,3,3,1]²/16 ×4: the
bilinear ×2 of half-pixel centres with clamped edges) followed by a 3×3 zero-padded conv; the same
blur-pool in the 70×70 PatchGAN; `PatchSampleF`, one two-layer MLP per tapped layer; the PatchNCE
loss. The fixed blur filters are computed in place (separable slices, no variables): the `.filt`
buffers of the reference's state dicts are checked by the port, not stored.

Generator feature taps use the reference's `nn.Sequential` numbering (`generator_layers`); for
ResNet-9 the default `nce_layers` (0, 4, 8, 12, 16) are: 0 the reflect-padded input (C_in, H+6),
4 `down_0`'s conv output before its norm (2g, H), 8 `down_1`'s conv output (4g, H/2), 12 and 16 the
outputs of `block_0` and `block_4` (4g, H/4). Submodule names are pinned (ARCHITECTURE.md): the
generator's are the CycleGAN ResNet's (`stem`, `down_i`, `block_i/conv_{0,1}`, `up_i`, `head`),
the discriminator's `conv_0..n_layers`, `head`, PatchSampleF's `mlp_{i}/dense_{0,1}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxstyle.models import layers
from jaxstyle.models.resnet_gen import ResBlock

NCE_LAYERS = (0, 4, 8, 12, 16)  # the reference's --nce_layers


def blur_downsample(x: jax.Array) -> jax.Array:
  """The reference `Downsample(filt_size=3)`: reflect pad 1, [1,2,1]/4 along H then W, stride 2.

  Output side (n-1)//2 + 1 (n/2 for even n), like the reference's depthwise conv.
  """
  for axis in (1, 2):
    n = x.shape[axis]
    m = (n - 1) // 2 + 1
    pad = [(0, 0)] * 4
    pad[axis] = (1, 1)
    xp = jnp.pad(x, pad, mode='reflect')
    taps = [jax.lax.slice_in_dim(xp, k, k + 2 * m - 1, 2, axis) for k in range(3)]
    x = (taps[0] + taps[2]) * 0.25 + taps[1] * 0.5
  return x


def blur_upsample(x: jax.Array) -> jax.Array:
  """The reference `Upsample(filt_size=4)` (×2): out[2m] = (x[m-1] + 3x[m])/4, out[2m+1] =
  (3x[m] + x[m+1])/4 along H then W, indices clamped at the edges (its replicate pad)."""
  for axis in (1, 2):
    n = x.shape[axis]
    first = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
    last = jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
    prev = jnp.concatenate([first, jax.lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis)
    nxt = jnp.concatenate([jax.lax.slice_in_dim(x, 1, n, axis=axis), last], axis)
    even, odd = x * 0.75 + prev * 0.25, x * 0.75 + nxt * 0.25
    both = jnp.stack([even, odd], axis=axis + 1)
    x = both.reshape(*x.shape[:axis], 2 * n, *x.shape[axis + 1 :])
  return x


def generator_layers(n_blocks: int = 9) -> list[str]:
  """What each index of the reference generator's `nn.Sequential` is (the `nce_layers` numbering)."""
  names = ['reflect_pad_3', 'stem', 'norm', 'relu']
  for i in range(2):
    names += [f'down_{i}', 'norm', 'relu', 'blur_down']
  names += [f'block_{i}' for i in range(n_blocks)]
  for i in range(2):
    names += ['blur_up', f'up_{i}', 'norm', 'relu']
  return names + ['reflect_pad_3', 'head', 'tanh']


class CutGenerator(nn.Module):
  """The reference's anti-aliased `ResnetGenerator`; NHWC in [-1, 1] → tanh, sides multiples of 4.

  `__call__(x)` is the image; `__call__(x, nce_layers)` the list of features at those (strictly
  increasing) indices of `generator_layers`, computed only up to the last of them (the reference's
  `encode_only`); `with_output=True` returns `(image, features)` from one full pass. `init` runs
  every layer whatever `nce_layers`, so every layer gets its params.
  """

  filters: int = 64
  n_blocks: int = 9
  out_channels: int = 3
  norm_eps: float = 1e-5
  eps_mode: str = 'var'
  init_scheme: str = 'xavier'
  init_gain: float = 0.02
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'  # 'auto' or one of layers.CONV_IMPLS (same variables for all)

  @nn.compact
  def __call__(
    self, x: jax.Array, nce_layers: Sequence[int] | None = None, *, with_output: bool = False
  ) -> Any:
    taps = tuple(int(i) for i in (nce_layers or ()))
    n_layers = len(generator_layers(self.n_blocks))
    if any(b <= a for a, b in zip(taps, taps[1:])) or any(not 0 <= i < n_layers for i in taps):
      raise ValueError(
        f'nce_layers must be strictly increasing indices in [0, {n_layers}), got {taps}'
      )
    full = with_output or not taps or self.is_initializing()
    ck = dict(init=self.init_scheme, gain=self.init_gain, dtype=self.dtype, impl=self.conv_impl)
    g = self.filters

    def norm(y: jax.Array) -> jax.Array:
      return layers.InstanceNorm(self.norm_eps, self.eps_mode)(y)

    def conv(features: int, k: int, pad: Any, name: str) -> Any:
      return layers.conv(features, k, 1, pad, name, **ck)

    same = ((1, 1), (1, 1))
    steps: list[Any] = [lambda y: layers.reflect_pad(y, 3), conv(g, 7, 'VALID', 'stem')]
    steps += [norm, nn.relu]
    for i in range(2):
      steps += [conv(g * 2 ** (i + 1), 3, same, f'down_{i}'), norm, nn.relu, blur_downsample]
    block = dict(
      norm_eps=self.norm_eps,
      eps_mode=self.eps_mode,
      init_scheme=self.init_scheme,
      init_gain=self.init_gain,
      dtype=self.dtype,
      conv_impl=self.conv_impl,
    )
    steps += [ResBlock(**block, name=f'block_{i}') for i in range(self.n_blocks)]
    for i in range(2):
      steps += [blur_upsample, conv(g * 2 ** (1 - i), 3, same, f'up_{i}'), norm, nn.relu]
    steps += [lambda y: layers.reflect_pad(y, 3), conv(self.out_channels, 7, 'VALID', 'head')]
    steps += [lambda y: jnp.tanh(y.astype(jnp.float32))]

    feats = []
    for index, step in enumerate(steps):
      x = step(x)
      if index in taps:
        feats.append(x)
        if index == taps[-1] and not full:
          return feats
    if with_output:
      return x, feats
    return feats if taps else x


class CutDiscriminator(nn.Module):
  """The reference's anti-aliased `NLayerDiscriminator`: each stride-2 conv4 (pad 1) becomes a
  stride-1 conv4 (pad 1), its norm and LeakyReLU 0.2, then `blur_downsample`. Same params as the
  CycleGAN PatchGAN (ndf 64: 2,764,737); 30×30 scores at 256² as well."""

  filters: int = 64
  n_layers: int = 3
  norm_eps: float = 1e-5
  eps_mode: str = 'var'
  init_scheme: str = 'xavier'
  init_gain: float = 0.02
  dtype: Any = jnp.float32
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ck = dict(init=self.init_scheme, gain=self.init_gain, dtype=self.dtype, impl=self.conv_impl)
    pad = ((1, 1), (1, 1))
    y = x
    for i in range(self.n_layers + 1):
      y = layers.conv(self.filters * min(2**i, 8), 4, 1, pad, f'conv_{i}', **ck)(y)
      if i > 0:
        y = layers.InstanceNorm(self.norm_eps, self.eps_mode)(y)
      y = nn.leaky_relu(y, 0.2)
      if i < self.n_layers:
        y = blur_downsample(y)
    y = layers.conv(1, 4, 1, pad, 'head', **ck)(y)
    return y.astype(jnp.float32)


def sample_patch_ids(key: jax.Array, n_positions: int, num_patches: int) -> jax.Array:
  """The reference's `np.random.permutation(H*W)[:num_patches]`, from a JAX key: distinct
  positions (row-major h*W + w, the reference's flattening), int32."""
  return jax.random.permutation(key, n_positions)[: min(num_patches, n_positions)].astype(jnp.int32)


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
  """The reference `Normalize(2)`: x / (‖x‖₂ + 1e-7) along `axis`.

  An all-zero row (a small MLP whose ReLU layer is all zero outputs its zero-initialised bias)
  maps to zero, as in the reference, but with a finite gradient (the norm's slope taken as 0 there,
  leaving the numerator's 1/1e-7): √ has an infinite slope at 0, so the plain form's gradient is
  0·∞ = NaN and one such patch turns every weight into NaN (FastCUT with 2 filters did at step 1).
  Other rows get the same values, and their gradients to a few ulp (XLA fuses the ops differently).
  """
  sq = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
  nonzero = sq > 0
  norm = jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, sq, 1.0)), 0.0)
  return x / (norm + 1e-7)


class _MLP(nn.Module):
  features: int
  init_scheme: str
  init_gain: float

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kw = dict(
      kernel_init=layers.kernel_init(self.init_scheme, self.init_gain), param_dtype=jnp.float32
    )
    x = nn.relu(nn.Dense(self.features, name='dense_0', **kw)(x))
    return nn.Dense(self.features, name='dense_1', **kw)(x)


class PatchSampleF(nn.Module):
  """The reference `PatchSampleF` (`--netF mlp_sample`; `use_mlp=False` is `sample`).

  For each feature map (NHWC) it takes the positions `patch_ids[i]` (drawn from `rng` when None:
  `num_patches` distinct positions per layer, one split of `rng` per layer, the same positions for
  every image of the batch, as the reference), maps them through `mlp_{i}` (Linear C→nc, ReLU,
  Linear nc→nc; lazily shaped by each map's channels at `init`) and L2-normalises them. Returns
  (list of (B·n, nc) arrays, batch-major, list of the int32 ids). Pass the ids of the input's pass
  to the output's pass. `num_patches=0` keeps every position and returns (B, H, W, nc) maps,
  normalised, as the reference does there, over the positions rather than the channels.
  """

  features: int = 256
  use_mlp: bool = True
  init_scheme: str = 'xavier'
  init_gain: float = 0.02

  @nn.compact
  def __call__(
    self,
    feats: Sequence[jax.Array],
    num_patches: int = 256,
    patch_ids: Sequence[jax.Array] | None = None,
    rng: jax.Array | None = None,
  ) -> tuple[list[jax.Array], list[jax.Array]]:
    if num_patches > 0 and patch_ids is None and rng is None:
      raise ValueError('PatchSampleF needs patch_ids or an rng key to draw them')
    keys = jax.random.split(rng, len(feats)) if num_patches > 0 and patch_ids is None else None
    out, ids_out = [], []
    for i, feat in enumerate(feats):
      b, h, w, c = feat.shape
      flat = feat.astype(jnp.float32).reshape(b, h * w, c)
      if num_patches > 0:
        ids = (
          patch_ids[i] if patch_ids is not None else sample_patch_ids(keys[i], h * w, num_patches)
        )
        ids = jnp.asarray(ids, jnp.int32)
        x = jnp.take(flat, ids, axis=1).reshape(-1, c)
      else:
        ids, x = jnp.zeros((0,), jnp.int32), flat
      if self.use_mlp:
        x = _MLP(self.features, self.init_scheme, self.init_gain, name=f'mlp_{i}')(x)
      if num_patches > 0:
        x = l2_normalize(x, axis=-1)
      else:
        x = l2_normalize(x, axis=1).reshape(b, h, w, x.shape[-1])
      out.append(x)
      ids_out.append(ids)
    return out, ids_out


def patch_nce_loss(
  feat_q: jax.Array,
  feat_k: jax.Array,
  batch_size: int,
  temperature: float = 0.07,
  all_negatives_from_minibatch: bool = False,
) -> jax.Array:
  """The reference `PatchNCELoss` for one layer: (B·n,) cross-entropies, reduction none.

  Row r's logits are [q_r·k_r, q_r·k_j for the other patches j of the same image (of the whole
  minibatch if `all_negatives_from_minibatch`)] / T, the positive at index 0; the self-pair in the
  negatives is set to -10 before the division (exp(-10/T) ≈ 0), as the reference. No gradient
  flows into `feat_k`.
  """
  feat_k = jax.lax.stop_gradient(feat_k)
  dim = feat_q.shape[-1]
  hi = jax.lax.Precision.HIGHEST  # T = 0.07 magnifies logit rounding ~14×; these products are small
  l_pos = jnp.sum(feat_q * feat_k, axis=-1, keepdims=True)
  groups = 1 if all_negatives_from_minibatch else batch_size
  q = feat_q.reshape(groups, -1, dim)
  k = feat_k.reshape(groups, -1, dim)
  n = q.shape[1]
  l_neg = jnp.einsum('gnd,gmd->gnm', q, k, precision=hi)
  l_neg = jnp.where(jnp.eye(n, dtype=bool)[None], -10.0, l_neg).reshape(-1, n)
  logits = jnp.concatenate([l_pos, l_neg], axis=1) / temperature
  return jax.nn.logsumexp(logits, axis=1) - logits[:, 0]


def patch_nce(
  feats_q: Sequence[jax.Array],
  feats_k: Sequence[jax.Array],
  batch_size: int,
  temperature: float = 0.07,
  all_negatives_from_minibatch: bool = False,
) -> jax.Array:
  """The reference `calculate_NCE_loss` without λ: the mean over layers of each layer's mean."""
  per_layer = [
    jnp.mean(patch_nce_loss(q, k, batch_size, temperature, all_negatives_from_minibatch))
    for q, k in zip(feats_q, feats_k, strict=True)
  ]
  return sum(per_layer) / len(per_layer)


def make_discriminator(model_cfg: Any) -> CutDiscriminator:
  """CUT's D from its `model` section (`networks.cut_model`; discriminator 'patchgan_antialias')."""
  if model_cfg.discriminator != 'patchgan_antialias':
    raise ValueError(
      f"CUT's discriminator is 'patchgan_antialias', got {model_cfg.discriminator!r}"
    )
  return CutDiscriminator(
    filters=model_cfg.disc_filters,
    n_layers=model_cfg.n_layers,
    norm_eps=model_cfg.norm_eps,
    eps_mode=model_cfg.eps_mode,
    init_scheme=model_cfg.init,
    init_gain=model_cfg.init_gain,
    dtype=jnp.dtype(model_cfg.dtype),
    conv_impl=str(model_cfg.conv_impl),
  )


def make_patch_sampler(model_cfg: Any) -> PatchSampleF:
  """CUT's F (`--netF mlp_sample`, `--netF_nc` = `mlp_features`), initialised like its G."""
  return PatchSampleF(model_cfg.mlp_features, True, model_cfg.init, model_cfg.init_gain)
