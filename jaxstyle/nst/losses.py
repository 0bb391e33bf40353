"""Neural style transfer losses: the book's Keras formulas, Gatys et al.'s and
Johnson et al.'s (the `johnson` normalisation, as jcjohnson/fast-neural-style and pytorch/examples
compute it: MSE of features, MSE of Grams normalised by C·h·w).

One implementation serves both the pixel optimisation (`make_objective`) and the fast-style trainer
(`make_terms`, on a batch of outputs with per-image targets). All functions are pure and compute in float32. Normalisers are built from static shapes in Python floats,
because (H*W)^2 overflows int32 already at 216x216 and int64-free code must not depend on x64 mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle.models.vgg import LAYER_NAMES, block_losses, canonical_name, frozen_kernels

BOOK_CONTENT_LAYERS = ('block5_conv2',)
BOOK_STYLE_LAYERS = ('block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1', 'block5_conv1')
NORMALISATIONS = ('book', 'gatys', 'johnson')


def gram(f: jax.Array) -> jax.Array:
  """Unnormalised Gram F̂F̂ᵀ: (h, w, C) -> (C, C), or (N, h, w, C) -> (N, C, C) per image."""
  f = jnp.asarray(f, jnp.float32)
  return _gram(f) if f.ndim == 4 else _gram(f[None])[0]


@jax.custom_vjp
def _gram(f: jax.Array) -> jax.Array:
  return jnp.einsum('nhwc,nhwd->ncd', f, f)


def _gram_fwd(f: jax.Array) -> tuple[jax.Array, jax.Array]:
  return _gram(f), f


def _gram_bwd(f: jax.Array, ct: jax.Array) -> tuple[jax.Array]:
  # One (h·w, C) x (C, C) product straight into the features' layout; autodiff of the einsum makes
  # two, in a transposed (C, h·w) layout, which at 4K costs two extra block-1-sized buffers.
  return (jnp.einsum('nhwd,ncd->nhwc', f, ct + jnp.swapaxes(ct, 1, 2)),)


_gram.defvjp(_gram_fwd, _gram_bwd)


def content_loss(f: jax.Array, target: jax.Array) -> jax.Array:
  """Book content loss Σ(F − P)² (no ½, no mean)."""
  d = jnp.asarray(f, jnp.float32) - jnp.asarray(target, jnp.float32)
  return jnp.sum(d * d)


def content_loss_gatys(f: jax.Array, target: jax.Array) -> jax.Array:
  """Gatys et al. content loss ½Σ(F − P)²."""
  return 0.5 * content_loss(f, target)


def style_loss_book(f: jax.Array, target_gram: jax.Array, height: int, width: int) -> jax.Array:
  """Keras example style loss Σ(G_target − G)² / (4·3²·(H·W)²).

  H, W are the INPUT image size and the 3 is the example's hard-coded `channels = 3`, not N_l / M_l;
  this is what makes the book weight shallow layers 1024:256:64:16:1 (docs/design/nst.md).
  """
  d = jnp.asarray(target_gram, jnp.float32) - gram(f)
  area = float(height) * float(width)
  return jnp.sum(d * d) / (4.0 * 9.0 * area * area)


def style_loss_gatys(f: jax.Array, target_gram: jax.Array) -> jax.Array:
  """Gatys et al. E_l = Σ(G − A)² / (4 N_l² M_l²), N_l channels and M_l = h_l·w_l of the layer."""
  n = float(f.shape[-1])
  m = float(f.shape[-2]) * float(f.shape[-3])
  d = gram(f) - jnp.asarray(target_gram, jnp.float32)
  return jnp.sum(d * d) / (4.0 * n * n * m * m)


def _layer_size(f: jax.Array) -> float:
  """C·h·w of one image's feature map (N, h, w, C) or (h, w, C), as a Python float."""
  return float(f.shape[-1]) * float(f.shape[-2]) * float(f.shape[-3])


def gram_johnson(f: jax.Array) -> jax.Array:
  """Johnson et al.'s Gram FᵀF / (C·h·w): comparable across image sizes (style images differ)."""
  return gram(f) / _layer_size(f)


def content_loss_johnson(f: jax.Array, target: jax.Array) -> jax.Array:
  """Mean of (F − P)² over one image's C·h·w values (summed over a batch's images)."""
  return content_loss(f, target) / _layer_size(f)


def style_loss_johnson(f: jax.Array, target_gram: jax.Array) -> jax.Array:
  """Mean over the C² entries of (G(F) − T)², G and T normalised Grams (summed over a batch)."""
  c = float(f.shape[-1])
  d = gram_johnson(f) - jnp.asarray(target_gram, jnp.float32)
  return jnp.sum(d * d) / (c * c)


def style_target(f: jax.Array, normalisation: str) -> jax.Array:
  """The Gram a style image contributes to the target: normalised for `johnson`, else raw."""
  return gram_johnson(f) if normalisation == 'johnson' else gram(f)


def tv_loss(x: jax.Array, exponent: float = 1.25) -> jax.Array:
  """Keras example total variation Σ(a + b)^exponent over the (H−1)×(W−1) crop, per channel.

  a = (x[:, :H−1, :W−1] − x[:, 1:, :W−1])², b = (x[:, :H−1, :W−1] − x[:, :H−1, 1:])², x NHWC.
  """
  x = jnp.asarray(x, jnp.float32)
  h, w = x.shape[1], x.shape[2]
  corner = x[:, : h - 1, : w - 1, :]
  a = jnp.square(corner - x[:, 1:, : w - 1, :])
  b = jnp.square(corner - x[:, : h - 1, 1:, :])
  return jnp.sum(jnp.power(a + b, exponent))


def _as_images(imgs: Any) -> list[jax.Array]:
  """A single image (HWC or 1HWC), a batch (NHWC) or a list of images -> list of 1HWC arrays."""
  if isinstance(imgs, (list, tuple)):
    items = list(imgs)
  else:
    arr = jnp.asarray(imgs)
    items = [arr] if arr.ndim == 3 else [arr[i] for i in range(arr.shape[0])]
  return [jnp.asarray(im, jnp.float32).reshape((1,) + tuple(jnp.shape(im))[-3:]) for im in items]


def _layer_weights(layer_weights: Any, layers: Sequence[str]) -> dict[str, float]:
  if layer_weights is None:
    return {name: 1.0 / len(layers) for name in layers}
  if isinstance(layer_weights, Mapping):
    weights = {canonical_name(k): float(v) for k, v in layer_weights.items()}
    missing = [name for name in layers if name not in weights]
    if missing:
      raise ValueError(f'layer_weights has no entry for style layers {missing}')
    return {name: weights[name] for name in layers}
  if len(layer_weights) != len(layers):
    raise ValueError(f'{len(layer_weights)} layer_weights for {len(layers)} style layers')
  return {name: float(w) for name, w in zip(layers, layer_weights)}


def _targets(
  net: Any,
  vgg_params: Any,
  content_img: Any,
  style_imgs: Any,
  style_blend: Sequence[float] | None,
  content_layers: Sequence[str],
  style_layers: Sequence[str],
  conv_impl: str,
  normalisation: str,
) -> dict[str, Any]:
  """Content features, blended style Grams and the frozen kernels: everything fixed during a run."""
  feature_fn = jax.jit(lambda p, x: net.apply({'params': p}, x))
  styles = _as_images(style_imgs)
  blend = np.ones(len(styles)) if style_blend is None else np.asarray(style_blend, np.float64)
  if blend.shape != (len(styles),) or blend.sum() <= 0:
    raise ValueError(f'style_blend {style_blend!r} must give one positive weight per style image')
  blend = blend / blend.sum()
  style_grams = {name: 0.0 for name in style_layers}
  for w, img in zip(blend, styles):
    feats = feature_fn(vgg_params, img)
    for name in style_layers:
      style_grams[name] = style_grams[name] + float(w) * style_target(feats[name], normalisation)
  content = _as_images(content_img)[0]
  content_feats = feature_fn(vgg_params, content)
  # The input-gradient kernels (and the Winograd transforms of wide layers on CPU) depend only on
  # the frozen weights and the image size: once here, not per evaluation.
  upto = LAYER_NAMES[: LAYER_NAMES.index(net.outputs[-1]) + 1]
  kernels_t = frozen_kernels({n: vgg_params[n] for n in upto}, tuple(content.shape[1:3]), conv_impl)
  return {
    'content': {name: content_feats[name] for name in content_layers},
    'style': style_grams,
    'kernels_t': kernels_t,
  }


def term_fns(normalisation: str) -> tuple[Callable[..., jax.Array], Callable[..., jax.Array]]:
  """(content(f, target), style(f, target_gram, height, width)) of one normalisation.

  Each sums over a batch's images, so a batch's loss is the sum of its images' losses.
  """
  if normalisation == 'book':
    return content_loss, style_loss_book
  if normalisation == 'gatys':
    return content_loss_gatys, lambda f, t, h, w: style_loss_gatys(f, t)
  if normalisation == 'johnson':
    return content_loss_johnson, lambda f, t, h, w: style_loss_johnson(f, t)
  raise ValueError(f'normalisation must be one of {NORMALISATIONS}, got {normalisation!r}')


def make_terms(
  content_layers: Sequence[str],
  style_layers: Sequence[str],
  *,
  layer_weights: Any = None,
  content_weight: float = 1.0,
  style_weight: float = 100.0,
  tv_weight: float = 20.0,
  normalisation: str = 'book',
  tv_exponent: float = 1.25,
) -> Callable[..., tuple[jax.Array, dict[str, jax.Array]]]:
  """`terms(feats, x, content_targets, style_targets) -> (total, {'loss_content', ...})`.

  The weighted content, style and TV terms of images `x` (N, H, W, C) from their VGG `feats`,
  summed over the N images. Targets broadcast: one content map per image, and a style Gram
  (C, C) for all images or (N, C, C), one per image (the fast-style trainer's per-image styles).
  """
  content_layers = [canonical_name(n) for n in content_layers]
  style_layers = [canonical_name(n) for n in style_layers]
  weights = _layer_weights(layer_weights, style_layers)
  c_fn, style_fn = term_fns(normalisation)

  def terms(
    feats: Mapping[str, jax.Array],
    x: jax.Array,
    content_targets: Mapping[str, Any],
    style_targets: Mapping[str, Any],
  ) -> tuple[jax.Array, dict[str, jax.Array]]:
    height, width = x.shape[1], x.shape[2]
    loss_content = content_weight * sum(
      c_fn(feats[name], content_targets[name]) for name in content_layers
    )
    loss_style = style_weight * sum(
      weights[n] * style_fn(feats[n], style_targets[n], height, width) for n in style_layers
    )
    loss_tv = tv_weight * tv_loss(x, tv_exponent)
    total = loss_content + loss_style + loss_tv
    return total, {'loss_content': loss_content, 'loss_style': loss_style, 'loss_tv': loss_tv}

  return terms


def make_objective(
  vgg: Any,
  vgg_params: Any,
  content_img: Any,
  style_imgs: Any,
  style_blend: Sequence[float] | None = None,
  *,
  content_layers: Sequence[str] = BOOK_CONTENT_LAYERS,
  style_layers: Sequence[str] = BOOK_STYLE_LAYERS,
  layer_weights: Any = None,
  content_weight: float = 1.0,
  style_weight: float = 100.0,
  tv_weight: float = 20.0,
  normalisation: str = 'book',
  tv_exponent: float = 1.25,
  remat: bool = False,
  conv_impl: str = 'auto',
) -> tuple[dict[str, Any], Callable[..., tuple[jax.Array, dict[str, jax.Array]]]]:
  """Builds the NST objective with targets computed once (the book recomputes them every evaluation).

  Args:
    vgg: a `models.vgg.VGG19` (its pool/dtype are kept; outputs are set to the needed layers).
    vgg_params: its params; passed to `loss_fn` again as an argument, never closed over.
    content_img: the content image in network input space (preprocessed), HWC or 1HWC.
    style_imgs: one style image or a list (network input space, any size).
    style_blend: blend weights of the style images (default equal); target Grams are Σ w_i G_i / Σ w_i.
    content_layers, style_layers: layer names (aliases such as relu4_2 accepted).
    layer_weights: per style layer weights w_l (sequence or dict); default 1/n_layers, i.e. the book's
      style_weight / 5 per layer.
    content_weight, style_weight, tv_weight: term weights (book figures: 1 / 100 / 20).
    normalisation: 'book' (Keras example: Σ content, 4·9·(H·W)² style), 'gatys' (½Σ, 4N²M²) or
      'johnson' (MSE of features, MSE of Grams normalised by C·h·w: fast-neural-style's).
    tv_exponent: the Keras TV exponent (1.25).
    remat: compute each loss inside its VGG block and recompute the block in the backward pass
      (`vgg.block_losses`): only block inputs are kept, which is what fits 4K in 24 GB.
    conv_impl: how the frozen convs run (kernels/dispatch.py); 'auto' = Winograd wide layers on CPU.

  Returns:
    (targets, loss_fn): `targets` is a pytree {'content': {layer: features}, 'style': {layer: gram},
    'kernels_t': {layer: transposed kernel or winograd.Prepared}} (everything that stays fixed during the optimisation);
    `loss_fn(x, targets, vgg_params) -> (total, {'loss_content', 'loss_style', 'loss_tv'})` where x is
    the NHWC image in network input space and the three terms are already weighted (they sum to total).
  """
  if normalisation not in NORMALISATIONS:
    raise ValueError(f'normalisation must be one of {NORMALISATIONS}, got {normalisation!r}')
  content_layers = [canonical_name(n) for n in content_layers]
  style_layers = [canonical_name(n) for n in style_layers]
  weights = _layer_weights(layer_weights, style_layers)
  needed = sorted(set(content_layers) | set(style_layers), key=LAYER_NAMES.index)
  net = vgg.clone(outputs=tuple(needed))
  targets = _targets(
    net,
    vgg_params,
    content_img,
    style_imgs,
    style_blend,
    content_layers,
    style_layers,
    conv_impl,
    normalisation,
  )
  c_fn, style_fn = term_fns(normalisation)
  terms_fn = make_terms(
    content_layers,
    style_layers,
    layer_weights=weights,
    content_weight=content_weight,
    style_weight=style_weight,
    tv_weight=tv_weight,
    normalisation=normalisation,
    tv_exponent=tv_exponent,
  )

  def layer_losses(height: int, width: int) -> dict[str, Callable[..., dict[str, jax.Array]]]:
    """Per-layer `(features, targets) -> {'content', 'style'}` terms, for `vgg.block_losses`."""

    def fn(name: str) -> Callable[..., dict[str, jax.Array]]:
      def terms(f: jax.Array, t: Any) -> dict[str, jax.Array]:
        out = {}
        if name in content_layers:
          out['content'] = content_weight * c_fn(f, t['content'])
        if name in style_layers:
          out['style'] = style_weight * weights[name] * style_fn(f, t['style'], height, width)
        return out

      return terms

    return {name: fn(name) for name in needed}

  def loss_fn(
    x: jax.Array, targets: Any, vgg_params: Any
  ) -> tuple[jax.Array, dict[str, jax.Array]]:
    height, width = x.shape[1], x.shape[2]
    if not remat:
      feats = net.apply({'params': vgg_params}, x, targets.get('kernels_t'))
      return terms_fn(feats, x, targets['content'], targets['style'])
    # Losses inside the checkpointed blocks: only block inputs are kept.
    args = {
      name: {k: targets[k][name] for k in ('content', 'style') if name in targets[k]}
      for name in needed
    }
    terms = block_losses(
      vgg_params,
      x,
      layer_losses(height, width),
      args,
      pool=net.pool,
      dtype=net.dtype,
      kernels_t=targets.get('kernels_t'),
    )
    loss_content, loss_style = terms['content'], terms['style']
    loss_tv = tv_weight * tv_loss(x, tv_exponent)
    total = loss_content + loss_style + loss_tv
    return total, {'loss_content': loss_content, 'loss_style': loss_style, 'loss_tv': loss_tv}

  return targets, loss_fn
