"""pix2pix scores on a paired split: `jaxstyle evaluate --workdir RUN` for a pix2pix run.

Always, against the true target half: `eval/l1` (mean |G(x) - y| in [-1, 1] units, what λ_L1
trains), `eval/psnr` (dB, per image on [0, 1], then averaged) and `eval/ssim` (Wang et al. 2004:
11x11 Gaussian window σ 1.5, K1 0.01, K2 0.03, on each RGB channel, averaged; the common
skimage / TF definition, computed here in NumPy).
On the synthetic pairs, the paper's FCN-score columns (`synthetic.scores`: per-pixel accuracy,
per-class accuracy, class IoU, and each class's IoU) as `eval/fcn_*`: for photo -> labels
(direction BtoA) the output label map is decoded to classes; for labels -> photo (AtoB) the fixed
segmenter (`synthetic.segment_photo`) reads the generated photo. Both are compared with the true
class map, so a perfect generator scores what the segmenter scores on real photos.
Inference mode: `eval_mode=False` is the reference's default test (dropout on, each image's own
batch statistics, one image per call, a key per image), `True` its `--eval` (running statistics).
`jaxstyle evaluate` also writes `<workdir>/eval/index.html` (cyclegan/report.py): the scores and,
for the first `--page-images` test pairs, input | output | target side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxstyle import image_io
from jaxstyle.errors import UserError
from jaxstyle.pix2pix import data, inference, presets, synthetic

TranslateFn = Callable[
  [np.ndarray, int], np.ndarray
]  # (float NHWC in [-1, 1], first index) -> same


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2
  g = np.exp(-(x**2) / (2 * sigma**2))
  return g / g.sum()


def _filter(x: np.ndarray, w: np.ndarray) -> np.ndarray:
  """Separable 'valid' filtering over axes 1 and 2 of (N, H, W, C) float64."""
  k = len(w)
  h = sum(w[i] * x[:, i : x.shape[1] - k + 1 + i] for i in range(k))
  return sum(w[i] * h[:, :, i : h.shape[2] - k + 1 + i] for i in range(k))


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Per-image SSIM of (N, H, W, C) images in [0, 1] (sides >= 11)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  w = _gaussian_window()
  c1, c2 = 0.01**2, 0.03**2
  mu_a, mu_b = _filter(a, w), _filter(b, w)
  var_a = _filter(a * a, w) - mu_a**2
  var_b = _filter(b * b, w) - mu_b**2
  cov = _filter(a * b, w) - mu_a * mu_b
  s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
  return s.mean((1, 2, 3))


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Per-image PSNR in dB of images in [0, 1]; identical images give +inf (capped at 100)."""
  mse = np.mean(np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64)), axis=(1, 2, 3))
  return np.minimum(10.0 * np.log10(1.0 / np.maximum(mse, 1e-10)), 100.0)


def evaluate_fn(
  fn: TranslateFn,
  source: Any,
  data_cfg: Any,
  max_images: int | None = None,
  batch_size: int = 16,
  keep: int = 0,
) -> tuple[dict[str, float], list[tuple[np.ndarray, ...]]]:
  """(metrics, the first `keep` (input, output, target) uint8 triples) of `fn` on `source`.

  Separated from the network so tests can score oracle and identity "generators".
  """
  n = len(source) if max_images is None else min(max_images, len(source))
  direction = data_cfg.direction
  labelled = hasattr(source, 'classes')
  l1s, psnrs, ssims, kept = [], [], [], []
  conf = np.zeros((len(synthetic.CLASSES),) * 2, np.int64)
  for start in range(0, n, batch_size):
    idx = range(start, min(n, start + batch_size))
    pairs = [data.orient(data_cfg, *data.eval_pair(data_cfg, *source.pair(i))) for i in idx]
    x8, y8 = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    out = np.asarray(fn(image_io.to_float(x8), start), np.float32)
    y = image_io.to_float(y8)
    l1s.append(np.abs(out - y).mean((1, 2, 3)))
    o01, y01 = (out + 1) / 2, (y + 1) / 2
    psnrs.append(psnr(o01, y01))
    ssims.append(ssim(o01, y01))
    o8 = image_io.to_uint8(out)
    if labelled:
      truth = np.stack([_classes_at(source.classes(i), data_cfg.image_size) for i in idx])
      pred = synthetic.decode_labels(o8) if direction == 'BtoA' else synthetic.segment_photo(o8)
      conf += synthetic.confusion(pred, truth)
    kept += [(x8[k], o8[k], y8[k]) for k in range(len(idx)) if len(kept) + k < keep]
  metrics = {
    'eval/l1': float(np.concatenate(l1s).mean()),
    'eval/psnr': float(np.concatenate(psnrs).mean()),
    'eval/ssim': float(np.concatenate(ssims).mean()),
    'eval/n_images': float(n),
  }
  if labelled:
    metrics.update(synthetic.scores(conf, 'eval/fcn_'))
  return metrics, kept


def _classes_at(classes: np.ndarray, size: int) -> np.ndarray:
  """A class map at the evaluation size (nearest-neighbour, so classes stay classes)."""
  if classes.shape == (size, size):
    return classes
  from PIL import Image

  return np.asarray(Image.fromarray(classes).resize((size, size), Image.NEAREST))


def evaluate(
  config: Any,
  params: Any,
  batch_stats: Any,
  split: str = 'test',
  max_images: int | None = None,
  eval_mode: bool = False,
  keep: int = 0,
  source: Any = None,
  seed: int | None = None,
) -> tuple[dict[str, float], list]:
  """Scores G = params['G'] of a pix2pix run (config: its `data` and `model` sections) on
  `source`, by default the config's `split`; the default mode's dropout keys come from `seed`
  (default: the run's)."""
  given = config.to_dict() if hasattr(config, 'to_dict') else dict(config)
  cfg = inference.run_config(given)
  data_cfg = cfg.data
  seed = cfg.seed if seed is None else seed
  fn = inference.translate_fn(cfg.model, params['G'], batch_stats['G'], eval_mode, seed)
  source = data.make_source(data_cfg, split) if source is None else source
  metrics, kept = evaluate_fn(fn, source, data_cfg, max_images, keep=keep)
  metrics['eval/eval_mode'] = float(eval_mode)
  if not eval_mode:
    metrics['eval/dropout_seed'] = float(seed)
  return metrics, kept


def domain_names(data_cfg: Any) -> tuple[str, str]:
  """What the A and B halves are, for titles: ('labels', 'photo') on the synthetic pairs, a
  published dataset's from `presets.DATASETS` ('A photo, B labels'), else ('A', 'B') (a
  `data.root` of the user's own may hold anything, whatever `data.name` says)."""
  if data_cfg.source == 'synthetic':
    return 'labels', 'photo'
  what = '' if data_cfg.root else presets.DATASETS.get(data_cfg.name, ('', (0, 0), ''))[2]
  m = re.match(r'A (\w+), B (\w+)', what)
  return (m.group(1), m.group(2)) if m else ('A', 'B')


def write_page(
  workdir: str,
  cfg: Any,
  step: int,
  split: str,
  metrics: dict[str, float],
  kept: list[tuple[np.ndarray, ...]],
  names: list[str],
  notes: list[str],
) -> str:
  """The results page (`cyclegan.report`): the scores, and per kept test pair input | output |
  target side by side, titled with the direction and the inference mode the scores are of."""
  from jaxstyle.cyclegan import report

  a, b = domain_names(cfg.data)
  src, dst = (a, b) if cfg.data.direction == 'AtoB' else (b, a)
  eval_mode = bool(metrics['eval/eval_mode'])
  mode = (
    '--eval (running batch-norm statistics, no dropout)'
    if eval_mode
    else f"dropout on and each image's own batch statistics (the reference's test.py), dropout "
    f'seed {int(metrics.get("eval/dropout_seed", cfg.seed))}'
  )
  key = f'{src}→{dst}'
  rows = [
    {'name': name, 'input': x, 'output': y, 'target': t}
    for name, (x, y, t) in zip(names, kept, strict=True)
  ]
  columns = [
    ('input', f'Input ({src})'),
    ('output', f'Output (generated {dst})'),
    ('target', f'Target (real {dst})'),
  ]
  run_name = os.path.basename(os.path.abspath(workdir))
  short_mode = '--eval' if eval_mode else 'dropout + batch statistics'
  return report.write_results_page(
    workdir,
    step=step,
    split=split,
    scores=metrics,
    rows={key: rows},
    notes=[f'Inference: {mode}.', *notes],
    title=f'pix2pix {src} → {dst} ({cfg.data.direction}), {short_mode}: {run_name}',
    columns={key: columns},
    samples_layout='Rows: test pairs; columns input / output / target, dropout + batch statistics.',
  )


def run(args: argparse.Namespace) -> int:
  """`jaxstyle evaluate --workdir RUN [--eval]` for a pix2pix run: prints the scores and writes
  `<workdir>/eval.json` and the results page `<workdir>/eval/index.html`; FID/KID of the outputs
  against the true targets as CycleGAN's `--fid` / `--inception` / `--mode` say (on by default for
  real data, off on the synthetic)."""
  from jaxstyle.cyclegan import evaluate as cyclegan_evaluate

  if getattr(args, 'step', 'latest') == 'best':
    raise UserError('--step best needs FID tracked during training, which pix2pix runs do not do')
  step = None if args.step == 'latest' else args.step
  config, params, stats, step = inference.load_run(args.workdir, step)
  for key in ('root',):
    if getattr(args, key, None) is not None:
      config.setdefault('data', {})[key] = getattr(args, key)
  source = config.get('data', {}).get('source', 'aligned')
  extract, notes = cyclegan_evaluate._fid_extractor(args, source)
  page_images = getattr(args, 'page_images', 8)
  keep = max(page_images, 0 if extract is None else (args.max_images or 1 << 30))
  cfg = inference.run_config(config)
  pairs = data.make_source(cfg.data, args.split)
  seed = getattr(args, 'seed', None)
  metrics, kept = evaluate(
    config, params, stats, args.split, args.max_images, bool(args.eval), keep, pairs, seed
  )
  if extract is not None:
    # Keyed by the run's direction: a BtoA run's outputs are A images, scored against the real A.
    key = 'A2B' if cfg.data.direction == 'AtoB' else 'B2A'
    outputs = cyclegan_evaluate.Outputs()
    outputs.reals[key[-1]] = np.stack([t[2] for t in kept])
    outputs.fakes[key] = np.stack([t[1] for t in kept])
    metrics.update(cyclegan_evaluate.fid_kid(extract, outputs, args.isc, args.prc))
    metrics[f'eval/n_images_{key}'] = float(len(kept))
    small = cyclegan_evaluate.small_sample_note(metrics)
    if small:
      notes.append(small)
  record = {'split': args.split, 'step': step, **metrics}
  if extract is not None:
    record['fid_mode'] = extract.mode
  if notes:
    record['fid_note'] = ' '.join(notes)
  with open(os.path.join(args.workdir, 'eval.json'), 'w') as f:
    json.dump(record, f, indent=2, sort_keys=True)
  shown = kept[:page_images]
  names = [pairs.name(i) for i in range(len(shown))]
  page = write_page(args.workdir, cfg, step, args.split, metrics, shown, names, notes)
  mode = '--eval (running statistics)' if args.eval else 'dropout + batch statistics'
  print(f'scored step {step} of {args.workdir} ({args.split} split, {mode})')
  print(cyclegan_evaluate.format_table(metrics))
  print('\n'.join(notes + [f'results page: {page}']))
  return 0
