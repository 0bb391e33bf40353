"""Image IO for every task: decode to upright uint8 RGB, convert ranges, save, compose grids.

One module so CycleGAN and NST read files the same way (EXIF orientation, palette, alpha, 16-bit)
and every picture the project draws (the Figure 5-8 sample grid, the `jaxstyle figure` panels,
the NST progress strip) comes from one composer with one look. Pure NumPy + PIL: deterministic
pixels and no matplotlib state.

Ranges: networks see float [-1, 1] (the reference's Normalize(0.5, 0.5)), NST works in float
0-255, files and grids are uint8.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from jaxstyle.errors import BadInputError, UserError

log = logging.getLogger(__name__)
T = TypeVar('T')

_BG = 255
_TEXT = (0, 0, 0)


#### Inputs


def collect_inputs(inputs: Sequence[str]) -> list[tuple[str, str]]:
  """(path, output name) for every image under `inputs`; folders keep their relative layout.

  Shared by `translate` and `stylize --model`. One folder alone maps onto the output folder itself
  (`photos/a.jpg` -> `a.png`); among several inputs each folder gets its own sub-folder
  (`photos/a.png`), so names from different inputs cannot collide.
  """
  exts = {e.lower() for e in Image.registered_extensions()}
  found = []
  for item in inputs:
    if os.path.isdir(item):
      base = '' if len(inputs) == 1 else os.path.basename(os.path.normpath(item))
      for d, dirs, files in os.walk(item):
        dirs[:] = sorted(x for x in dirs if not x.startswith('.'))
        for f in sorted(files):
          if os.path.splitext(f)[1].lower() in exts and not f.startswith('.'):
            rel = os.path.relpath(os.path.join(d, f), item)
            found.append(
              (os.path.join(d, f), os.path.join(base, os.path.splitext(rel)[0] + '.png'))
            )
    elif os.path.isfile(item):
      found.append((item, os.path.splitext(os.path.basename(item))[0] + '.png'))
    else:
      raise UserError(f'input {item!r} does not exist; give image files or folders of images')
  if not found:
    raise BadInputError(f'no image files (by extension) under {", ".join(map(repr, inputs))}')
  return found


def drop_unreadable(items: Sequence[tuple[str, T]], verb: str) -> tuple[list[tuple[str, T]], int]:
  """(the items whose image header reads, how many were dropped), each drop a WARNING line.

  Run over a command's inputs before its model loads (headers only, no decode): files that are
  not images at all are skipped there, and when none is left the command stops at once with a
  BadInputError ("nothing to {verb}"). A good header over bad data (a truncated file) still fails
  at decode time.
  """
  kept = []
  for item in items:
    try:
      upright_size(item[0])
      kept.append(item)
    except (ValueError, OSError) as err:
      log.warning('skipped: %s', str(err).replace('\n', ' '))
  if not kept:
    raise BadInputError(
      f'nothing to {verb}: none of the {len(items)} input(s) is a readable image (see the '
      'warnings above)'
    )
  return kept, len(items) - len(kept)


def pad_to_multiple(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
  """Reflect-pads (N, H, W, C) on the bottom/right so H and W divide `multiple`; returns (x, (H, W)).

  Padding only the far sides keeps pixel (0, 0) aligned with the unpadded image, so the crop back
  is a plain slice.
  """
  h, w = x.shape[1:3]
  ph, pw = (-h) % multiple, (-w) % multiple
  if ph or pw:
    x = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode='reflect' if min(h, w) > 1 else 'edge')
  return x, (h, w)


#### Decoding


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
  """HxWx3 uint8 from any Pillow image: EXIF orientation applied, 16-bit scaled, alpha dropped.

  Alpha is dropped (not composited) as in the reference's `convert('RGB')`. 16-bit modes map
  65535 -> 255; mode 'I' is scaled the same way only when its values exceed 255.
  """
  img = ImageOps.exif_transpose(img)
  if img.mode.startswith('I') or img.mode == 'F':
    a = np.asarray(img).astype(np.float64)
    if img.mode.startswith('I;16') or a.max(initial=0) > 255:
      a = a * (255.0 / 65535.0)
    a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return np.repeat(a[..., None], 3, axis=-1)
  return np.asarray(img.convert('RGB'))


def load_rgb(path: str, hint: str = '', *, plain: bool = False) -> np.ndarray:
  """Reads any image Pillow can decode as upright uint8 HxWx3 RGB.

  `plain=True` decodes exactly as `Image.open(path).convert('RGB')` (no EXIF rotation, Pillow's
  own 16-bit clipping): how pytorch-fid reads files, which FID must match pixel for pixel.
  Fails with the path instead of a PIL trace: FileNotFoundError when the file is missing (with
  `hint` appended, e.g. how a CLI expects its paths), BadInputError (a UserError and a ValueError)
  when it cannot be decoded: a directory, unreadable, empty, not an image, truncated.
  """
  if not os.path.exists(path):
    what = 'is a symbolic link to a missing file' if os.path.islink(path) else 'does not exist'
    raise FileNotFoundError(f'image {path!r} {what}' + (f'; {hint}' if hint else ''))
  try:
    with Image.open(path) as img:
      return np.asarray(img.convert('RGB')) if plain else _pil_to_rgb(img)
  except Exception as err:  # noqa: BLE001 -- PIL raises OSError, SyntaxError, ValueError, ...
    raise _unreadable(path, err) from err


def _unreadable(path: str, err: Exception) -> BadInputError:
  """The one-line reason an image file cannot be used, with what to do about it.

  A BadInputError: a user's file, so the CLI prints one line (it is also the ValueError callers
  that skip bad files catch).
  """
  if os.path.isdir(path):
    return BadInputError(f'cannot read {path!r} as an image: it is a directory')
  if isinstance(err, PermissionError):
    return BadInputError(f'cannot read {path!r} as an image: permission denied')
  if os.path.isfile(path) and os.path.getsize(path) == 0:
    return BadInputError(f'cannot read {path!r} as an image: the file is empty')
  if isinstance(err, Image.DecompressionBombError):
    return BadInputError(
      f"cannot read {path!r} as an image: {err} (Pillow's decompression-bomb "
      'guard); downscale it first if it is a genuine image'
    )
  if isinstance(err, OSError) and 'truncated' in str(err):
    return BadInputError(
      f'cannot read {path!r} as an image: the file is truncated (an interrupted copy or '
      'download?); copy it again'
    )
  return BadInputError(
    f'cannot read {path!r} as an image ({type(err).__name__}: {err}); '
    'convert it to PNG or JPEG and try again'
  )


def upright_size(path: str, *, plain: bool = False) -> tuple[int, int]:
  """(H, W) of the image `load_rgb(path, plain=plain)` would return, from the header alone.

  Cheap enough to run over a whole folder first, so batches can be planned by size and files
  whose header is unreadable (not an image, empty, a decompression bomb) are found before any
  work; a file with a good header can still fail to decode (a truncated JPEG). BadInputError (a
  ValueError) naming the path otherwise, like `load_rgb`.
  """
  try:
    with Image.open(path) as img:
      w, h = img.size
      orientation = img.getexif().get(0x0112, 1)
  except Exception as err:  # noqa: BLE001 -- PIL raises OSError, SyntaxError, ValueError, ...
    raise _unreadable(path, err) from err
  return (
    (w, h) if orientation in (5, 6, 7, 8) and not plain else (h, w)
  )  # EXIF transposes swap sides


def as_rgb(x: np.ndarray) -> np.ndarray:
  """Normalises an already-decoded array (HxW, HxWx1, HxWx3 or HxWx4) to HxWx3 uint8.

  Grey is repeated, alpha dropped; values are cast, not rescaled (TFDS hands out uint8).
  """
  x = np.asarray(x)
  if x.ndim == 2:
    x = x[..., None]
  if x.shape[-1] == 1:
    x = np.repeat(x, 3, axis=-1)
  return np.ascontiguousarray(x[..., :3].astype(np.uint8))


#### Ranges


def to_float(images_uint8: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1] (the reference's Normalize(0.5, 0.5))."""
  return np.asarray(images_uint8, np.float32) / 127.5 - 1.0


def to_uint8(x: np.ndarray) -> np.ndarray:
  """float [-1, 1] -> uint8: the inverse of `to_float`, rounded to nearest and clipped.

  The book shows generator outputs as clip(0.5x + 0.5); this is the same map on 0-255.
  """
  return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def clip_uint8(x: np.ndarray) -> np.ndarray:
  """float 0-255 (NST's range) or uint8 -> uint8, clipped then rounded to nearest."""
  x = np.asarray(x)
  if x.dtype == np.uint8:
    return x
  return np.clip(np.asarray(x, np.float32), 0, 255).round().astype(np.uint8)


def save(path: str, img: np.ndarray) -> str:
  """Writes uint8 or float 0-255 HxW[x1|3] as the extension says (PNG, JPEG, ...), creating folders."""
  arr = clip_uint8(img)
  if arr.ndim == 3 and arr.shape[-1] == 1:
    arr = arr[..., 0]
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  Image.fromarray(arr).save(path)
  return path


def scale_to_height(img: np.ndarray, height: int, resample: int = Image.BILINEAR) -> np.ndarray:
  """uint8 image resized to `height` rows, the width following the aspect ratio (>= 1 px)."""
  img = as_rgb(img)
  if img.shape[0] == height:
    return img
  width = max(1, int(round(img.shape[1] * height / img.shape[0])))
  return np.asarray(Image.fromarray(img).resize((width, height), resample))


#### The grid composer


def _font(size: int) -> ImageFont.ImageFont:
  try:
    return ImageFont.load_default(size=size)  # scalable bundled font (Pillow >= 10.1 with FreeType)
  except (TypeError, OSError, ImportError):
    return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont) -> tuple[int, int]:
  if not text:
    return 0, 0
  left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
  return right - left, bottom - top


def _cell(img: np.ndarray, where: str) -> np.ndarray:
  img = np.asarray(img)
  if img.dtype != np.uint8 or img.ndim not in (2, 3):
    raise ValueError(
      f'grid cell {where}: expected a uint8 HxW or HxWxC image, got '
      f'{img.dtype} {img.shape} (convert with to_uint8 or clip_uint8 first)'
    )
  return as_rgb(img)


def grid(
  rows: Sequence[Sequence[np.ndarray]],
  *,
  labels: Sequence[Sequence[str]] | None = None,
  row_labels: Sequence[str] | None = None,
  title: str | None = None,
  min_cell: int = 0,
  pad: int = 6,
  font_size: int | None = None,
) -> np.ndarray:
  """Lays uint8 images out in rows on white and returns the picture as uint8 (H, W, 3).

  Args:
    rows: images per row (rows may be ragged); each cell is as wide as its column's widest image
      (or caption) and as tall as its row's tallest image; images are centred in their cell.
    labels: a caption above each cell, nested like `rows`; '' (or a missing entry) for none. A row
      without captions gets no caption band, so captions on the first row only are column titles.
    row_labels: text left of each row, vertically centred.
    title: one line centred above everything.
    min_cell: images are enlarged by one integer nearest-neighbour factor until the longest side
      reaches this, so 32x32 `runlocal` samples stay visible.
    pad: white gap between cells and around the picture, in pixels.
    font_size: text height in px; default scales with the widest image (12 to 32).
  """
  cells = [[_cell(im, f'[{r}][{c}]') for c, im in enumerate(row)] for r, row in enumerate(rows)]
  if not cells or not any(cells):
    raise ValueError('grid needs at least one image')
  caps = [
    [
      (labels[r][c] if labels and r < len(labels) and c < len(labels[r]) else '') or ''
      for c in range(len(row))
    ]
    for r, row in enumerate(cells)
  ]
  longest = max(max(im.shape[:2]) for row in cells for im in row)
  scale = max(1, -(-min_cell // longest)) if min_cell else 1
  if scale > 1:
    cells = [[np.repeat(np.repeat(im, scale, 0), scale, 1) for im in row] for row in cells]

  ncols = max(len(row) for row in cells)
  col_w = [max(row[c].shape[1] for row in cells if c < len(row)) for c in range(ncols)]
  row_h = [max(im.shape[0] for im in row) if row else 0 for row in cells]
  font = _font(font_size or max(12, min(32, max(col_w) // 8)))
  probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
  size = lambda text: _text_size(probe, text, font)
  for row in caps:  # captions must not run into each other
    for c, text in enumerate(row):
      if text:
        col_w[c] = max(col_w[c], size(text)[0] + 2 * pad)
  band_h = [max(size(t)[1] for t in row) + 2 * pad if any(row) else 0 for row in caps]
  label_w = (max(size(t)[0] for t in row_labels) + 2 * pad) if row_labels else pad
  title_h = size(title)[1] + 2 * pad if title else 0
  top = title_h or (0 if band_h[0] else pad)  # a caption band starts with its own pad

  col_x = np.cumsum([label_w] + [w + pad for w in col_w]).tolist()
  row_y = np.cumsum([top] + [b + h + pad for b, h in zip(band_h, row_h)]).tolist()
  width = max(col_x[-1], size(title)[0] + 2 * pad if title else 0)
  canvas = np.full((row_y[-1], width, 3), _BG, np.uint8)
  for r, row in enumerate(cells):
    y0 = row_y[r] + band_h[r]
    for c, im in enumerate(row):
      dy, dx = (row_h[r] - im.shape[0]) // 2, (col_w[c] - im.shape[1]) // 2
      canvas[y0 + dy : y0 + dy + im.shape[0], col_x[c] + dx : col_x[c] + dx + im.shape[1]] = im

  img = Image.fromarray(canvas)
  draw = ImageDraw.Draw(img)
  if title:
    draw.text(((width - size(title)[0]) // 2, pad), title, fill=_TEXT, font=font)
  for r, row in enumerate(caps):
    for c, text in enumerate(row):
      if text:
        draw.text(
          (col_x[c] + (col_w[c] - size(text)[0]) // 2, row_y[r] + pad), text, fill=_TEXT, font=font
        )
  for r, text in enumerate(row_labels or ()):
    if text and r < len(cells):
      y = row_y[r] + band_h[r] + (row_h[r] - size(text)[1]) // 2
      draw.text((pad, y), text, fill=_TEXT, font=font)
  return np.asarray(img)
