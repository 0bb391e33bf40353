"""Image helpers for neural style transfer: loading with clear errors, sizing, colour, strips.

Kept apart from the optimiser so the book's I/O rules (nearest resize to height 400, style
stretched to the content's size) sit in one small, testable place.
"""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

_RESAMPLE = {
    "nearest": Image.NEAREST,
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "lanczos": Image.LANCZOS,
}

# YIQ (NTSC) matrix: Y is luminance, I and Q carry the chroma we keep for original colours.
_RGB2YIQ = np.array([[0.299, 0.587, 0.114],
                     [0.59590059, -0.27455667, -0.32134392],
                     [0.21153661, -0.52273617, 0.31119955]], np.float64)
_YIQ2RGB = np.linalg.inv(_RGB2YIQ)


def load_image(path: str) -> np.ndarray:
  """Reads an image as uint8 HxWx3 RGB, failing with the path and a hint instead of a PIL trace."""
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"image {path!r} does not exist; give the path of a PNG/JPEG file (content and style "
        "images are positional arguments: jaxstyle stylize CONTENT STYLE [STYLE2 ...] -o OUT)")
  try:
    with Image.open(path) as img:
      return np.asarray(img.convert("RGB"), dtype=np.uint8)
  except (UnidentifiedImageError, OSError) as err:
    raise ValueError(
        f"cannot read {path!r} as an image ({err}); convert it to PNG or JPEG and try again"
    ) from err


def output_size(shape: tuple[int, ...], height: int = 0, max_side: int = 0) -> tuple[int, int]:
  """(H, W) of the result: the book fixes the height (W = int(w*H/h)); JJ fixes the longest side."""
  h, w = shape[:2]
  if height and max_side:
    raise ValueError("give either image.height or image.max_side, not both")
  if height:
    return int(height), max(1, int(w * height / h))
  if max_side:
    scale = max_side / max(h, w)
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))
  return h, w


def resize(img: np.ndarray, size: tuple[int, int], method: str = "nearest") -> np.ndarray:
  """Resizes uint8 or float 0-255 HxWx3 to (H, W); 'nearest' matches Keras `load_img`."""
  if method not in _RESAMPLE:
    raise ValueError(f"unknown resize method {method!r}; choose from {sorted(_RESAMPLE)}")
  arr = np.clip(np.asarray(img, np.float32), 0, 255).round().astype(np.uint8)
  if arr.shape[:2] == tuple(size):
    return arr.astype(np.float32)
  out = Image.fromarray(arr).resize((size[1], size[0]), _RESAMPLE[method])
  return np.asarray(out, np.float32)


def style_size(style_shape: tuple[int, ...], out_size: tuple[int, int], mode: str,
               scale: float) -> tuple[int, int]:
  """Size of a style image: 'match' stretches to the output (book); 'scale' keeps its aspect with
  the longest side = ceil(scale * output's longest side) (JJ `-style_scale`)."""
  if mode == "match":
    return tuple(out_size)
  if mode != "scale":
    raise ValueError(f"unknown image.style_mode {mode!r}; choose 'match' or 'scale'")
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
    f = min(1.0, max(0.5 ** i, 16.0 / min(size)))
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


def to_uint8(img: np.ndarray) -> np.ndarray:
  return np.clip(np.asarray(img, np.float32), 0, 255).round().astype(np.uint8)


def save_image(path: str, img: np.ndarray) -> None:
  """Writes an RGB 0-255 array as PNG/JPEG (by extension), creating the folder first."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  Image.fromarray(to_uint8(img)).save(path)


def progress_strip(images: list[np.ndarray], labels: list[str], height: int = 256) -> np.ndarray:
  """One row like the book's Figure 5-18: content | style | snapshots, each scaled to `height`."""
  from PIL import ImageDraw
  tiles = []
  for img, label in zip(images, labels):
    arr = to_uint8(img)
    w = max(1, int(round(arr.shape[1] * height / arr.shape[0])))
    tile = Image.fromarray(arr).resize((w, height), Image.BILINEAR)
    canvas = Image.new("RGB", (w, height + 18), "white")
    canvas.paste(tile, (0, 18))
    ImageDraw.Draw(canvas).text((4, 3), label, fill="black")
    tiles.append(canvas)
  gap = 4
  total = sum(t.width for t in tiles) + gap * (len(tiles) - 1)
  strip = Image.new("RGB", (total, height + 18), "white")
  x = 0
  for t in tiles:
    strip.paste(t, (x, 0))
    x += t.width + gap
  return np.asarray(strip)
