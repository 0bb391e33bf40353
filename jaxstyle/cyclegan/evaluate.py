"""`jaxstyle evaluate`: score a CycleGAN run's generators on a split without FID or a human.

Metrics (keys follow docs/design/house_style.md, "Metrics and output"):
- `eval/transfer_A2B`, `eval/transfer_B2A`: the fraction of translations that a domain criterion
  assigns to the target domain. On the synthetic dataset this is the fixed criterion of
  `synthetic.domain_probability`. On real data it is a *crude proxy*: a linear discriminant over
  colour statistics (per-channel mean/std, mean saturation), fitted on the two training domains.
  It says whether the colour palette moved to the target domain, not whether the result is good.
- `eval/iou_A2B`, `eval/iou_B2A` (synthetic only): IoU of the estimated object mask of the
  translation with the ground-truth mask of the input, i.e. content preservation.
- `eval/cycle_l1_A`, `eval/cycle_l1_B`: mean |G_B(G_A(a)) - a| (and the B->A->B analogue) in
  [-1, 1] units, the quantity the cycle loss trains.
- `eval/fid_A2B`, `eval/kid_A2B` (± `eval/kid_std_A2B`), and B2A: FID / KID of the translations
  against the real test images of the target domain (jaxstyle.fid: the numbers pytorch-fid /
  torch-fidelity would give), when the Inception weights are available. The scores that real-data
  runs are compared by; note that FID is biased upwards for small sets (compare equal sizes;
  below 2,048 images the output and the page say so, and KID, which is unbiased, is beside it).
  `--mode clean` scores as clean-fid does; `--isc` adds the Inception Score of the translations
  (`eval/is_A2B` ± `eval/is_std_A2B`), `--prc` precision/recall against the real test images,
  all from one Inception pass per image set.
Test images are squashed to `image_size` as the reference test loader does. `jaxstyle evaluate`
also writes `<workdir>/eval/index.html` (report.py): the images behind the scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from jaxstyle import image_io
from jaxstyle.cyclegan import data, presets, report, synthetic
from jaxstyle.errors import UserError, nonnegative_int, positive_int

TranslateFn = Callable[[np.ndarray], np.ndarray]  # float [-1, 1] NHWC -> same shape


def _colour_features(images_uint8: np.ndarray) -> np.ndarray:
  x = np.asarray(images_uint8, np.float32) / 255.0
  mx, mn = x.max(-1), x.min(-1)
  sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
  return np.concatenate([x.mean((1, 2)), x.std((1, 2)), sat.mean((1, 2))[:, None]], -1)


class ColourCriterion:
  """P(domain B) from colour statistics: Fisher LDA with equal priors, fitted on real images.

  The crude proxy used for real datasets (see the module docstring); a ridge term keeps the
  shared covariance invertible when a domain is tiny.
  """

  def __init__(self, images_a: np.ndarray, images_b: np.ndarray, ridge: float = 1e-4):
    fa, fb = _colour_features(images_a), _colour_features(images_b)
    mu_a, mu_b = fa.mean(0), fb.mean(0)
    cov = np.cov(np.concatenate([fa - mu_a, fb - mu_b]).T) + ridge * np.eye(fa.shape[1])
    self.w = np.linalg.solve(cov, mu_b - mu_a)
    self.b = -0.5 * self.w @ (mu_a + mu_b)

  def __call__(self, images_uint8: np.ndarray) -> np.ndarray:
    z = _colour_features(images_uint8) @ self.w + self.b
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def fit_colour_criterion(data_cfg: Any, n_per_domain: int = 200) -> ColourCriterion:
  """Fits `ColourCriterion` on up to `n_per_domain` evenly spaced training images per domain."""
  sources = data.make_sources(data_cfg, 'train')
  imgs = {}
  for d in 'AB':
    n = len(sources[d])
    idx = np.linspace(0, n - 1, min(n, n_per_domain)).astype(int)
    imgs[d] = np.stack([data.eval_image(data_cfg, sources[d].image(i)) for i in idx])
  return ColourCriterion(imgs['A'], imgs['B'])


def _eval_views(data_cfg: Any, src: Any, n: int) -> tuple[np.ndarray, np.ndarray | None]:
  imgs = np.stack([data.eval_image(data_cfg, src.image(i)) for i in range(n)])
  if not hasattr(src, 'mask'):
    return imgs, None
  s = data_cfg.image_size
  masks = []
  for i in range(n):
    m = src.mask(i)
    if m.shape != (s, s):
      m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((s, s), Image.NEAREST)) > 127
    masks.append(m)
  return imgs, np.stack(masks)


@dataclasses.dataclass
class Outputs:
  """The images behind the scores, kept when asked: for FID/KID and the results page.

  `reals[d]`: domain d's test images; `fakes['A2B']`: their translations (uint8 NHWC);
  `rows['A2B']`: the first `page_images` as {'real', 'translated', 'reconstructed', 'identity'}.
  """

  page_images: int = 0
  reals: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  fakes: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  rows: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)


def evaluate_fns(
  fns: dict[str, TranslateFn],
  sources: dict[str, Any],
  data_cfg: Any,
  criterion: Callable[[np.ndarray], np.ndarray],
  max_images: int | None = None,
  batch_size: int = 16,
  outputs: Outputs | None = None,
) -> dict[str, float]:
  """The metrics for translation functions {'A2B': f, 'B2A': g} (float NHWC -> float NHWC).

  Separated from the networks so tests can score oracle and identity "generators". A one-sided
  model (CUT) gives only 'A2B': no B->A scores and no cycle. `outputs`, when given, receives the
  test images and their translations (see `Outputs`).
  """
  metrics: dict[str, float] = {}
  for src_d, dst_d in (('A', 'B'), ('B', 'A')):
    if f'{src_d}2{dst_d}' not in fns:
      continue
    fwd, back = fns[f'{src_d}2{dst_d}'], fns.get(f'{dst_d}2{src_d}')
    n = len(sources[src_d]) if max_images is None else min(max_images, len(sources[src_d]))
    imgs, masks = _eval_views(data_cfg, sources[src_d], n)
    hits, ious, cyc, fakes = [], [], [], []
    for start in range(0, n, batch_size):
      x = image_io.to_float(imgs[start : start + batch_size])
      y = np.asarray(fwd(x), np.float32)
      rec = None if back is None else np.asarray(back(y), np.float32)
      y8 = image_io.to_uint8(y)
      p_b = criterion(y8)
      hits.append(p_b > 0.5 if dst_d == 'B' else p_b < 0.5)
      if rec is not None:
        cyc.append(np.abs(rec - x).mean((1, 2, 3)))
      if masks is not None:
        ious.append(
          synthetic.mask_iou(synthetic.estimate_mask(y8), masks[start : start + batch_size])
        )
      if outputs is not None:
        fakes.append(y8)
        _add_rows(outputs, f'{src_d}2{dst_d}', x, y8, rec, back, start)
    key = f'{src_d}2{dst_d}'
    metrics[f'eval/transfer_{key}'] = float(np.concatenate(hits).mean())
    if ious:
      metrics[f'eval/iou_{key}'] = float(np.concatenate(ious).mean())
    if cyc:
      metrics[f'eval/cycle_l1_{src_d}'] = float(np.concatenate(cyc).mean())
    metrics[f'eval/n_images_{src_d}'] = float(n)
    if outputs is not None:
      outputs.reals[src_d], outputs.fakes[key] = imgs, np.concatenate(fakes)
  return metrics


def _add_rows(
  outputs: Outputs,
  key: str,
  x: np.ndarray,
  y8: np.ndarray,
  rec: np.ndarray | None,
  back: TranslateFn | None,
  start: int,
) -> None:
  """The page's rows from one batch; identity is the other generator on the real image (neither
  it nor the reconstruction exists for a one-sided model)."""
  rows = outputs.rows.setdefault(key, [])
  k = min(outputs.page_images - len(rows), len(x))
  if k <= 0:
    return
  ident = None if back is None else image_io.to_uint8(np.asarray(back(x[:k]), np.float32))
  for i in range(k):
    row = {
      'name': f'{key[0]} test #{start + i}',
      'real': image_io.to_uint8(x[i]),
      'translated': y8[i],
    }
    if rec is not None:
      row.update(reconstructed=image_io.to_uint8(rec[i]), identity=ident[i])
    rows.append(row)


def fid_kid(
  extract: Callable[[np.ndarray], np.ndarray],
  outputs: Outputs,
  isc: bool = False,
  prc: bool = False,
) -> dict[str, float]:
  """FID and KID (and with `isc` / `prc` the Inception Score and precision/recall) of each
  direction's translations against the target domain's real test images; `extract` must return
  logits too when `isc` (`FeatureExtractor(logits=True)`)."""
  from jaxstyle.fid import features, quality  # the jax stack: only when FID is asked for
  from jaxstyle.fid import metrics as fid_metrics  # scipy.linalg: only when FID is asked for

  feats, logits = {}, {}
  for name, images in [*outputs.reals.items(), *outputs.fakes.items()]:
    rows = extract(images, desc=f'Inception features, {"real " * (len(name) == 1)}{name}')
    feats[name], logits[name] = features.split_outputs(rows)
  print(
    'FID: a 2048x2048 matrix square root per direction (scipy, as pytorch-fid; about a '
    'minute each on 2 CPU cores)',
    flush=True,
  )
  scores: dict[str, float] = {}
  for key in outputs.fakes:
    fake, real = feats[key], feats[key[-1]]
    scores[f'eval/fid_{key}'] = fid_metrics.fid_from_features(fake, real)
    kid = fid_metrics.kid_from_features(fake, real)
    scores[f'eval/kid_{key}'], scores[f'eval/kid_std_{key}'] = kid['kid_mean'], kid['kid_std']
    # Capped at the set size: a subset of the whole set every time gives a std of 0.
    scores[f'eval/kid_subset_size_{key}'] = float(kid['kid_subset_size'])
    if isc:
      score = quality.inception_score(logits[key], min(quality.ISC_SPLITS, len(logits[key])))
      scores[f'eval/is_{key}'], scores[f'eval/is_std_{key}'] = score['is_mean'], score['is_std']
    if prc:
      pr = quality.precision_recall(fake, real)
      scores[f'eval/precision_{key}'], scores[f'eval/recall_{key}'] = pr['precision'], pr['recall']
  return scores


def small_sample_note(metrics: dict[str, float]) -> str | None:
  """The one-line bias warning when a scored FID rests on fewer than 2,048 images, else None."""
  from jaxstyle.fid.metrics import UNBIASED_N, bias_warning  # scipy: only when FID was scored

  if not any(k.startswith('eval/fid_') for k in metrics):
    return None
  ns = [int(v) for k, v in metrics.items() if k.startswith('eval/n_images_')]
  n = min(ns) if ns else 0
  return bias_warning(n)[len('warning: ') :] if ns and n < UNBIASED_N else None


def evaluate(
  config: Any,
  params: Any,
  split: str = 'test',
  max_images: int | None = None,
  batch_size: int = 16,
  outputs: Outputs | None = None,
) -> dict[str, float]:
  """Scores params {'G_A', 'G_B', ...} (CycleGAN) or {'G', ...} (CUT: A->B only) of a run whose
  config has `model` and `data` sections."""
  from jaxstyle import models  # the jax stack: `jaxstyle evaluate --help` stays instant
  from jaxstyle.cyclegan import translate

  cfg = dict(config.to_dict() if hasattr(config, 'to_dict') else config)
  data_cfg = presets.data_config()  # fields an older config.json lacks keep their defaults
  data_cfg.update(dict(cfg.get('data', {})))
  model_cfg = translate.model_config(dict(cfg.get('model', {})))
  generator = models.make_generator(model_cfg)
  multiple = models.generator_multiple(model_cfg)
  fns = {}
  for key, name in (('A2B', 'G_A'), ('B2A', 'G_B')) if 'G_A' in params else (('A2B', 'G'),):
    g = translate.generator_fn(generator, params[name])
    fns[key] = lambda x, g=g: translate.translate_float(g, x, multiple)
  sources = data.make_sources(data_cfg, split)
  if data_cfg.source == 'synthetic':
    criterion = synthetic.domain_probability
  else:
    criterion = fit_colour_criterion(data_cfg)
  return evaluate_fns(fns, sources, data_cfg, criterion, max_images, batch_size, outputs)


def format_table(metrics: dict[str, float]) -> str:
  """A two-column text table, one metric per row."""
  width = max(len(k) for k in metrics)
  return '\n'.join(f'{k:<{width}}  {v:.4f}' for k, v in sorted(metrics.items()))


def _step_arg(value: str) -> str | int:
  if value in ('best', 'latest'):
    return value
  return nonnegative_int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the sub-command's flags (called by `jaxstyle.cli`)."""
  parser.add_argument('--workdir', required=True, help='training run directory')
  parser.add_argument(
    '--step',
    type=_step_arg,
    default='latest',
    help='checkpoint to score: latest (default), a step number, or best: the lowest FID '
    'tracked during training (eval.fid_every_steps; an optimistic protocol, docs/fid.md)',
  )
  parser.add_argument('--split', choices=('test', 'train'), default='test')
  parser.add_argument(
    '--max-images', type=positive_int, default=None, help='per domain (default: all)'
  )
  parser.add_argument('--batch-size', type=positive_int, default=16)
  parser.add_argument('--data-dir', default=None, help="override the run's TFDS data_dir")
  parser.add_argument('--root', default=None, help="override the run's image-folder root")
  parser.add_argument(
    '--fid',
    choices=('auto', 'on', 'off'),
    default='auto',
    help='FID/KID: auto = on for real data (folders, TFDS) or when --inception '
    'is given, off on the synthetic dataset (its own criteria are exact, and '
    "the README's first command stays short)",
  )
  parser.add_argument(
    '--inception',
    metavar='PATH',
    default=None,
    help="FID Inception weights (.pth, a port-weights folder, or clean-fid's .pt); default: "
    "the mode's file in the cache ($JAXSTYLE_CACHE), downloaded on first use",
  )
  parser.add_argument(
    '--mode',
    choices=('pytorch-fid', 'clean'),
    default='pytorch-fid',
    help='how images reach the Inception network: as pytorch-fid (default) or clean-fid',
  )
  parser.add_argument(
    '--isc', action='store_true', help='also the Inception Score of the translations'
  )
  parser.add_argument(
    '--prc', action='store_true', help='also precision/recall (k = 3) against the real images'
  )
  parser.add_argument(
    '--page-images',
    type=nonnegative_int,
    default=8,
    help='test images per direction shown on eval/index.html',
  )


def _fid_extractor(args: argparse.Namespace, source: str) -> tuple[Any, list[str]]:
  """(feature extractor or None, notes for the record and the page: why no FID, which weights)."""
  if args.fid == 'off':
    return None, ['FID/KID not computed (--fid off)']
  if args.fid == 'auto' and source == 'synthetic' and not args.inception:
    return None, ['FID/KID not computed on the synthetic dataset (--fid on to compute them)']
  from jaxstyle.fid import features, weights  # the Inception stack: only when FID is asked for

  mode = getattr(args, 'mode', 'pytorch-fid')
  try:
    params = weights.load_params(args.inception, mode=mode)
    extract = features.FeatureExtractor(params, mode=mode, logits=getattr(args, 'isc', False))
  except UserError as err:
    if args.inception:  # asked for explicitly: a bad file is an error, not a note
      raise
    return None, [f'FID/KID not computed: {err}']
  note = weights.unofficial_note(args.inception, mode)
  return extract, [f'FID/KID in {mode} mode'] + ([note] if note else [])


def run(args: argparse.Namespace) -> int:
  """Scores the checkpoint `--step` names (default: the newest readable one), prints a table and
  writes `<workdir>/eval.json` and the results page `<workdir>/eval/index.html`.

  The step is recorded ("step" in eval.json, and printed): after a damaged checkpoint the score
  is of an older step than the run's last, and the record must say so.
  """
  from jaxstyle import checkpoint  # orbax: `evaluate --help` stays instant
  from jaxstyle.cyclegan import fid_hook  # jax: `evaluate --help` stays instant

  want, step_notes = fid_hook.pick_step(args.workdir, getattr(args, 'step', 'latest'))
  config, params, step = checkpoint.load_run_with_step(args.workdir, want)  # UserError: no run
  config.setdefault('data', {})
  for key in ('data_dir', 'root'):
    if getattr(args, key) is not None:
      config['data'][key] = getattr(args, key)
  source = config['data'].get('source', presets.data_config().source)
  extract, notes = _fid_extractor(args, source)  # before the long part: bad weights fail fast
  notes = step_notes + notes
  outputs = Outputs(page_images=args.page_images)
  metrics = evaluate(config, params, args.split, args.max_images, args.batch_size, outputs)
  if extract is not None:
    metrics.update(fid_kid(extract, outputs, args.isc, args.prc))
    small = small_sample_note(metrics)
    if small:
      notes.append(small)
  record = {'split': args.split, 'step': step, **metrics}
  if extract is not None:
    record['fid_mode'] = extract.mode
  if notes:
    record['fid_note'] = ' '.join(notes)
  with open(os.path.join(args.workdir, 'eval.json'), 'w') as f:
    json.dump(record, f, indent=2, sort_keys=True)
  page = report.write_results_page(
    args.workdir,
    step=step,
    split=args.split,
    scores=metrics,
    rows=outputs.rows,
    notes=notes,
    curve=fid_hook.fid_curve(args.workdir),
  )
  print(f'scored step {step} of {args.workdir} ({args.split} split)')
  print(format_table(metrics))
  print('\n'.join(notes + [f'results page: {page}']))
  return 0
