"""CUT / FastCUT trainer: CycleGAN's unpaired trainer (`cyclegan.train.train`) with CUT's state,
step and sample grid.

Everything around the step is shared with CycleGAN on purpose: the (seed, step) data stream
(`cyclegan.data`), checkpoints with exact resume, metrics and TensorBoard, preemption, FID during
training (one direction, A->B), the end-of-run evaluation and the run's files. Only what differs
is here (`TASK`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxstyle import image_io
from jaxstyle.cut import step as cut_step
from jaxstyle.cyclegan import train as unpaired

COLUMNS = ('Original', 'G(original)')


def sample_grid(config: Any) -> Callable[..., np.ndarray]:
  """`(params, test A, test B) -> uint8 grid`: rows A (G(a), the translation) then B (G(b), the
  identity mapping the identity NCE trains), columns original / G(original)."""
  G, _, _ = cut_step.make_nets(config)

  @jax.jit
  def fn(params, a, b):
    g = lambda x: G.apply({'params': params['G']}, x).astype(np.float32)
    return a, g(a), b, g(b)

  def draw(params: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    real_a, fake_b, real_b, idt_b = (image_io.to_uint8(x) for x in jax.device_get(fn(params, a, b)))
    rows, names = [], []
    for d, reals, outs in (('A', real_a, fake_b), ('B', real_b, idt_b)):
      rows += [[reals[i], outs[i]] for i in range(len(reals))]
      names += [d if len(reals) == 1 else f'{d}{i + 1}' for i in range(len(reals))]
    return image_io.grid(rows, labels=[COLUMNS], row_labels=names, min_cell=128, pad=6)

  return draw


TASK = unpaired.Task(
  init_state=cut_step.init_state,
  make_train_step=cut_step.make_train_step,
  sample_grid=sample_grid,
  generators={'A2B': 'G'},
  postfix={'G': 'train/loss_G', 'NCE': 'train/loss_NCE', 'D': 'train/loss_D'},
)


def train(config: Any, workdir: str) -> dict[str, float]:
  """Trains CUT or FastCUT as `config` says, checkpointing into `workdir`; returns the last
  metrics (with 'step'). Re-running the same command resumes."""
  return unpaired.train(config, workdir, TASK)
