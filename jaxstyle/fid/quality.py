"""Inception Score and precision/recall, as torch-fidelity computes them.

- Inception Score (Salimans et al. 2016) as torch-fidelity's `isc_features_to_metric`: the
  unbiased 1008-way logits of the FID Inception (`x @ fc.weight.T`, no bias), rows shuffled by
  `np.random.RandomState(2020).permutation`, float64 softmax, `splits` (10) consecutive chunks of
  N // splits-ish rows (`i*N//splits : (i+1)*N//splits`), exp(mean KL(p(y|x) || p(y))) per chunk,
  then mean and (population) std over chunks.
- Precision / recall (Kynkäänniemi et al. 2019) as torch-fidelity's `prc`: in the 2048-d pool3
  features, each set's k-NN radius per sample (the distance to its k-th nearest other sample:
  torch's `kthvalue(k + 1)` over distances that include the sample itself), k = 3; precision is the
  fraction of generated samples inside some real sample's ball (distance <= radius), recall the
  fraction of real samples inside some generated sample's ball, F = 2PR / max(1e-5, P + R).
  Distances are Euclidean in float64 (torch-fidelity: float32 `cdist`), which can only differ at
  exact ties.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from jaxstyle.errors import BadInputError

ISC_SPLITS = 10
ISC_SEED = 2020
PRC_NEIGHBORHOOD = 3
_ROWS = 1024  # distance rows per block: N x 1024 float64 at a time


def inception_score(
  logits: np.ndarray, splits: int = ISC_SPLITS, shuffle: bool = True, seed: int = ISC_SEED
) -> dict[str, Any]:
  """{'is_mean', 'is_std', 'is_splits'} of (N, C) logits (module docstring)."""
  x = np.asarray(logits, np.float64)
  if x.ndim != 2 or len(x) < splits:
    raise BadInputError(
      f'the Inception Score needs (N, C) logits with N >= {splits} (its splits), got {x.shape}'
    )
  n = len(x)
  if shuffle:
    x = x[np.random.RandomState(seed).permutation(n)]
  shifted = x - x.max(axis=1, keepdims=True)
  log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  p = np.exp(log_p)
  scores = []
  for i in range(splits):
    part = slice(i * n // splits, (i + 1) * n // splits)
    q = p[part].mean(axis=0, keepdims=True)
    kl = (p[part] * (log_p[part] - np.log(q))).sum(axis=1).mean()
    scores.append(np.exp(kl))
  return {'is_mean': float(np.mean(scores)), 'is_std': float(np.std(scores)), 'is_splits': splits}


def _distance_blocks(x: np.ndarray, y: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
  """(rows, Euclidean distances of x[rows] to every y) in blocks, float64."""
  yy = (y * y).sum(axis=1)
  for start in range(0, len(x), _ROWS):
    rows = slice(start, start + _ROWS)
    xb = x[rows]
    d2 = (xb * xb).sum(axis=1)[:, None] + yy[None, :] - 2.0 * (xb @ y.T)
    yield rows, np.sqrt(np.maximum(d2, 0.0))


def _radii(x: np.ndarray, k: int) -> np.ndarray:
  """Each sample's distance to its k-th nearest neighbour in its own set (itself excluded)."""
  out = np.empty(len(x))
  for rows, d in _distance_blocks(x, x):
    d[np.arange(d.shape[0]), np.arange(rows.start, rows.start + d.shape[0])] = 0.0
    out[rows] = np.partition(d, k, axis=1)[:, k]  # index 0 is the sample itself (distance 0)
  return out


def _covered(x: np.ndarray, y: np.ndarray, radii_y: np.ndarray) -> float:
  """The fraction of x inside some y ball (distance <= that y's radius)."""
  hit = np.zeros(len(x), bool)
  for rows, d in _distance_blocks(x, y):
    hit[rows] = (d <= radii_y[None, :]).any(axis=1)
  return float(hit.mean())


def precision_recall(
  fake: np.ndarray, real: np.ndarray, k: int = PRC_NEIGHBORHOOD
) -> dict[str, Any]:
  """{'precision', 'recall', 'f_score', 'prc_k'} of generated vs real (N, D) features."""
  f, r = np.asarray(fake, np.float64), np.asarray(real, np.float64)
  if f.ndim != 2 or f.shape[1:] != r.shape[1:]:
    raise BadInputError(
      f'precision/recall needs two (N, D) feature arrays, got {f.shape}, {r.shape}'
    )
  if min(len(f), len(r)) < k + 1:
    raise BadInputError(
      f'precision/recall with k={k} needs at least {k + 1} images per set, got {len(f)} and '
      f'{len(r)}'
    )
  precision = _covered(f, r, _radii(r, k))
  recall = _covered(r, f, _radii(f, k))
  return {
    'precision': precision,
    'recall': recall,
    'f_score': 2 * precision * recall / max(1e-5, precision + recall),
    'prc_k': k,
  }
