"""Fast-style trainer: one linear `train(config, workdir)` (big_vision style), CycleGAN's machinery.

Same contract as `cyclegan/train.py`: the workdir is the run's identity (re-running resumes from
its newest checkpoint, bit-identical, because the batch stream is a pure function of (seed, step)
and the whole state is saved), `config.resume` starts from another run, a data-parallel
`shard_map` step with explicit `pmean`, metrics.jsonl + TensorBoard, sample grids, and a save on
Ctrl-C. The VGG19 weights and the style Grams are computed once and passed to the step.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np

from jaxstyle import checkpoint, image_io, parallel, storage, train_loop
from jaxstyle.fast_style import data, presets
from jaxstyle.fast_style import step as fs_step
from jaxstyle.kernels import dispatch
from jaxstyle.metrics import MetricWriter, write_config

log = logging.getLogger(__name__)


def sample_path(workdir: str, step: int) -> str:
  return os.path.join(workdir, 'samples', f'step_{step:06d}.png')


def grid_panels(
  contents: list[np.ndarray],
  outputs: list[list[np.ndarray]],
  thumbs: list[np.ndarray],
  labels: list[str],
) -> tuple[list, list]:
  """The style-grid layout (`image_io.grid` rows and column captions), shared by the trainer's
  sample grids and `jaxstyle figure style-grid`: row 0 a blank corner and the style images, then
  per content image i the content and `outputs[i]` (its output in each style)."""
  rows = [[np.full_like(thumbs[0], 255), *thumbs]]
  rows += [
    [image_io.clip_uint8(c), *map(image_io.clip_uint8, out)] for c, out in zip(contents, outputs)
  ]
  return rows, [['content', *labels]]


def sample_grid(
  contents: np.ndarray, outputs: np.ndarray, styles: list[np.ndarray], labels: list[str]
) -> np.ndarray:
  """The grid of held-out images in every style; `outputs` is (n_styles, N, H, W, 3) in [0, 255]."""
  size = contents.shape[1]
  rows, captions = grid_panels(
    list(contents),
    [list(outputs[:, i]) for i in range(len(contents))],
    [data.content_view(s, size) for s in styles],
    labels,
  )
  return image_io.grid(rows, labels=captions, min_cell=128)


def _held_out(config: Any) -> np.ndarray:
  """The first `num_samples` held-out content images (float32 [0, 255])."""
  source = data.make_source(config.data, 'test')
  n = min(max(config.num_samples, 1), len(source))
  return np.stack(
    [data.content_view(source.image(i), config.data.image_size) for i in range(n)]
  ).astype(np.float32)


def evaluate(
  eval_fn: Any, params: Any, frozen: Any, contents: np.ndarray, n_styles: int
) -> tuple[np.ndarray, dict[str, float]]:
  """Every held-out image in every style: (outputs (n_styles, N, H, W, 3), mean eval metrics)."""
  outs, records = [], []
  for k in range(n_styles):
    ids = np.full((len(contents),), k, np.int32)
    y, metrics = jax.device_get(eval_fn(params, frozen, contents, ids))
    outs.append(y)
    records.append(metrics)
  means = {key: float(np.mean([r[key] for r in records])) for key in records[0]}
  return np.stack(outs), means


def train(config: Any, workdir: str) -> dict[str, float]:
  """Trains a fast-style network as `config` says, checkpointing into `workdir`; last metrics.

  Linear on purpose (house style): the loop reads top to bottom, like the CycleGAN trainer's.
  """
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)

  #### Input
  mesh = parallel.make_mesh()
  n_dev = jax.device_count()
  global_batch = config.per_device_batch * n_dev
  n_styles = presets.n_styles(config)
  source = data.make_source(config.data, 'train')
  contents = _held_out(config)
  styles = data.load_styles(config.styles, config.style_size)
  labels = data.style_labels(config.styles)
  total = int(config.total_steps)
  log.info(
    'Content %s: %d training images at %d²; %d style(s) %s; global batch %d on %d '
    'devices; %d steps',
    config.data.source,
    len(source),
    config.data.image_size,
    len(styles),
    labels,
    global_batch,
    n_dev,
    total,
  )
  if is_main:
    write_config(workdir, config, dispatch.runtime_record(config.model.get('conv_impl', 'auto')))

  #### Model and frozen inputs (VGG19 + the style Grams)
  vgg_params, prep = fs_step.load_vgg(config)
  frozen = jax.device_get(fs_step.frozen_inputs(config, vgg_params, prep, styles))
  frozen = parallel.place(frozen, parallel.shardings(mesh, parallel.state_specs(frozen, ())))
  state = jax.device_get(fs_step.init_state(config, jax.random.PRNGKey(config.seed)))
  specs = parallel.state_specs(state, sharded_keys=())
  state = parallel.place(state, parallel.shardings(mesh, specs))

  #### Checkpoint: auto-resume from this workdir, else from config.resume, else from scratch.
  mngr = checkpoint.make_manager(workdir, config)
  state, start = train_loop.restore(mngr, state, config.resume)

  #### Step
  step_fn = parallel.compile_step(fs_step.make_train_step(config, prep), mesh, specs, n_frozen=1)
  eval_fn = fs_step.make_eval_fn(config, prep)
  writer = MetricWriter(workdir, enabled=is_main)
  stream = data.make_stream(
    config.data, source, n_styles, start, global_batch, jax.process_index(), jax.process_count()
  )
  extra = lambda s: {
    'model': config.model.to_dict(),
    'styles': list(config.styles),
    'labels': labels,
    'step': s,
  }

  def write_samples(step: int, state: Any) -> tuple[str, dict[str, float]]:
    params = jax.device_get(state['params']['net'])
    outputs, scores = evaluate(eval_fn, params, frozen, contents, n_styles)
    grid = sample_grid(contents, outputs, styles, labels)
    with storage.write_failures('sample write', sample_path(workdir, step), workdir):
      image_io.save(sample_path(workdir, step), grid)
    writer.write_image(step, 'samples', grid)
    return sample_path(workdir, step), scores

  #### Loop
  return train_loop.run(
    config, workdir, state, step_fn, frozen, stream, mesh, writer, mngr, start, write_samples, extra
  )
