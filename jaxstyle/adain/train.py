"""AdaIN trainer: one linear `train(config, workdir)`, the fast-style trainer's machinery.

Same contract as `fast_style/train.py`: the workdir is the run's identity (re-running resumes from
its newest checkpoint, bit-identical, because the batch stream is a pure function of (seed, step)
and the whole state is saved), `config.resume` starts from another run, a data-parallel
`shard_map` step with explicit `pmean`, metrics.jsonl + TensorBoard, sample grids, a save on
SIGTERM / Ctrl-C (`train_loop`, `preemption`). Only the decoder trains; the encoder is a frozen argument of the step.
Samples and the held-out loss: every held-out content image in every held-out style.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np

from jaxstyle import checkpoint, image_io, parallel, storage, train_loop
from jaxstyle.adain import data
from jaxstyle.adain import step as adain_step
from jaxstyle.fast_style.train import sample_grid
from jaxstyle.kernels import dispatch
from jaxstyle.metrics import MetricWriter, write_config

log = logging.getLogger(__name__)


def sample_path(workdir: str, step: int) -> str:
  return os.path.join(workdir, 'samples', f'step_{step:06d}.png')


def held_out(config: Any) -> tuple[np.ndarray, np.ndarray]:
  """(contents (N, S, S, 3), styles (K, S, S, 3)): the held-out images, float32 [0, 255]."""
  size = config.data.image_size
  contents = data.held_out(data.make_source(config.data, 'test'), config.num_samples, size)
  styles = data.make_style_source(config, 'test')
  return contents, data.held_out(styles, config.num_sample_styles, size)


def evaluate(
  eval_fn: Any, params: Any, frozen: Any, contents: np.ndarray, styles: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
  """Every held-out content in every held-out style: (outputs (K, N, S, S, 3), mean metrics)."""
  outs, records = [], []
  for style in styles:
    batch_style = np.broadcast_to(style, contents.shape)
    y, metrics = jax.device_get(eval_fn(params, frozen, contents, batch_style))
    outs.append(y)
    records.append(metrics)
  means = {key: float(np.mean([r[key] for r in records])) for key in records[0]}
  return np.stack(outs), means


def train(config: Any, workdir: str) -> dict[str, float]:
  """Trains an AdaIN decoder as `config` says, checkpointing into `workdir`; last metrics."""
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)

  #### Input
  mesh = parallel.make_mesh()
  n_dev = jax.device_count()
  global_batch = config.per_device_batch * n_dev
  sources = (data.make_source(config.data, 'train'), data.make_style_source(config, 'train'))
  contents, styles = held_out(config)
  log.info(
    'Content %s: %d images; styles %s: %d; %d² crops of %d²; global batch %d on %d devices; '
    '%d steps',
    config.data.source,
    len(sources[0]),
    config.style.source,
    len(sources[1]),
    config.data.image_size,
    config.data.load_size,
    global_batch,
    n_dev,
    config.total_steps,
  )
  if is_main:
    write_config(workdir, config, dispatch.runtime_record(config.model.conv_impl))

  #### Model and frozen inputs (the encoder)
  frozen = jax.device_get(adain_step.frozen_inputs(config))
  frozen = parallel.place(frozen, parallel.shardings(mesh, parallel.state_specs(frozen, ())))
  state = jax.device_get(adain_step.init_state(config, jax.random.PRNGKey(config.seed)))
  specs = parallel.state_specs(state, sharded_keys=())
  state = parallel.place(state, parallel.shardings(mesh, specs))

  #### Checkpoint: auto-resume from this workdir, else from config.resume, else from scratch.
  mngr = checkpoint.make_manager(workdir, config)
  state, start = train_loop.restore(mngr, state, config.resume)

  #### Step
  step_fn = parallel.compile_step(adain_step.make_train_step(config), mesh, specs, n_frozen=1)
  eval_fn = adain_step.make_eval_fn(config)
  writer = MetricWriter(workdir, enabled=is_main)
  stream = data.make_stream(
    config, sources, start, global_batch, jax.process_index(), jax.process_count()
  )
  labels = [f'style {k}' for k in range(len(styles))]
  thumbs = [image_io.clip_uint8(s) for s in styles]

  def write_samples(step: int, state: Any) -> tuple[str, dict[str, float]]:
    params = jax.device_get(state['params']['decoder'])
    outputs, scores = evaluate(eval_fn, params, frozen, contents, styles)
    grid = sample_grid(contents, outputs, thumbs, labels)
    with storage.write_failures('sample write', sample_path(workdir, step), workdir):
      image_io.save(sample_path(workdir, step), grid)
    writer.write_image(step, 'samples', grid)
    return sample_path(workdir, step), scores

  def extra(step: int) -> dict:
    return {'task': 'adain', 'model': config.model.to_dict(), 'step': step}

  #### Loop
  return train_loop.run(
    config, workdir, state, step_fn, frozen, stream, mesh, writer, mngr, start, write_samples, extra
  )
