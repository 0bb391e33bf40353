"""Image helpers for neural style transfer: loading with clear errors, sizing, colour.

Kept apart from the optimiser so the book's I/O rules (nearest resize to height 400, style
stretched to the content's size) sit in one small, testable place. Decoding, saving and the
progress strip's layout are `jaxstyle.image_io`'s, shared with CycleGAN.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from jaxstyle import image_io
from jaxstyle.errors import ConfigError

_RESAMPLE = {
  'nearest': Image.NEAREST,
  'bilinear': Image.BILINEAR,
  'bicubic': Image.BICUBIC,
  'lanczos': Image.LANCZOS,
}

# YIQ (NTSC) matrix: Y is luminance, I and Q carry the chroma we keep for original colours.
_RGB2YIQ = np.array(
  [
    [0.299, 0.587, 0.114],
    [0.59590059, -0.27455667, -0.32134392],
    [0.21153661, -0.52273617, 0.31119955],
  ],
  np.float64,
)
_YIQ2RGB = np.linalg.inv(_RGB2YIQ)


def load_image(path: str) -> np.ndarray:
  """Upright uint8 HxWx3 RGB (EXIF orientation applied, as for CycleGAN), with the CLI's hint.

  FileNotFoundError for a missing file, ValueError for one that cannot be decoded.
  """
  return image_io.load_rgb(
    path,
    hint='give the path of a PNG/JPEG file (content and style images are positional '
    'arguments: jaxstyle stylize CONTENT STYLE [STYLE2 ...] -o OUT)',
  )


def output_size(shape: tuple[int, ...], height: int = 0, max_side: int = 0) -> tuple[int, int]:
  """(H, W) of the result: the book fixes the height (W = int(w*H/h)); JJ fixes the longest side."""
  h, w = shape[:2]
  if height and max_side:
    raise ValueError('give either image.height or image.max_side, not both')
  if height:
    return int(height), max(1, int(w * height / h))
  if max_side:
    scale = max_side / max(h, w)
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))
  return h, w


def resize(img: np.ndarray, size: tuple[int, int], method: str = 'nearest') -> np.ndarray:
  """Resizes uint8 or float 0-255 HxWx3 to (H, W); 'nearest' matches Keras `load_img`."""
  if method not in _RESAMPLE:
    raise ValueError(f'unknown resize method {method!r}; choose from {sorted(_RESAMPLE)}')
  arr = image_io.clip_uint8(img)
  if arr.shape[:2] == tuple(size):
    return arr.astype(np.float32)
  out = Image.fromarray(arr).resize((size[1], size[0]), _RESAMPLE[method])
  return np.asarray(out, np.float32)


def style_size(
  style_shape: tuple[int, ...], out_size: tuple[int, int], mode: str, scale: float
) -> tuple[int, int]:
  """Size of a style image: 'match' stretches to the output (book) times `scale`; 'scale' keeps
  its aspect with the longest side = ceil(scale * output's longest side) (JJ `-style_scale`).

  `scale` acts in both modes, so --style-scale is never silently ignored; in 'match' mode 1.0
  returns the output size itself (the book). No side goes under 16 px (relu5_1 needs 16).
  """
  if not scale > 0:
    raise ConfigError(f"image.style_scale must be > 0, got {scale!r} (1.0 = the output's size)")
  if mode == 'match':
    if scale == 1.0:
      return tuple(out_size)
    return max(16, int(round(out_size[0] * scale))), max(16, int(round(out_size[1] * scale)))
  if mode != 'scale':
    raise ConfigError(f"unknown image.style_mode {mode!r}; choose 'match' or 'scale'")
  target = math.ceil(scale * max(out_size))
  h, w = style_shape[:2]
  ratio = target / max(h, w)
  return max(16, int(round(h * ratio))), max(16, int(round(w * ratio)))


def scale_sizes(size: tuple[int, int], scales: int) -> list[tuple[int, int]]:
  """Coarse-to-fine schedule: each level halves the side, e.g. 3 scales = 1/4, 1/2, full.

  The aspect ratio is kept; no level has a side under 16 px (relu5_1 needs 16).
  """
  out = []
  for i in reversed(range(max(1, scales))):
    f = min(1.0, max(0.5**i, 16.0 / min(size)))
    level = (int(round(size[0] * f)), int(round(size[1] * f)))
    if not out or out[-1] != level:
      out.append(level)
  return out


def original_colors(result: np.ndarray, content: np.ndarray) -> np.ndarray:
  """Luminance-only transfer (JJ `-original_colors`): Y from the result, I/Q from the content."""
  res = np.asarray(result, np.float64) @ _RGB2YIQ.T
  con = np.asarray(content, np.float64) @ _RGB2YIQ.T
  yiq = np.concatenate([res[..., :1], con[..., 1:]], axis=-1)
  return np.clip(yiq @ _YIQ2RGB.T, 0, 255)


def chroma(img: np.ndarray) -> np.ndarray:
  """The I/Q channels of an RGB 0-255 image (tests and diagnostics)."""
  return (np.asarray(img, np.float64) @ _RGB2YIQ.T)[..., 1:]
