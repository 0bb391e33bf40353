"""The CycleGAN side of FID tracked during training (`config.eval.fid_every_steps`).

`jaxstyle.fid.tracking.FIDTracker` does the scoring and is task-agnostic; this module gives it
CycleGAN's two directions (A->B by G_A against real B, B->A by G_B against real A, seeded subsets of
`eval.fid_images` test images per domain, squashed to image_size as `jaxstyle evaluate` does) and
keeps the best step, which the trainer's checkpoint manager keeps (`should_preserve`). On resume the
best step so far is read back from metrics.jsonl. A CUT or pix2pix trainer needs only its own
`directions` and generator call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jaxstyle import checkpoint, image_io, models
from jaxstyle.cyclegan import data
from jaxstyle.errors import UserError
from jaxstyle.fid import tracking
from jaxstyle.metrics import METRICS_FILE, read_metrics

log = logging.getLogger(__name__)

_GENERATOR = {'A2B': 'G_A', 'B2A': 'G_B'}


class TrainingFID:
  """Scores the current generators every `eval.fid_every_steps` steps and tracks the best step."""

  def __init__(
    self,
    config: Any,
    test_sources: dict[str, Any],
    records: list[dict],
    workdir: str,
    generators: dict[str, str] | None = None,
  ):
    """`generators`: scored direction -> params key (default CycleGAN's two; CUT's {'A2B': 'G'})."""
    from jaxstyle.fid import features, weights  # the Inception stack: only when tracking is on

    ev = config.eval
    self.every = int(ev.fid_every_steps)
    params = weights.load_params(ev.inception or None, mode=ev.fid_mode)
    note = weights.unofficial_note(ev.inception or None, ev.fid_mode)
    if note:
      log.warning('FID tracking: %s', note)
    extractor = features.FeatureExtractor(params, mode=ev.fid_mode)
    self.generators = dict(generators or _GENERATOR)
    images = {}
    for d in 'AB':
      idx = tracking.subset(len(test_sources[d]), ev.fid_images, ev.fid_seed)
      images[d] = np.stack(
        [data.eval_image(config.data, test_sources[d].image(int(i))) for i in idx]
      )
    self.tracker = tracking.FIDTracker(
      {key: (image_io.to_float(images[key[0]]), images[key[-1]]) for key in self.generators},
      extractor,
    )
    G = models.make_generator(config.model)  # the generator alone: CUT's D is not CycleGAN's
    self._apply = jax.jit(lambda p, x: G.apply({'params': p}, x).astype(np.float32))
    ckpt = os.path.join(workdir, 'ckpt')
    # Resumed: the best step so far among those still checkpointed.
    self.best = tracking.best_step(
      records, checkpoint.run_steps(workdir) if os.path.isdir(ckpt) else []
    )

  def due(self, step: int, total: int) -> bool:
    return step % self.every == 0 or step == total

  def should_preserve(self, checkpoints: Sequence[Any], *, context: Any) -> list[bool]:
    """Orbax's preservation-policy protocol: the trainer's manager keeps the best step so far
    besides its `ckpt.keep` newest (`checkpoint.make_manager(keep_also=...)`)."""
    del context
    return [self.best is not None and c.step == self.best[0] for c in checkpoints]

  def __call__(self, step: int, params: Any) -> dict[str, float]:
    """The tracked scores of `params` at `step` (metrics.jsonl / TensorBoard keys)."""
    scores = self.tracker.score(lambda d, x: self._apply(params[self.generators[d]], x))
    value = scores[tracking.TRACK_KEY]
    if np.isfinite(value) and (self.best is None or value < self.best[1]):
      self.best = (step, value)
    scores[f'{tracking.PREFIX}/best_step'] = float(self.best[0]) if self.best else float('nan')
    return scores


def _history(workdir: str) -> list[dict]:
  exists = os.path.exists(os.path.join(workdir, METRICS_FILE))
  return read_metrics(workdir) if exists else []


def pick_step(workdir: str, which: str | int) -> tuple[int | None, list[str]]:
  """(the step to read, or None for the newest readable one; notes for the record and page)."""
  if which == 'latest':
    return None, []
  if which != 'best':
    return int(which), []
  steps = checkpoint.run_steps(workdir) if os.path.isdir(os.path.join(workdir, 'ckpt')) else []
  best = tracking.best_step(_history(workdir), steps)
  if best is None:
    raise UserError(
      f'{workdir}: no FID was tracked during training (config eval.fid_every_steps=0, or no '
      'tracked step is still checkpointed), so there is no best step; use --step latest or N'
    )
  return best[0], [
    f'step {best[0]} is the best FID tracked during training ({best[1]:.2f} on a fixed subset of '
    'the test split): choosing the step on the test images is an optimistic protocol (as CUT '
    'reports its numbers); say so when comparing, or pick the step on held-out images'
  ]


def fid_curve(workdir: str) -> list[tuple[int, float]]:
  """(step, tracked FID) of the run's metrics.jsonl, for the results page."""
  return tracking.curve(_history(workdir))
