"""pix2pix trainer: one linear `train(config, workdir)`, read top to bottom (big_vision style).

As CycleGAN's: the workdir is the run's identity (re-running resumes from its newest checkpoint);
the data stream is a pure function of (seed, step) and the whole state, running batch-norm
statistics included, is checkpointed, so a resumed run continues exactly. The resume order and the
loop are `jaxstyle.train_loop`'s (fast style's and AdaIN's too): SIGTERM / Ctrl-C finish the step,
save it and exit 143 / 130 (`jaxstyle.preemption`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np

from jaxstyle import checkpoint, config_lib, image_io, parallel, storage, train_loop
from jaxstyle.kernels import dispatch
from jaxstyle.metrics import MetricWriter, write_config
from jaxstyle.pix2pix import data, evaluate
from jaxstyle.pix2pix import step as train_state

log = logging.getLogger(__name__)


def sample_path(workdir: str, step: int) -> str:
  return os.path.join(workdir, 'samples', f'step_{step:06d}.png')


def sample_grid(triples: list[tuple[np.ndarray, ...]], eval_mode: bool) -> np.ndarray:
  """Rows of (input, output, target) test images, the reference's real_A / fake_B / real_B."""
  mode = '--eval (running statistics)' if eval_mode else 'dropout + batch statistics'
  return image_io.grid(
    [list(t) for t in triples],
    labels=[['input', 'output', 'target']],
    title=f'pix2pix test samples, {mode}',
    min_cell=128,
  )


def train(config: Any, workdir: str) -> dict[str, float]:
  """Trains pix2pix as `config` says, checkpointing into `workdir`; returns the last metrics.

  One function with banner sections on purpose (house style), longer than ~80 lines for that.
  """
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)

  #### Input
  mesh = parallel.make_mesh()
  n_dev = jax.device_count()
  global_batch = config.per_device_batch * n_dev
  source = data.make_source(config.data, 'train')
  test_source = data.make_source(config.data, 'test')
  spe = data.steps_per_epoch(len(source), global_batch)
  if config.total_steps > 0:
    total = config_lib.to_steps(steps=config.total_steps)
  else:
    total = config_lib.to_steps(epochs=config.num_epochs, steps_per_epoch=spe)
  log.info(
    'Data %s (%s): %d train / %d test pairs; global batch %d on %d devices; %d steps/epoch, '
    '%d steps',
    config.data.source,
    config.data.direction,
    len(source),
    len(test_source),
    global_batch,
    n_dev,
    spe,
    total,
  )
  if is_main:
    write_config(workdir, config, dispatch.runtime_record(config.model.get('conv_impl', 'auto')))

  #### Model (built on the host, then replicated)
  state = jax.device_get(
    train_state.init_state(config, jax.random.PRNGKey(config.seed), config.data.image_size)
  )
  specs = parallel.state_specs(state, sharded_keys=())
  state = parallel.place(state, parallel.shardings(mesh, specs))

  #### Checkpoint: this workdir's newest, else config.resume's, else scratch.
  mngr = checkpoint.make_manager(workdir, config)
  state, start = train_loop.restore(mngr, state, config.resume)

  #### Step
  step_fn = parallel.compile_step(train_state.make_train_step(config, spe), mesh, specs)
  writer = MetricWriter(workdir, enabled=is_main)
  stream = data.train_stream(
    config.data, source, start, global_batch, jax.process_index(), jax.process_count()
  )
  extra = lambda step: {'task': 'pix2pix', 'model': config.model.to_dict(), 'step': step}

  def write_samples(step: int, state: Any) -> tuple[str, dict[str, float]]:
    host = jax.device_get({'params': state['params'], 'batch_stats': state['batch_stats']})
    n = min(config.num_samples, len(test_source))
    _, kept = evaluate.evaluate(config, host['params'], host['batch_stats'], max_images=n, keep=n)
    grid = sample_grid(kept, eval_mode=False)
    with storage.write_failures('sample write', sample_path(workdir, step), workdir):
      image_io.save(sample_path(workdir, step), grid)
    writer.write_image(step, 'samples', grid)
    return sample_path(workdir, step), {}

  def evaluate_at_end(step: int, state: Any) -> dict[str, float]:
    if not (config.eval_at_end and is_main):
      return {}
    host = jax.device_get({'params': state['params'], 'batch_stats': state['batch_stats']})
    scores, _ = evaluate.evaluate(
      config, host['params'], host['batch_stats'], max_images=config.eval_max_images or None
    )
    log.info(
      'Evaluation at step %d: %s', step, ', '.join(f'{k}={v:.4f}' for k, v in scores.items())
    )
    return scores

  #### Loop (`train_loop.run`: SIGTERM / Ctrl-C save the step), then the evaluation at the end
  return train_loop.run(
    config,
    workdir,
    state,
    lambda state, batch, _: step_fn(state, batch),  # no frozen arguments
    None,
    stream,
    mesh,
    writer,
    mngr,
    start,
    write_samples,
    extra,
    total=total,
    postfix=lambda r: {'G': f'{r["train/loss_G"]:.3f}', 'D': f'{r["train/loss_D"]:.3f}'},
    at_end=evaluate_at_end,
  )
