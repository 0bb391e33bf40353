"""Sample grids in the book's Figure 5-8 layout: columns Original / Translated / Reconstructed / ID.

One row per example, domain A rows first, then domain B (the book shows one example per domain, i.e.
a 2x4 grid). Pure NumPy + PIL: no matplotlib state, deterministic pixels, cheap enough to call on a
schedule during training. Images come in [-1, 1] and are shown as clip(0.5x + 0.5), as in the book.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLUMNS = ('Original', 'Translated', 'Reconstructed', 'ID')
_BG = 255
_TEXT = (0, 0, 0)


def to_uint8(x: np.ndarray) -> np.ndarray:
  """[-1, 1] float image(s) -> uint8 via clip(0.5x + 0.5), rounding to nearest."""
  x = np.clip(0.5 * np.asarray(x, np.float32) + 0.5, 0.0, 1.0)
  return np.round(x * 255.0).astype(np.uint8)


def _as_batch(x: np.ndarray, name: str) -> np.ndarray:
  """(H,W,C) or (N,H,W,C) with C in {1,3} -> uint8 (N,H,W,3)."""
  x = np.asarray(x)
  if x.ndim == 3:
    x = x[None]
  if x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise ValueError(f'{name}: expected (N,H,W,C) or (H,W,C) with C in (1, 3), got {x.shape}')
  x = to_uint8(x)
  return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def _font(size: int) -> ImageFont.ImageFont:
  try:
    return ImageFont.load_default(size=size)  # scalable bundled font (Pillow >= 10.1 with FreeType)
  except (TypeError, OSError, ImportError):
    return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont) -> tuple[int, int]:
  left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
  return right - left, bottom - top


def sample_grid(
  originals_A: np.ndarray,
  translated_A: np.ndarray,
  reconstructed_A: np.ndarray,
  identity_A: np.ndarray,
  originals_B: np.ndarray,
  translated_B: np.ndarray,
  reconstructed_B: np.ndarray,
  identity_B: np.ndarray,
  *,
  min_cell: int = 128,
  pad: int = 6,
) -> np.ndarray:
  """Composes the Figure 5-8 grid and returns it as uint8 (H, W, 3).

  Args:
    originals_A ... identity_B: images in [-1, 1], (H,W,C) or (N,H,W,C), C in {1, 3}. `translated_A`
      is G_A(A) (A->B), `reconstructed_A` is G_B(G_A(A)), `identity_A` is G_B(A) (B's generator
      applied to an A image), and symmetrically for B. The N examples of a domain become N rows.
    min_cell: small images are enlarged by an integer nearest-neighbour factor until the longer
      side reaches this, so 32x32 `runlocal` samples stay visible.
    pad: white gap between cells, in pixels.
  """
  domains = {
    'A': [
      _as_batch(x, n)
      for x, n in (
        (originals_A, 'originals_A'),
        (translated_A, 'translated_A'),
        (reconstructed_A, 'reconstructed_A'),
        (identity_A, 'identity_A'),
      )
    ],
    'B': [
      _as_batch(x, n)
      for x, n in (
        (originals_B, 'originals_B'),
        (translated_B, 'translated_B'),
        (reconstructed_B, 'reconstructed_B'),
        (identity_B, 'identity_B'),
      )
    ],
  }
  rows = []  # (label, [4 images])
  for dom, cols in domains.items():
    n = cols[0].shape[0]
    if any(c.shape[0] != n for c in cols):
      raise ValueError(f'domain {dom}: all four columns need the same number of examples')
    for i in range(n):
      rows.append((dom if n == 1 else f'{dom}{i + 1}', [c[i] for c in cols]))

  # A and B may differ in size (native-size inference); every cell gets the largest extent.
  cell_h = max(im.shape[0] for _, ims in rows for im in ims)
  cell_w = max(im.shape[1] for _, ims in rows for im in ims)
  scale = max(1, -(-min_cell // max(cell_h, cell_w)))
  cell_h, cell_w = cell_h * scale, cell_w * scale

  font = _font(max(12, min(32, cell_w // 8)))
  probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
  title_h = max(_text_size(probe, t, font)[1] for t in COLUMNS) + 2 * pad
  label_w = max(_text_size(probe, label, font)[0] for label, _ in rows) + 2 * pad

  width = label_w + len(COLUMNS) * (cell_w + pad)
  height = title_h + len(rows) * (cell_h + pad)
  canvas = np.full((height, width, 3), _BG, np.uint8)
  for r, (_, ims) in enumerate(rows):
    y0 = title_h + r * (cell_h + pad)
    for c, im in enumerate(ims):
      im = np.repeat(np.repeat(im, scale, axis=0), scale, axis=1)
      x0 = label_w + c * (cell_w + pad)
      dy, dx = (cell_h - im.shape[0]) // 2, (cell_w - im.shape[1]) // 2
      canvas[y0 + dy : y0 + dy + im.shape[0], x0 + dx : x0 + dx + im.shape[1]] = im

  img = Image.fromarray(canvas)
  draw = ImageDraw.Draw(img)
  for c, title in enumerate(COLUMNS):
    tw, _ = _text_size(draw, title, font)
    draw.text(
      (label_w + c * (cell_w + pad) + (cell_w - tw) // 2, pad), title, fill=_TEXT, font=font
    )
  for r, (label, _) in enumerate(rows):
    _, th = _text_size(draw, label, font)
    draw.text(
      (pad, title_h + r * (cell_h + pad) + (cell_h - th) // 2), label, fill=_TEXT, font=font
    )
  return np.asarray(img)


def save_sample_grid(path: str, *args: np.ndarray, **kwargs) -> np.ndarray:
  """`sample_grid(...)` written as a PNG (parent dirs created); returns the image too."""
  grid = sample_grid(*args, **kwargs)
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)
  Image.fromarray(grid).save(path, format='PNG')
  return grid
