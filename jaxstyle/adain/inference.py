"""An AdaIN model as a function of images: any content size, any style image, α, blends, masks.

A model is a decoder plus the encoder it was trained with: a `jaxstyle train` run of task 'adain'
(its config names the VGG19 and pooling; `adain.step` rebuilds that encoder), or a
`port-weights --kind adain-decoder` folder with the reference's `vgg_normalised` encoder (a .pth or
its `--kind adain-vgg` folder). Images are uint8 RGB at the edges and [0, 1] floats inside (the
reference's `ToTensor`).

Content of any size: reflect-padded on the bottom/right to a multiple of 8 (the encoder pools three
times), stylised and cropped back; one compile per padded size, so a video's frames share one.
Styles are resized to `style_size` on the shorter side (the reference's 512; 0 keeps them) and
encoded once per content size change only when `preserve_color` recolours them per content.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from jaxstyle import checkpoint, image_io
from jaxstyle.errors import ConfigError, UserError
from jaxstyle.models import adain as adain_model
from jaxstyle.ports import adain as adain_port

MULTIPLE = 8  # three 2x2 pools to relu4_1
MIN_SIDE = 16  # relu4_1 at least 2x2: the decoder's first reflect pad needs 2


class MaskError(UserError, ValueError):
  """A --mask that does not fit the content image or the styles."""


def coral(source: np.ndarray, target: np.ndarray) -> np.ndarray:
  """`source` (H, W, 3 floats) given `target`'s channel means and covariance (the reference's coral).

  Both are standardised per channel (unbiased std), their 3x3 correlation matrices get +I, and the
  source is mapped by sqrt(C_t) sqrt(C_s)^-1 then scaled and shifted to the target's statistics.
  float64; matrix square roots by SVD as the reference (symmetric positive definite here).
  """

  def standardised(x):
    f = np.asarray(x, np.float64).reshape(-1, 3).T
    mean, std = f.mean(axis=1, keepdims=True), f.std(axis=1, ddof=1, keepdims=True)
    return (f - mean) / std, mean, std

  def sqrtm(m):
    u, d, vt = np.linalg.svd(m)
    return u @ np.diag(np.sqrt(d)) @ vt

  s_norm, _, _ = standardised(source)
  t_norm, t_mean, t_std = standardised(target)
  s_cov, t_cov = s_norm @ s_norm.T + np.eye(3), t_norm @ t_norm.T + np.eye(3)
  out = sqrtm(t_cov) @ np.linalg.inv(sqrtm(s_cov)) @ s_norm
  return (out * t_std + t_mean).T.reshape(np.shape(source))


def resize_short(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 image with its shorter side `size` (bilinear, as torchvision's Resize); 0 keeps it."""
  h, w = image.shape[:2]
  if not size or min(h, w) == size:
    return image
  scale = size / min(h, w)
  new = (max(1, round(w * scale)), max(1, round(h * scale)))
  return np.asarray(Image.fromarray(image).resize(new, Image.BILINEAR))


def mask_labels(mask: np.ndarray, n_styles: int) -> np.ndarray:
  """A grey mask (H, W, uint8) -> style index per pixel: n_styles evenly spaced grey levels, white
  first (with two styles, as the reference: white = the first style, black = the second)."""
  level = np.rint(mask.astype(np.float64) / 255.0 * (n_styles - 1)).astype(np.int64)
  return (n_styles - 1) - level


def _check_side(image: np.ndarray, what: str) -> None:
  if min(image.shape[:2]) < MIN_SIDE:
    raise UserError(
      f'{what} is {image.shape[1]}x{image.shape[0]}: AdaIN needs at least '
      f'{MIN_SIDE} pixels on each side (the encoder pools three times)'
    )


class AdainModel:
  """Decoder + encoder params; `style_features` then `stylize` on uint8 images."""

  def __init__(
    self,
    decoder: adain_model.Decoder,
    decoder_params: Any,
    encoder_params: Any,
    kind: str,
    pool: str = 'max',
    step: int | None = None,
  ):
    self.decoder, self.kind, self.pool, self.step = decoder, kind, pool, step
    self.decoder_params = jax.device_put(decoder_params)
    self.encoder_params = jax.device_put(
      {k: encoder_params[k] for k in adain_model.encoder_shapes()}
    )
    self._encode = jax.jit(self._encode_fn)
    self._transfer = jax.jit(self._transfer_fn)

  @classmethod
  def load(cls, model: str, encoder: str | None = None) -> AdainModel:
    """A run of task 'adain' (config.json + checkpoints), or a ported decoder folder + `encoder`."""
    if os.path.isfile(os.path.join(model, 'config.json')):
      from jaxstyle.adain import step as adain_step  # the encoder exactly as the trainer built it

      config, params, step = checkpoint.load_run_with_step(model)
      if config.get('task') != 'adain':
        raise UserError(f'{model} is a {config.get("task", "cyclegan")!r} run, not an AdaIN one')
      if encoder:
        raise UserError(f'--encoder: {model} is a training run; it uses the VGG19 its config names')
      config = ml_collections.ConfigDict(config)
      vgg = adain_step.frozen_inputs(config)['vgg']
      return cls(
        adain_step.make_decoder(config),
        params['decoder'],
        vgg,
        adain_step.KIND,
        config.vgg.pool,
        step,
      )
    if not encoder and os.path.isfile(os.path.join(model, 'jaxstyle.json')):
      raise UserError(
        f'--model {model!r} is a ported decoder: pass --encoder PATH, the VGG it was trained '
        'with (vgg_normalised.pth, or its port-weights --kind adain-vgg folder)'
      )
    try:
      params, meta = checkpoint.load_params(model)
    except FileNotFoundError:
      raise UserError(
        f'--model {model!r} is neither an AdaIN training run (no config.json) nor a '
        'port-weights --kind adain-decoder folder'
      ) from None
    if meta.get('model_cfg', {}).get('net') != adain_port.DECODER_NET:
      raise UserError(f'--model {model!r} holds {meta.get("kind")!r} weights, not an AdaIN decoder')
    return cls(adain_model.Decoder(), params, adain_port.load_encoder(encoder), 'normalised')

  def _encode_fn(self, params: Any, x: jax.Array) -> jax.Array:
    return adain_model.encode(params, x, self.kind, ('relu4_1',), pool=self.pool)['relu4_1']

  def _transfer_fn(self, dec, enc, x, style_feats, weights, alpha, masks):
    f_c = self._encode_fn(enc, x)
    t = adain_model.target_features(f_c, style_feats, weights, alpha, masks)
    return self.decoder.apply({'params': dec}, t)

  def style_features(
    self, style: np.ndarray, size: int = 512, color_of: np.ndarray | None = None
  ) -> jax.Array:
    """relu4_1 of a uint8 style image resized to `size`; `color_of`: recolour it first (coral)."""
    style = resize_short(image_io.as_rgb(style), size)
    _check_side(style, 'a style image')
    x = style.astype(np.float32) / 255.0
    if color_of is not None:
      x = coral(x, np.asarray(color_of, np.float32) / 255.0).astype(np.float32)
    return self._encode(self.encoder_params, jnp.asarray(x[None]))

  def stylize(
    self,
    content: np.ndarray,
    style_feats: Sequence[jax.Array],
    weights: Sequence[float] | None = None,
    alpha: float = 1.0,
    labels: np.ndarray | None = None,
  ) -> np.ndarray:
    """uint8 content (any size >= 16) -> uint8 result of its size.

    `weights`: one per style (default equal, normalised to sum 1); `labels`: a style index per
    content pixel (`mask_labels`), for spatial control instead of a blend.
    """
    content = image_io.as_rgb(content)
    _check_side(content, 'the content image')
    x, (h, w) = image_io.pad_to_multiple(content[None].astype(np.float32) / 255.0, MULTIPLE)
    n = len(style_feats)
    w_arr = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64)
    masks = None if labels is None else self._feature_masks(labels, n, x.shape[1:3])
    y = self._transfer(
      self.decoder_params,
      self.encoder_params,
      jnp.asarray(x),
      tuple(style_feats),
      jnp.asarray(w_arr / w_arr.sum(), jnp.float32),
      jnp.float32(alpha),
      masks,
    )
    return image_io.to_uint8(np.clip(np.asarray(y)[0, :h, :w], 0.0, 1.0))

  @staticmethod
  def _feature_masks(labels: np.ndarray, n: int, padded_hw: tuple[int, int]) -> tuple:
    """Per style a (1, H/8, W/8, 1) 0/1 mask: the labels padded like the content, sampled at the
    centre of each 8x8 cell (nearest, as the reference's image.scale 'simple')."""
    ph, pw = padded_hw[0] - labels.shape[0], padded_hw[1] - labels.shape[1]
    padded = np.pad(labels, ((0, ph), (0, pw)), mode='edge')
    cells = padded[MULTIPLE // 2 :: MULTIPLE, MULTIPLE // 2 :: MULTIPLE]
    masks = []
    for i in range(n):
      m = cells == i
      if m.sum() == 1:  # an unbiased variance needs two positions; an empty region is unused
        raise MaskError(
          f'--mask: the region of style {i + 1} covers {int(m.sum())} of the '
          f'{cells.size} feature cells (8x8 pixels each); AdaIN needs none or at least 2'
        )
      masks.append(jnp.asarray(m[None, :, :, None], jnp.float32))
    return tuple(masks)


def parse_weights(text: str | None, n_styles: int) -> list[float] | None:
  """`--style-mix 1,3` -> [0.25, 0.75]: one non-negative number per style, normalised."""
  if text is None:
    return None
  try:
    w = [float(v) for v in text.split(',') if v.strip()]
  except ValueError:
    raise ConfigError(f'--style-mix {text!r}: expected comma-separated numbers, e.g. 1,3') from None
  if len(w) != n_styles or min(w) < 0 or sum(w) <= 0:
    raise ConfigError(
      f'--style-mix needs {n_styles} non-negative numbers (one per --style-image), not all '
      f'0; got {text!r}'
    )
  return [v / sum(w) for v in w]
