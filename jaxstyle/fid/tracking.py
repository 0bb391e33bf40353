"""FID tracked during training: a fixed, seeded subset of the test split scored every N steps.

Task-agnostic, so every translation task (CycleGAN now; CUT, pix2pix) uses the same hook: the task
hands `FIDTracker` its directions (`'A2B'`: source test images in [-1, 1] and the real target test
images) once, then calls `score(translate)` with a function that translates a batch for a
direction under the current parameters. The real images' features are computed once; each call
runs the Inception network on the translations only, and FID is computed by `metrics.fid_lowrank`
(exact, without the 2048² square root). `TRACK_KEY` (the mean over directions) is what the best
step is chosen by; `best_step` reads it back from metrics.jsonl.

Choosing a step by FID on the test split, as CUT's paper does ("the best FID seen during
training", CUT issue #65), is an optimistic protocol: the page and the docs say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from jaxstyle import image_io
from jaxstyle.errors import BadInputError
from jaxstyle.fid import metrics

PREFIX = 'fid_track'
TRACK_KEY = f'{PREFIX}/mean'  # lower is better
N_KEY = f'{PREFIX}/n'


def subset(n_total: int, n: int, seed: int) -> np.ndarray:
  """Sorted indices of a seeded subset of `min(n, n_total)` test images (all when n <= 0)."""
  if n <= 0 or n >= n_total:
    return np.arange(n_total)
  return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


class FIDTracker:
  """FID per direction of translations of fixed source images against fixed real target images.

  Args:
    directions: `{'A2B': (source float NHWC in [-1, 1], real target uint8 NHWC), ...}`.
    extractor: a `features.FeatureExtractor` (any mode); called on uint8 images.
    batch_size: translations per call of `translate`.
  """

  def __init__(
    self,
    directions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    extractor: Callable[..., np.ndarray],
    batch_size: int = 16,
  ):
    from jaxstyle.fid import features  # the jax stack: only when tracking is on

    self._split = features.split_outputs
    self.extractor, self.batch_size = extractor, batch_size
    self.sources = {d: src for d, (src, _) in directions.items()}
    self.real = {d: self._features(real) for d, (_, real) in directions.items()}
    for d, feats in self.real.items():
      if len(feats) < 2 or len(self.sources[d]) < 2:
        raise BadInputError(f'FID tracking of {d} needs at least 2 test images per domain')

  def _features(self, images: np.ndarray) -> np.ndarray:
    return self._split(self.extractor(images))[0]

  def score(self, translate: Callable[[str, np.ndarray], np.ndarray]) -> dict[str, float]:
    """`{'fid_track/A2B': ..., 'fid_track/mean': ..., 'fid_track/n': ...}`; `translate(direction,
    float batch in [-1, 1])` returns the translations in [-1, 1]."""
    out: dict[str, float] = {}
    for d, src in self.sources.items():
      fakes = [
        np.asarray(translate(d, src[i : i + self.batch_size]), np.float32)
        for i in range(0, len(src), self.batch_size)
      ]
      fake_u8 = image_io.to_uint8(np.concatenate(fakes))  # as `jaxstyle evaluate` scores them
      out[f'{PREFIX}/{d}'] = metrics.fid_lowrank(self._features(fake_u8), self.real[d])
    out[TRACK_KEY] = float(np.mean([out[f'{PREFIX}/{d}'] for d in self.sources]))
    out[N_KEY] = float(min(len(s) for s in self.sources.values()))
    return out


def best_step(
  records: Iterable[Mapping[str, Any]], available: Iterable[int] | None = None
) -> tuple[int, float] | None:
  """(step, tracked FID) of the lowest `TRACK_KEY` in metrics.jsonl records, among `available`
  steps when given (those with a checkpoint); the earliest step wins a tie. None if untracked."""
  keep = None if available is None else set(available)
  best = None
  for r in records:
    value = r.get(TRACK_KEY)
    if value is None or not np.isfinite(value) or (keep is not None and r['step'] not in keep):
      continue
    if best is None or value < best[1]:
      best = (int(r['step']), float(value))
  return best


def curve(records: Iterable[Mapping[str, Any]]) -> list[tuple[int, float]]:
  """(step, tracked FID) over training, for the results page."""
  return [(int(r['step']), float(r[TRACK_KEY])) for r in records if TRACK_KEY in r]
