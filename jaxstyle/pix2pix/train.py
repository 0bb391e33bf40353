"""pix2pix trainer: one linear `train(config, workdir)`, read top to bottom (big_vision style).

As CycleGAN's: the workdir is the run's identity (re-running resumes from its newest checkpoint);
the data stream is a pure function of (seed, step) and the whole state, running batch-norm
statistics included, is checkpointed, so a resumed run continues exactly. SIGTERM / Ctrl-C finish
the step, save it and exit 143 / 130 (`jaxstyle.preemption`).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import jax
import numpy as np

from jaxstyle import checkpoint, config_lib, image_io, parallel, preemption, storage
from jaxstyle.kernels import dispatch
from jaxstyle.metrics import MetricWriter, log_event, train_record, write_config
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
  abstract = checkpoint.abstract_of(state)
  try:
    restored = checkpoint.restore_latest(mngr, abstract)
    if restored is None and config.resume:
      other = checkpoint.make_manager(config.resume, None)
      restored = checkpoint.restore_latest(other, abstract, move_aside=False)  # not our run
      checkpoint.close(other)
      if restored is None:
        raise FileNotFoundError(f'config.resume={config.resume!r} holds no checkpoint')
  except BaseException:
    checkpoint.close(mngr)
    raise
  if restored is not None:
    state = restored
  start = int(jax.device_get(state['step']))
  if restored is not None:
    log.info('Restored step %d', start)

  #### Step
  step_fn = parallel.compile_step(train_state.make_train_step(config, spe), mesh, specs)
  writer = MetricWriter(workdir, enabled=is_main)
  stream = data.train_stream(
    config.data, source, start, global_batch, jax.process_index(), jax.process_count()
  )
  extra = lambda step: {'task': 'pix2pix', 'model': config.model.to_dict(), 'step': step}

  def write_samples(step: int) -> None:
    host = jax.device_get({'params': state['params'], 'batch_stats': state['batch_stats']})
    n = min(config.num_samples, len(test_source))
    _, kept = evaluate.evaluate(config, host['params'], host['batch_stats'], max_images=n, keep=n)
    grid = sample_grid(kept, eval_mode=False)
    with storage.write_failures('sample write', sample_path(workdir, step), workdir):
      image_io.save(sample_path(workdir, step), grid)
    writer.write_image(step, 'samples', grid)

  #### Loop
  from tqdm import tqdm

  bar = tqdm(
    total=total,
    initial=start,
    disable=not is_main or not config.progress,
    dynamic_ncols=True,
    unit='step',
  )
  last: dict[str, float] = {}
  step, t0, t_steps, t_wait = start, time.time(), 0, 0.0
  stop = preemption.install()
  try:
    for step in range(start + 1, total + 1):
      t_ask = time.perf_counter()
      batch = parallel.global_batch_from_local(mesh, next(stream))
      t_wait += time.perf_counter() - t_ask
      with jax.transfer_guard('disallow'):  # the step must never pull data implicitly
        state, metrics = step_fn(state, batch)
      checkpoint.check(mngr)  # a failed async save stops the run here, not at exit
      t_steps += 1
      bar.update(1)
      stop_now = stop.requested(step)  # every step, on every process
      is_save = step % config.ckpt.every_steps == 0 or step == total or stop_now
      if step % config.log_every == 0 or is_save:
        metrics = jax.device_get(metrics)  # the only host sync, on log and save steps
        last = train_record(step, metrics, t_steps, t_wait, time.time() - t0)
        t0, t_steps, t_wait = time.time(), 0, 0.0
        writer.write(step, last)
        bar.set_postfix(G=f'{last["train/loss_G"]:.3f}', D=f'{last["train/loss_D"]:.3f}')
      events = []
      if is_save:
        force = step == total or stop_now
        checkpoint.save(mngr, step, state, force=force, extra=extra(step))
        events.append('checkpoint saved')
      if is_main and (step % config.sample_every == 0 or step == total):
        write_samples(step)
        events.append(f'samples {sample_path(workdir, step)}')
      if events and is_main:
        log_event(step, events)
      if stop_now:
        raise stop.exit(f'saved step {step} in {os.path.join(workdir, "ckpt")}')
  except KeyboardInterrupt:
    if not any(x.is_deleted() for x in jax.tree.leaves(state)):
      done = int(jax.device_get(state['step']))
      log.warning('Interrupted: saving step %d before exiting', done)
      checkpoint.save(mngr, done, state, force=True, extra=extra(done))
    writer.close()
    raise
  except BaseException:
    writer.close()
    raise
  finally:
    stop.uninstall()
    bar.close()
    stream.close()
    checkpoint.close(mngr)

  #### End of run
  if config.eval_at_end and is_main and step == total and total > start:
    host = jax.device_get({'params': state['params'], 'batch_stats': state['batch_stats']})
    scores, _ = evaluate.evaluate(
      config, host['params'], host['batch_stats'], max_images=config.eval_max_images or None
    )
    log.info(
      'Evaluation at step %d: %s', step, ', '.join(f'{k}={v:.4f}' for k, v in scores.items())
    )
    writer.write(step, scores)
    last.update(scores)
  writer.close()
  last['step'] = step
  return last
