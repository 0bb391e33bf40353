"""`jaxstyle fid PATH_A PATH_B [--kid]` and `jaxstyle fid PATH --save-stats OUT.npz`.

Each PATH is a folder of images (read as pytorch-fid reads them) or an .npz of statistics in
pytorch-fid's `--save-stats` layout (`mu`, `sigma`), so published statistics can be compared
against directly. `--save-stats` also stores the `features` (pytorch-fid ignores extra arrays),
which KID needs: KID is a kernel statistic of the features themselves, not of mu and sigma.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from typing import Any

import numpy as np

from jaxstyle.errors import BadInputError, UserError, nonnegative_int, positive_int, writable_dir
from jaxstyle.fid import metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the sub-command's flags (called by `jaxstyle.cli`)."""
  parser.add_argument(
    'paths',
    nargs='+',
    metavar='PATH',
    help='image folder or .npz statistics; two to score, one with --save-stats',
  )
  parser.add_argument(
    '--kid',
    action='store_true',
    help='also KID (needs features: folders, or .npz written by --save-stats)',
  )
  parser.add_argument(
    '--save-stats',
    metavar='OUT.npz',
    default=None,
    help='write mu, sigma (pytorch-fid layout) and features of the one PATH to '
    'this file (folders created)',
  )
  parser.add_argument(
    '--inception',
    metavar='PATH',
    default=None,
    help='pt_inception-2015-12-05-6726825d.pth or a `port-weights --kind '
    'inception-fid` folder (default: the cache, downloaded on first use)',
  )
  parser.add_argument(
    '--batch-size',
    type=positive_int,
    default=50,
    help="images per batch over all devices (pytorch-fid's default: 50)",
  )
  parser.add_argument(
    '--devices', type=nonnegative_int, default=0, help='devices to shard over (0 = all)'
  )
  parser.add_argument('--kid-subsets', type=positive_int, default=metrics.KID_SUBSETS)
  parser.add_argument('--kid-subset-size', type=positive_int, default=metrics.KID_SUBSET_SIZE)
  parser.add_argument(
    '--json',
    metavar='OUT.json',
    default=None,
    help='also write the scores to this file (folders created)',
  )


class _Sets:
  """Loads each PATH once: features for folders (one extractor for all), stats for .npz files."""

  def __init__(self, args: argparse.Namespace):
    self.args, self._extractor = args, None
    self._checked: dict[str, Any] = {}

  def extractor(self) -> Any:
    if self._extractor is None:
      import jax

      from jaxstyle import parallel  # the jax stack: `fid --help` stays instant
      from jaxstyle.fid import features, weights

      params = weights.load_params(self.args.inception)
      note = weights.unofficial_note(self.args.inception)
      if note:
        print(f'note: {note}', file=sys.stderr)
      devices = jax.devices()[: self.args.devices] if self.args.devices else None
      mesh = parallel.make_mesh(devices)
      self._extractor = features.FeatureExtractor(params, mesh, self.args.batch_size)
    return self._extractor

  def check(self, paths: list[str]) -> None:
    """Reads every .npz and every image header up front: a bad second PATH fails in seconds,
    before the weights load or the first folder's minutes of features."""
    from jaxstyle.fid import features  # jax, as in extractor()

    for path in paths:
      if _is_stats(path):
        if not os.path.isfile(path):
          raise BadInputError(f'{path}: no such statistics file')
        self._checked[path] = _read_stats(path)
      else:
        files = features.list_images(path)
        self._checked[path] = (files, features.read_sizes(files))

  def load(self, path: str) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
    """(features or None, (mu, sigma)) of a path `check` has seen."""
    if _is_stats(path):
      return self._checked[path]
    from jaxstyle.fid import features  # jax, as in extractor()

    files, sizes = self._checked[path]
    feats = features.files_features(
      files, self.extractor(), sizes=sizes, desc=os.path.basename(os.path.normpath(path))
    )
    return feats, metrics.statistics(feats)


def _is_stats(path: str) -> bool:
  return path.lower().endswith('.npz') and not os.path.isdir(path)


def _read_stats(path: str) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
  """(features or None, (mu, sigma)) of a statistics file; any unreadable file (empty, cut
  short, not a zip) is a BadInputError naming it."""
  try:
    stats = metrics.load_statistics(path)  # checks the file and its keys first
    return load_features(path), stats
  except UserError:
    raise
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
    reason = 'the file is empty' if os.path.getsize(path) == 0 else f'{type(err).__name__}: {err}'
    raise BadInputError(
      f'{path}: not a readable .npz of FID statistics ({reason}); write one with '
      '`jaxstyle fid FOLDER --save-stats OUT.npz`'
    ) from err


def load_features(path: str) -> np.ndarray | None:
  """The `features` array of a jaxstyle statistics file (None in pytorch-fid's own files); call
  after `metrics.load_statistics` has checked the file."""
  with np.load(path, allow_pickle=False) as f:
    if 'features' not in f.files:
      return None
    feats = f['features'][:]
  if feats.ndim != 2:
    raise BadInputError(f"{path}: 'features' should be (N, D), got shape {feats.shape}")
  return feats


def save_stats(path: str, feats: np.ndarray, out: str) -> None:
  """pytorch-fid's file (`mu`, `sigma`) plus our `features` (for KID later)."""
  mu, sigma = metrics.statistics(feats)
  folder = os.path.dirname(os.path.abspath(out))
  os.makedirs(folder, exist_ok=True)
  with open(out, 'wb') as f:  # a file object: numpy would append .npz to a path without it
    np.savez_compressed(f, mu=mu, sigma=sigma, features=feats.astype(np.float32))
  print(f'wrote statistics of {len(feats)} images of {path} to {out}')


def score(args: argparse.Namespace) -> dict[str, Any]:
  """FID (and KID) of the two paths."""
  sets = _Sets(args)
  sets.check(args.paths)
  for path in args.paths:  # before any feature extraction or FID's minute of sqrtm
    if args.kid and _is_stats(path) and sets.load(path)[0] is None:
      raise BadInputError(
        f'{path}: KID needs the Inception features, and this .npz holds only mu and sigma '
        '(pytorch-fid statistics); pass the image folder, or a file written by '
        '`jaxstyle fid FOLDER --save-stats OUT.npz`'
      )
  (f1, stats1), (f2, stats2) = sets.load(args.paths[0]), sets.load(args.paths[1])
  scores: dict[str, Any] = {'fid': metrics.frechet_distance(*stats1, *stats2)}
  if args.kid:
    scores.update(metrics.kid_from_features(f1, f2, args.kid_subsets, args.kid_subset_size))
  return scores


def run(args: argparse.Namespace) -> int:
  """Scores two paths, or saves one path's statistics (at exactly --save-stats / --json)."""
  for out, flag in ((args.save_stats, '--save-stats'), (args.json, '--json')):
    if out:  # folders created, and an unwritable one fails before any feature extraction
      writable_dir(os.path.dirname(os.path.abspath(out)), f'{flag} folder')
  if args.save_stats:
    if len(args.paths) != 1:
      raise UserError(f'--save-stats takes exactly one PATH (a folder), got {len(args.paths)}')
    if _is_stats(args.paths[0]):
      raise UserError(f'{args.paths[0]}: already a statistics file; --save-stats needs a folder')
    sets = _Sets(args)
    sets.check(args.paths)
    feats, _ = sets.load(args.paths[0])
    save_stats(args.paths[0], feats, args.save_stats)
    return 0
  if len(args.paths) != 2:
    raise UserError(f'give two PATHs to compare (got {len(args.paths)}), or one with --save-stats')
  scores = score(args)
  print(f'FID: {scores["fid"]:.4f}')
  if args.kid:
    print(
      f'KID: {scores["kid_mean"]:.6f} ± {scores["kid_std"]:.6f} '
      f'({scores["kid_subsets"]} subsets of {scores["kid_subset_size"]} images)'
    )
  if args.json:
    with open(args.json, 'w') as f:
      json.dump({'paths': args.paths, **scores}, f, indent=2)
  return 0
