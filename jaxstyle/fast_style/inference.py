"""A trained fast-style network as a function of images: load a run, pick or blend styles, apply.

Any image size works: the image is reflect-padded on the bottom/right up to a multiple of 4 (the
net's two stride-2 downs), stylised and cropped back, as `jaxstyle translate` does. One compile
per padded size; a video's frames share one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxstyle import checkpoint, image_io
from jaxstyle.errors import ConfigError, UserError
from jaxstyle.fast_style import data, presets
from jaxstyle.fast_style import step as fs_step
from jaxstyle.image_io import pad_to_multiple

MULTIPLE = 4  # two stride-2 downs


class FastStyleModel:
  """The net of a fast-style run and its params; `stylize(img, weights)` for uint8 images."""

  def __init__(self, config: ml_collections.ConfigDict, params: Any, step: int = 0):
    self.config = config
    self.net = fs_step.make_net(config)
    self.params = jax.device_put(params)
    self.n_styles = presets.n_styles(config)
    self.labels = data.style_labels(config.styles)  # one per style (validate: 1 unless conditional)
    self.step = step
    self._apply = jax.jit(self._forward)

  @classmethod
  def from_workdir(cls, workdir: str) -> FastStyleModel:
    """The newest checkpoint of a `jaxstyle train --config configs/fast_style_*.py` run."""
    config, params, step = checkpoint.load_run_with_step(workdir)
    if config.get('task') != 'fast_style':
      raise UserError(
        f'{workdir} is a {config.get("task", "cyclegan")!r} run, not a fast-style '
        'one (train one with configs/fast_style_johnson.py or fast_style_multi.py)'
      )
    return cls(ml_collections.ConfigDict(config), params['net'], step)

  def _forward(self, params: Any, x: jax.Array, weights: jax.Array | None) -> jax.Array:
    return self.net.apply({'params': params}, x, weights)

  def style_weights(
    self, style: int | None = None, mix: Sequence[float] | None = None
  ) -> np.ndarray | None:
    """The style input: None for a one-style net, else a weight vector over the styles.

    `style` K is the one-hot vector of style K; `mix` is normalised to sum 1 (Dumoulin et al.'s
    convex combination of γ, β). Neither: style 0.
    """
    if self.n_styles == 1:
      if (style or 0) != 0 or (mix is not None and len(mix) != 1):
        raise ConfigError(
          'this network holds one style: --style and --style-mix need a '
          'conditional (multi-style) run'
        )
      return None
    if style is not None and mix is not None:
      raise ConfigError('give --style or --style-mix, not both')
    if mix is not None:
      w = np.asarray(mix, np.float64)
      if w.shape != (self.n_styles,) or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(
          f'--style-mix needs {self.n_styles} non-negative weights (one per '
          f'style: {", ".join(self.labels)}), got {tuple(mix)}'
        )
      return (w / w.sum()).astype(np.float32)
    k = 0 if style is None else int(style)
    if not 0 <= k < self.n_styles:
      raise ConfigError(
        f'--style {k} is out of range: this network holds {self.n_styles} styles '
        f'(0-{self.n_styles - 1}: {", ".join(self.labels)})'
      )
    return np.eye(self.n_styles, dtype=np.float32)[k]

  def stylize_batch(self, images: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """(N, H, W, 3) uint8 (all one size) -> stylised uint8 of the same size."""
    padded, (h, w) = pad_to_multiple(np.asarray(images, np.float32), MULTIPLE)
    style = (
      None
      if weights is None
      else jnp.broadcast_to(jnp.asarray(weights, jnp.float32), (len(images), self.n_styles))
    )
    y = np.asarray(self._apply(self.params, padded, style))[:, :h, :w]
    return image_io.clip_uint8(y)

  def stylize(self, image: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """One uint8 HxWx3 image (any size) -> its stylised uint8 HxWx3 image."""
    return self.stylize_batch(image_io.as_rgb(image)[None], weights)[0]
