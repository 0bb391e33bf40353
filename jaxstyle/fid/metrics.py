"""FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018) from Inception pool3 features.

Written to give the numbers the reference tools give, not merely the same formulas:
- FID as pytorch-fid's `calculate_frechet_distance`: float64 mean and covariance (`np.cov`,
  rowvar=False), `scipy.linalg.sqrtm` of Σ1·Σ2, and when that is not finite the same retry with
  ε = 1e-6 added to both diagonals; a complex square root is accepted only when its diagonal's
  imaginary part is within 1e-3 of zero, and then its real part is used.
- KID as torch-fidelity's `kid_features_to_metric`: polynomial kernel (x·y/d + 1)³, the unbiased
  MMD² estimator, `subsets` random subsets of `subset_size` drawn without replacement by
  `np.random.RandomState(seed)` (torch-fidelity's defaults: 100 × 1000, seed 2020), mean and std.
  torch-fidelity refuses a subset larger than a set; here the size is capped at the smaller set
  (and the cap is returned), so small test splits still get a score.
Statistics files use pytorch-fid's `--save-stats` layout (`mu`, `sigma` in an .npz), so published
statistics can be used directly.
"""

from __future__ import annotations

import io
import logging
import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import linalg

from jaxstyle.errors import BadInputError
from jaxstyle.ports.safe_zip import SafeZip

log = logging.getLogger(__name__)

FID_EPS = 1e-6
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_SEED = 2020
UNBIASED_N = 2048  # below this many images FID is visibly biased (it falls as n grows)


def bias_warning(n: int) -> str:
  """The one line every FID of fewer than 2,048 images comes with."""
  return (
    f'warning: FID of n = {n} < {UNBIASED_N} images is biased upwards (it falls as n grows): '
    'compare only FIDs of equal n; KID, printed beside it, is unbiased'
  )


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mu, sigma) of (N, D) features in float64, as pytorch-fid (needs N ≥ 2 for a covariance)."""
  act = np.asarray(features, np.float64)
  if act.ndim != 2 or act.shape[0] < 2:
    raise BadInputError(f"FID needs at least 2 images' features, got an array of shape {act.shape}")
  return np.mean(act, axis=0), np.cov(act, rowvar=False)


def _sqrtm(m: np.ndarray) -> np.ndarray:
  """`linalg.sqrtm` as pytorch-fid calls it (`disp=False`, deprecated in SciPy 1.17): without
  SciPy's "Matrix is singular" warning, which every FID of fewer images than feature dimensions
  (2048) would print; `frechet_distance` checks the result itself, as pytorch-fid does."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', linalg.LinAlgWarning)
    return linalg.sqrtm(m)


def frechet_distance(
  mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = FID_EPS
) -> float:
  """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2·sqrt(Σ1Σ2)), with pytorch-fid's fallbacks (module docstring)."""
  mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
  sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise BadInputError(
      f'FID statistics of different sizes: mu {mu1.shape} vs {mu2.shape}, '
      f'sigma {sigma1.shape} vs {sigma2.shape} (features of another network?)'
    )
  diff = mu1 - mu2
  covmean = _sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    log.warning('FID: singular product; adding %g to the diagonal of both covariances', eps)
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f'FID: imaginary component {np.max(np.abs(covmean.imag))} in sqrt(Σ1Σ2)')
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
  """FID between two (N, D) feature sets."""
  return frechet_distance(*statistics(features1), *statistics(features2))


def fid_lowrank(features1: np.ndarray, features2: np.ndarray) -> float:
  """FID without a D x D square root: tr sqrt(Σ1Σ2) = Σ singular values of A1·A2ᵀ / sqrt((n1-1)(n2-1))
  (A: centred features), exact in exact arithmetic for any rank, and O(n1·n2·D) instead of a
  2048² `sqrtm` (~1 min on 2 cores). For FID tracked during training, where it runs every N
  steps; the reported scores use `frechet_distance` (pytorch-fid's route)."""
  x, y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  if x.ndim != 2 or x.shape[1:] != y.shape[1:] or min(len(x), len(y)) < 2:
    raise BadInputError(f'FID needs two (N >= 2, D) feature arrays, got {x.shape} and {y.shape}')
  a, b = x - x.mean(0), y - y.mean(0)
  c = np.sqrt((len(x) - 1) * (len(y) - 1))
  cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / c
  traces = (a * a).sum() / (len(x) - 1) + (b * b).sum() / (len(y) - 1)
  return float(((x.mean(0) - y.mean(0)) ** 2).sum() + traces - 2 * cross)


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  return (np.matmul(x, y.T) * (1.0 / x.shape[1]) + 1) ** 3  # as torch-fidelity: gamma = 1/d


def _mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
  """Unbiased MMD²: off-diagonal means within each set, minus twice the full cross mean."""
  m = k_xx.shape[0]
  within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
  return float(within - 2 * k_xy.sum() / (m * m))


def kid_from_features(
  features1: np.ndarray,
  features2: np.ndarray,
  subsets: int = KID_SUBSETS,
  subset_size: int = KID_SUBSET_SIZE,
  seed: int = KID_SEED,
) -> dict[str, Any]:
  """KID mean ± std over random subsets (torch-fidelity's draws); the subset size is capped by the
  smaller set and returned, so a score from fewer images says so."""
  f1, f2 = np.asarray(features1), np.asarray(features2)
  if f1.ndim != 2 or f1.shape[1:] != f2.shape[1:]:
    raise BadInputError(
      f'KID needs two (N, D) feature arrays of one D, got {f1.shape} and {f2.shape}'
    )
  size = min(subset_size, len(f1), len(f2))
  if size < 2:
    raise BadInputError(f'KID needs at least 2 images in each set, got {len(f1)} and {len(f2)}')
  rng = np.random.RandomState(seed)
  mmds = np.zeros(subsets)
  for i in range(subsets):
    x = f1[rng.choice(len(f1), size, replace=False)]
    y = f2[rng.choice(len(f2), size, replace=False)]
    mmds[i] = _mmd2_unbiased(_poly_kernel(x, x), _poly_kernel(x, y), _poly_kernel(y, y))
  return {
    'kid_mean': float(np.mean(mmds)),
    'kid_std': float(np.std(mmds)),
    'kid_subset_size': size,
    'kid_subsets': subsets,
  }


def save_statistics(path: str, mu: np.ndarray, sigma: np.ndarray) -> None:
  """Writes pytorch-fid's `--save-stats` file (`mu`, `sigma`, compressed .npz)."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  np.savez_compressed(path, mu=mu, sigma=sigma)


def _npy(data: bytes, key: str, path: str, kinds: str = 'fiu') -> np.ndarray:
  """One `.npy` member, its header's shape and dtype checked against the bytes actually present
  before anything is allocated (`np.load` allocates whatever the header declares)."""
  f = io.BytesIO(data)
  try:
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0)):
      raise ValueError(f'unsupported .npy format version {version}')
    read = (
      np.lib.format.read_array_header_1_0
      if version == (1, 0)
      else np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = read(f)
  except Exception as err:  # noqa: BLE001 -- numpy's header parser lets tokenize/ast errors through
    raise BadInputError(
      f'{path}: not a readable .npz: array {key!r} has a damaged .npy header ({type(err).__name__}: {err})'
    ) from err
  if dtype.kind not in kinds or dtype.fields is not None:
    raise BadInputError(f'{path}: not a readable .npz of numbers: array {key!r} has dtype {dtype}')
  body = memoryview(data)[f.tell() :]
  nbytes = math.prod(shape) * dtype.itemsize
  if nbytes != len(body):
    raise BadInputError(
      f'{path}: not a readable .npz: array {key!r} declares shape {shape} of {dtype} ({nbytes} bytes) but holds '
      f'{len(body)} bytes: the file is damaged'
    )
  flat = np.frombuffer(body, dtype=dtype)
  return flat.reshape(shape, order='F' if fortran else 'C').astype(dtype.newbyteorder('='))


def load_npz_arrays(
  path: str, keys: Sequence[str], kinds: str = 'fiu'
) -> tuple[dict[str, np.ndarray], list[str]]:
  """({key: array} for the `keys` an untrusted `.npz` holds, all its array names); `kinds`: the
  dtype kinds accepted (numbers; 'U' for a text field).

  Unlike `np.load`, nothing is allocated on the file's word: zip sizes are checked on open
  (`SafeZip`) and each array's header against its bytes (`_npy`); any damage is a BadInputError
  naming the file.
  """
  with SafeZip(path, BadInputError, '.npz archive') as zf:
    names = sorted({n[: -len('.npy')] for n in zf.namelist() if n.endswith('.npy')})
    return {k: _npy(zf.read(f'{k}.npy'), k, path, kinds) for k in keys if k in names}, names


def load_statistics(path: str) -> tuple[np.ndarray, np.ndarray]:
  """(mu, sigma) from a pytorch-fid-style .npz; a clear error for a damaged file or one without
  those keys."""
  arrays, names = load_npz_arrays(path, ('mu', 'sigma'))
  if len(arrays) < 2:
    raise BadInputError(
      f"{path}: FID statistics need arrays 'mu' and 'sigma' (as pytorch-fid "
      f'--save-stats writes), found {names}'
    )
  mu, sigma = arrays['mu'], arrays['sigma']
  if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
    raise BadInputError(
      f"{path}: 'mu' {mu.shape} and 'sigma' {sigma.shape} do not fit (want (D,) and (D, D))"
    )
  if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
    raise BadInputError(f'{path}: the FID statistics hold NaN or infinite values (damaged file)')
  return mu, sigma
