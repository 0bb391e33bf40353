"""Sample grids in the book's Figure 5-8 layout: columns Original / Translated / Reconstructed / ID.

One row per example, domain A rows first, then domain B (the book shows one example per domain, i.e.
a 2x4 grid). Drawn by `image_io.grid` (deterministic pixels, cheap enough to call on a schedule
during training). Images come in [-1, 1] and are shown as clip(0.5x + 0.5), as in the book.
"""

from __future__ import annotations

import numpy as np

from jaxstyle import image_io

COLUMNS = ('Original', 'Translated', 'Reconstructed', 'ID')
_ARGS = tuple(
  f'{kind}_{d}' for d in 'AB' for kind in ('originals', 'translated', 'reconstructed', 'identity')
)


def _as_batch(x: np.ndarray, name: str) -> np.ndarray:
  """(H,W,C) or (N,H,W,C) in [-1, 1] with C in {1,3} -> uint8 (N,H,W,C)."""
  x = np.asarray(x)
  if x.ndim == 3:
    x = x[None]
  if x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise ValueError(f'{name}: expected (N,H,W,C) or (H,W,C) with C in (1, 3), got {x.shape}')
  return image_io.to_uint8(x)


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
  args = (
    originals_A,
    translated_A,
    reconstructed_A,
    identity_A,
    originals_B,
    translated_B,
    reconstructed_B,
    identity_B,
  )
  batches = [_as_batch(x, name) for x, name in zip(args, _ARGS)]
  rows, row_labels = [], []
  for d, cols in zip('AB', (batches[:4], batches[4:])):
    n = cols[0].shape[0]
    if any(c.shape[0] != n for c in cols):
      raise ValueError(f'domain {d}: all four columns need the same number of examples')
    rows += [[c[i] for c in cols] for i in range(n)]
    row_labels += [d if n == 1 else f'{d}{i + 1}' for i in range(n)]
  return image_io.grid(rows, labels=[COLUMNS], row_labels=row_labels, min_cell=min_cell, pad=pad)


def save_sample_grid(path: str, *args: np.ndarray, **kwargs) -> np.ndarray:
  """`sample_grid(...)` written as a PNG (parent dirs created); returns the image too."""
  grid = sample_grid(*args, **kwargs)
  image_io.save(path, grid)
  return grid
