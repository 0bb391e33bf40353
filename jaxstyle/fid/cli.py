"""`jaxstyle fid PATH_A PATH_B [--kid] [--isc] [--prc] [--mode clean]`, `jaxstyle fid PATH --isc`
and `jaxstyle fid PATH --save-stats OUT.npz`.

Each PATH is a folder of images or an .npz of statistics in pytorch-fid's / clean-fid's layout
(`mu`, `sigma`), so published statistics can be compared against directly. `--save-stats` also
stores the features (`features`; clean-fid's KID name `feats` in clean mode) and the mode: KID and
precision/recall are statistics of the features themselves, not of mu and sigma. One Inception pass
per folder feeds every score (the Inception Score's logits come from the same pass). The first PATH
is the generated set (torch-fidelity's input1), the second the real one.
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
from jaxstyle.fid import metrics, quality, resize
from jaxstyle.fid.metrics import UNBIASED_N, bias_warning


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the sub-command's flags (called by `jaxstyle.cli`)."""
  parser.add_argument(
    'paths',
    nargs='+',
    metavar='PATH',
    help='image folder or .npz statistics; two to score (generated first, real second), '
    'one with --save-stats or --isc',
  )
  parser.add_argument(
    '--mode',
    choices=resize.MODES,
    default=resize.DEFAULT_MODE,
    help="pytorch-fid (default; bilinear resize in the network, pytorch-fid's weights) or "
    "clean (clean-fid: PIL bicubic per channel in float, clean-fid's weights); docs/fid.md",
  )
  parser.add_argument(
    '--isc',
    action='store_true',
    help='Inception Score of the first PATH (a folder), as torch-fidelity',
  )
  parser.add_argument('--isc-splits', type=positive_int, default=quality.ISC_SPLITS)
  parser.add_argument(
    '--prc',
    action='store_true',
    help='precision/recall of the first PATH against the second (k-NN radii, torch-fidelity)',
  )
  parser.add_argument('--prc-k', type=positive_int, default=quality.PRC_NEIGHBORHOOD)
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
    help='pt_inception-2015-12-05-6726825d.pth, a `port-weights --kind inception-fid` '
    "folder or clean-fid's inception-2015-12-05.pt (default: the mode's file in the cache, "
    'downloaded on first use)',
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
    self.logits: dict[str, np.ndarray | None] = {}
    self._loaded: dict[str, Any] = {}

  def extractor(self) -> Any:
    if self._extractor is None:
      import jax

      from jaxstyle import parallel  # the jax stack: `fid --help` stays instant
      from jaxstyle.fid import features, weights

      mode = self.args.mode
      params = weights.load_params(self.args.inception, mode=mode)
      note = weights.unofficial_note(self.args.inception, mode)
      if note:
        print(f'note: {note}', file=sys.stderr)
      devices = jax.devices()[: self.args.devices] if self.args.devices else None
      mesh = parallel.make_mesh(devices)
      self._extractor = features.FeatureExtractor(
        params, mesh, self.args.batch_size, mode=mode, logits=self.args.isc
      )
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
        _check_mode(path, self.args.mode)
      else:
        files = features.list_images(path)
        self._checked[path] = (files, features.read_sizes(files))

  def load(self, path: str) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
    """(features or None, (mu, sigma)) of a path `check` has seen."""
    if _is_stats(path):
      return self._checked[path]
    if path in self._loaded:
      return self._loaded[path]
    from jaxstyle.fid import features  # jax, as in extractor()

    files, sizes = self._checked[path]
    rows = features.files_features(
      files, self.extractor(), sizes=sizes, desc=os.path.basename(os.path.normpath(path))
    )
    feats, self.logits[path] = features.split_outputs(rows)
    self._loaded[path] = (feats, metrics.statistics(feats))
    return self._loaded[path]


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
  """The features of a statistics file: jaxstyle's `features` or clean-fid's KID `feats` (None in
  pytorch-fid's own files); call after `metrics.load_statistics` has checked the file."""
  arrays, _ = metrics.load_npz_arrays(path, ('features', 'feats'))  # sizes checked, not np.load
  key = next((k for k in ('features', 'feats') if k in arrays), None)
  if key is None:
    return None
  feats = arrays[key]
  if feats.ndim != 2:
    raise BadInputError(f"{path}: '{key}' should be (N, D), got shape {feats.shape}")
  return feats


def stats_mode(path: str) -> str | None:
  """The `--mode` a jaxstyle statistics file was written in (None: not recorded, e.g. published
  pytorch-fid or clean-fid statistics)."""
  mode = metrics.load_npz_arrays(path, ('mode',), kinds='U')[0].get('mode')
  return str(mode[()]) if mode is not None and mode.ndim == 0 else None


def _check_mode(path: str, mode: str) -> None:
  written = stats_mode(path)
  if written is not None and written != mode:
    raise BadInputError(
      f'{path}: statistics written in {written} mode, and this run scores in {mode} mode; the '
      f'two resize differently, so their FIDs do not compare: pass --mode {written}'
    )


def save_stats(path: str, feats: np.ndarray, out: str, mode: str = resize.DEFAULT_MODE) -> None:
  """pytorch-fid's / clean-fid's file (`mu`, `sigma`) plus the features (`features`; in clean mode
  `feats`, the name of clean-fid's KID files) and the mode they were computed in."""
  mu, sigma = metrics.statistics(feats)
  folder = os.path.dirname(os.path.abspath(out))
  os.makedirs(folder, exist_ok=True)
  key = 'feats' if mode == 'clean' else 'features'
  with open(out, 'wb') as f:  # a file object: numpy would append .npz to a path without it
    np.savez_compressed(
      f, mu=mu, sigma=sigma, mode=np.array(mode), **{key: feats.astype(np.float32)}
    )
  print(f'wrote {mode} statistics of n = {len(feats)} images of {path} to {out}')


def score(args: argparse.Namespace) -> dict[str, Any]:
  """FID (with n, and KID when asked or when n < 2048), IS and precision/recall of the paths."""
  sets = _Sets(args)
  sets.check(args.paths)
  if args.isc and _is_stats(args.paths[0]):
    raise BadInputError(
      f'{args.paths[0]}: the Inception Score needs the images (their logits); pass the folder'
    )
  for path in args.paths:  # before any feature extraction or FID's minute of sqrtm
    for name, asked in (('KID', args.kid), ('precision/recall', args.prc)):
      if asked and _is_stats(path) and sets.load(path)[0] is None:
        raise BadInputError(
          f'{path}: {name} needs the Inception features, and this .npz holds only mu and sigma '
          '(pytorch-fid / clean-fid FID statistics); pass the image folder, or a file written '
          'by `jaxstyle fid FOLDER --save-stats OUT.npz`'
        )
  loaded = [sets.load(path) for path in args.paths]
  scores: dict[str, Any] = {'mode': args.mode}
  if args.isc:
    scores.update(quality.inception_score(sets.logits[args.paths[0]], args.isc_splits))
    scores['is_n'] = len(loaded[0][0])
  if len(loaded) == 2:
    (f1, stats1), (f2, stats2) = loaded
    scores['fid'] = metrics.frechet_distance(*stats1, *stats2)
    scores['n'] = [None if f is None else len(f) for f in (f1, f2)]
    small = any(n is not None and n < UNBIASED_N for n in scores['n'])
    if (args.kid or small) and f1 is not None and f2 is not None:
      scores.update(metrics.kid_from_features(f1, f2, args.kid_subsets, args.kid_subset_size))
    if args.prc:
      scores.update(quality.precision_recall(f1, f2, args.prc_k))
  return scores


def _n(n: int | None) -> str:
  return '?' if n is None else str(n)


def print_scores(scores: dict[str, Any]) -> None:
  """The scores, each with its n; below 2,048 images the one-line bias warning."""
  if 'fid' in scores:
    n1, n2 = scores['n']
    print(f'FID: {scores["fid"]:.4f} (n = {_n(n1)} vs {_n(n2)}, {scores["mode"]} mode)')
    if any(n is not None and n < UNBIASED_N for n in scores['n']):
      print(bias_warning(min(n for n in scores['n'] if n is not None)), file=sys.stderr)
  if 'kid_mean' in scores:
    print(
      f'KID: {scores["kid_mean"]:.6f} ± {scores["kid_std"]:.6f} '
      f'({scores["kid_subsets"]} subsets of {scores["kid_subset_size"]} images)'
    )
  if 'is_mean' in scores:
    print(
      f'IS: {scores["is_mean"]:.4f} ± {scores["is_std"]:.4f} '
      f'({scores["is_splits"]} splits of n = {scores["is_n"]})'
    )
  if 'precision' in scores:
    print(
      f'precision: {scores["precision"]:.4f}, recall: {scores["recall"]:.4f}, '
      f'F: {scores["f_score"]:.4f} (k = {scores["prc_k"]})'
    )


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
    save_stats(args.paths[0], feats, args.save_stats, args.mode)
    return 0
  if len(args.paths) != 2 and not (len(args.paths) == 1 and args.isc):
    raise UserError(
      f'give two PATHs to compare (got {len(args.paths)}), or one with --save-stats or --isc'
    )
  if len(args.paths) == 1 and (args.kid or args.prc):
    raise UserError('--kid and --prc compare two sets: give two PATHs')
  scores = score(args)
  print_scores(scores)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump({'paths': args.paths, **scores}, f, indent=2)
  return 0
