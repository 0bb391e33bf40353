"""The two ways published FIDs feed images to the Inception network (`--mode`).

- `pytorch-fid` (the default): /255 in float32, a bilinear resize to 299x299 without antialiasing
  inside the jitted network, then x*2-1 (pytorch-fid's `InceptionV3(resize_input=True,
  normalize_input=True)`).
- `clean` (clean-fid, Parmar et al. CVPR 2022): each channel resized on the host by PIL's bicubic
  filter in mode 'F' (float32, so nothing is re-quantised to uint8 after resizing), clipped to
  [0, 255], then (x - 128) / 128 inside the network. PIL's filter antialiases when shrinking, which
  is the point of clean-fid: the aliased resize moves FID by whole points.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from jaxstyle.errors import BadInputError

MODES = ('pytorch-fid', 'clean')
DEFAULT_MODE = 'pytorch-fid'
SIZE = (299, 299)  # (width, height) as PIL takes it; square, so also (H, W)


def clean_resize(image: np.ndarray) -> np.ndarray:
  """(H, W, 3) uint8 (or [0, 255] float) -> (299, 299, 3) float32 in [0, 255], as clean-fid's
  `make_resizer('PIL', False, 'bicubic', (299, 299))`: per channel, mode 'F', no re-quantisation."""
  x = np.asarray(image)
  if x.ndim != 3 or x.shape[-1] != 3:
    raise BadInputError(f'clean resize expects an (H, W, 3) image, got shape {x.shape}')
  channels = []
  for c in range(3):
    plane = Image.fromarray(np.ascontiguousarray(x[:, :, c], np.float32))  # mode 'F'
    channels.append(np.asarray(plane.resize(SIZE, resample=Image.BICUBIC)))
  return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.float32)


def clean_resize_batch(images: np.ndarray) -> np.ndarray:
  """`clean_resize` of each image of an (N, H, W, 3) batch."""
  return (
    np.stack([clean_resize(im) for im in images])
    if len(images)
    else np.zeros((0, SIZE[1], SIZE[0], 3), np.float32)
  )


def check_mode(mode: str) -> str:
  """`mode` if known; a one-line error naming the choices otherwise."""
  if mode not in MODES:
    raise BadInputError(f'unknown FID mode {mode!r}; choose one of {", ".join(MODES)}')
  return mode
