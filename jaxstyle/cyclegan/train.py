"""CycleGAN trainer: one linear `train(config, workdir)`, read top to bottom (big_vision style).

The run's identity is its workdir: re-running the same command resumes from the latest
checkpoint there, and because the data stream is a pure function of (seed, step) and the whole
state (params, Adam moments, pools, rng, step) is checkpointed, a resumed run is bit-identical to
an uninterrupted one. A damaged newest checkpoint is moved aside and retrained
(`checkpoint.restore_latest`); a run killed after its final save writes its missing final samples
and evaluation when re-run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxstyle import checkpoint, config_lib, image_io, parallel, preemption, storage
from jaxstyle.cyclegan import data, evaluate, fid_hook, samples
from jaxstyle.cyclegan import step as train_state
from jaxstyle.errors import NonFiniteLossError as NonFiniteLossError
from jaxstyle.kernels import dispatch
from jaxstyle.metrics import (
  METRICS_FILE,
  MetricWriter,
  log_event,
  read_metrics,
  train_record,
  write_config,
)

log = logging.getLogger(__name__)


def _sample_fn(config: Any) -> Callable[..., np.ndarray]:
  """Figure 5-8: `(params, a, b) -> grid` of (original, translated, reconstructed, identity) rows
  for each domain."""
  G, _ = train_state.make_nets(config)

  @jax.jit
  def fn(params, a, b):
    g = lambda p, x: G.apply({'params': p}, x).astype(np.float32)
    fake_b, fake_a = g(params['G_A'], a), g(params['G_B'], b)
    return (
      a,
      fake_b,
      g(params['G_B'], fake_b),
      g(params['G_B'], a),
      b,
      fake_a,
      g(params['G_A'], fake_a),
      g(params['G_A'], b),
    )

  return lambda params, a, b: samples.sample_grid(*jax.device_get(fn(params, a, b)))


@dataclasses.dataclass(frozen=True)
class Task:
  """What the unpaired trainer asks of a task: CycleGAN's own (`CYCLEGAN`), CUT's (cut/train.py).

  `init_state(config, rng, image_size, n_devices)` and `make_train_step(config, steps_per_epoch)`
  as `cyclegan.step`'s; `sample_grid(config)` -> `(params, test A, test B) -> uint8 grid`;
  `generators`: FID-tracked direction -> params key; `postfix`: progress-bar name -> metric key.
  """

  init_state: Callable[..., Any]
  make_train_step: Callable[..., Callable]
  sample_grid: Callable[[Any], Callable[..., np.ndarray]]
  generators: dict[str, str]
  postfix: dict[str, str]


CYCLEGAN = Task(
  init_state=train_state.init_state,
  make_train_step=train_state.make_train_step,
  sample_grid=_sample_fn,
  generators={'A2B': 'G_A', 'B2A': 'G_B'},
  postfix={'G': 'train/loss_G', 'D_A': 'train/loss_D_A', 'D_B': 'train/loss_D_B'},
)


def _sample_path(workdir: str, step: int) -> str:
  return os.path.join(workdir, 'samples', f'step_{step:06d}.png')


def _records_at(workdir: str, step: int) -> list[dict]:
  """The metrics.jsonl records of `step` in the run's history (train, and eval once written)."""
  if not os.path.exists(os.path.join(workdir, METRICS_FILE)):
    return []
  return [r for r in read_metrics(workdir) if r['step'] == step]


def train(config: Any, workdir: str, task: Task = CYCLEGAN) -> dict[str, float]:
  """Trains CycleGAN (or `task`: CUT) as `config` says, checkpointing into `workdir`; returns the
  last metrics.

  One linear function with banner sections on purpose (house style: big_vision's train.py), so the
  whole loop a GAN experiment customises reads top to bottom; it is longer than ~80 lines for that.
  """
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)

  #### Input
  mesh = parallel.make_mesh()
  n_dev = jax.device_count()
  global_batch = config.per_device_batch * n_dev
  sources = data.make_sources(config.data, 'train')
  test_sources = data.make_sources(config.data, 'test')
  spe = data.steps_per_epoch(config.data, sources, global_batch)
  if config.total_steps > 0:
    total = config_lib.to_steps(steps=config.total_steps)
  else:
    total = config_lib.to_steps(epochs=config.num_epochs, steps_per_epoch=spe)
  log.info(
    'Data %s: train A=%d B=%d, test A=%d B=%d images; global batch %d on %d devices; '
    '%d steps/epoch, %d steps',
    config.data.source,
    len(sources['A']),
    len(sources['B']),
    len(test_sources['A']),
    len(test_sources['B']),
    global_batch,
    n_dev,
    spe,
    total,
  )
  if (
    is_main
  ):  # "runtime": what `model.conv_impl` resolved to, backend, versions (they move numbers)
    write_config(workdir, config, dispatch.runtime_record(config.model.get('conv_impl', 'auto')))
  n_samples = min(config.num_samples, len(test_sources['A']), len(test_sources['B']))
  sample_images = {
    d: image_io.to_float(
      np.stack([data.eval_image(config.data, test_sources[d].image(i)) for i in range(n_samples)])
    )
    for d in 'AB'
  }

  #### Model
  size = config.data.image_size
  # Built on the host, then placed: pools on 'data' (one per device), the rest replicated.
  state = jax.device_get(task.init_state(config, jax.random.PRNGKey(config.seed), size, n_dev))
  specs = parallel.state_specs(state)
  state = parallel.place(state, parallel.shardings(mesh, specs))

  #### Checkpoint: auto-resume order: this workdir -> config.resume -> config.init -> scratch.
  # FID during training (eval.fid_every_steps): the manager also keeps its best step.
  fid_track = None
  if config.eval.fid_every_steps > 0:
    history = read_metrics(workdir) if os.path.exists(os.path.join(workdir, METRICS_FILE)) else []
    fid_track = fid_hook.TrainingFID(config, test_sources, history, workdir, task.generators)
  mngr = checkpoint.make_manager(workdir, config, keep_also=fid_track)
  abstract = checkpoint.abstract_of(state)
  try:
    restored = checkpoint.restore_latest(mngr, abstract)
  except BaseException:
    checkpoint.close(mngr)  # no Orbax thread may outlive the run ("Event loop is closed")
    raise
  origin = 'workdir'
  if restored is None and config.resume:
    other = checkpoint.make_manager(config.resume, None)
    restored = checkpoint.restore_latest(other, abstract, move_aside=False)  # not our run
    checkpoint.close(other)
    origin = f'resume={config.resume}'
    if restored is None:
      raise FileNotFoundError(f'config.resume={config.resume!r} holds no checkpoint')
  if restored is not None:
    state = restored
    log.info('Restored step %d from %s', int(jax.device_get(state['step'])), origin)
  elif config.init:
    ported, meta = checkpoint.load_params(config.init)
    unknown = set(ported) - set(state['params'])
    if unknown:
      raise KeyError(
        f'config.init={config.init!r} has nets {sorted(unknown)}; expected a subset '
        f'of {sorted(state["params"])}'
      )
    params = jax.device_get(state['params'])
    params.update(ported)
    state['params'] = parallel.place(params, parallel.shardings(mesh, specs['params']))
    log.info('Initialised %s from %s (%s)', sorted(ported), config.init, meta)
  start = int(jax.device_get(state['step']))
  # A re-run after the final save: no step left, but the end-of-run writes may be missing.
  caught_up = restored is not None and start == total
  if caught_up:
    log.info('Step %d of %d is already checkpointed: nothing left to train.', start, total)

  #### Step
  step_fn = parallel.compile_step(task.make_train_step(config, spe), mesh, specs)
  sample_fn = task.sample_grid(config)
  writer = MetricWriter(workdir, enabled=is_main)
  stream = data.TrainStream(
    config.data,
    sources,
    start,
    global_batch,
    jax.process_index(),
    jax.process_count(),
    config.data.prefetch,
    config.data.num_workers,
  )

  def save(step: int, force: bool = False) -> None:
    if force or step % config.ckpt.every_steps == 0:
      checkpoint.save(
        mngr, step, state, force=force, extra={'model': config.model.to_dict(), 'step': step}
      )

  def write_samples(step: int) -> None:
    grid = sample_fn(state['params'], sample_images['A'], sample_images['B'])
    with storage.write_failures('sample write', _sample_path(workdir, step), workdir):
      image_io.save(_sample_path(workdir, step), grid)
    writer.write_image(step, 'samples', grid)

  #### Loop
  from tqdm import tqdm

  # The bar counts steps the device has finished, not steps dispatched ahead of it (whose rate
  # swings): after dispatching step s, wait for step s-1. One step stays queued, so the device
  # never idles. Waiting for step s itself would serialise the host work of the next step (data +
  # dispatch) with the device, a larger share of an accelerator's shorter steps (figures in
  # docs/performance.md, "Notes moved out of the code").
  bar = tqdm(
    total=total,
    initial=start,
    disable=not is_main or not config.progress,
    dynamic_ncols=True,
    unit='step',
  )
  last: dict[str, float] = {}
  step, t0, t_steps, in_flight = start, time.time(), 0, None
  t_wait = 0.0  # host seconds blocked on the input pipeline (+ placement) since the last log
  # SIGTERM (preemption) / Ctrl-C: finish the step, save it, exit 143 / 130 (jaxstyle.preemption).
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
      if in_flight is not None:
        in_flight.block_until_ready()  # step - 1 has finished (a scalar: no transfer)
        bar.update(1)
      in_flight = metrics['train/loss_G']
      stop_now = stop.requested(step)  # every step, on every process
      fid_due = fid_track is not None and fid_track.due(step, total)
      is_save = step % config.ckpt.every_steps == 0 or step == total or stop_now or fid_due
      if step % config.log_every == 0 or is_save:
        metrics = jax.device_get(metrics)  # the only host sync, on log and save steps
        bar.update(1)
        in_flight = None
        last = train_record(step, metrics, t_steps, t_wait, time.time() - t0)
        t0, t_steps, t_wait = time.time(), 0, 0.0
        writer.write(step, last)
        bar.set_postfix(**{name: f'{last[key]:.3f}' for name, key in task.postfix.items()})
      if fid_due:  # scored before the save: the manager prunes by the best step so far
        writer.write(step, fid_track(step, state['params']))
      events = []
      if is_save:
        save(step, force=step == total or stop_now or fid_due)
        events.append('checkpoint saved')
      if is_main and (step % config.sample_every == 0 or step == total):
        write_samples(step)
        events.append(f'samples {_sample_path(workdir, step)}')
      if events and is_main:
        log_event(step, events)
      if stop_now:
        raise stop.exit(f'saved step {step} in {os.path.join(workdir, "ckpt")}')
  except KeyboardInterrupt:
    # Save what we have unless the interrupt hit while the step owned the (donated) state.
    if not any(x.is_deleted() for x in jax.tree.leaves(state)):
      done = int(jax.device_get(state['step']))
      log.warning('Interrupted: saving step %d before exiting', done)
      checkpoint.save(
        mngr, done, state, force=True, extra={'model': config.model.to_dict(), 'step': done}
      )
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

  #### End of run (also when a re-run finds the final checkpoint: it may have been killed between
  # that save and these writes). The eval counts as written once metrics.jsonl has eval keys at
  # the final step.
  eval_due = config.eval_at_end and is_main and step == total and total > start
  if caught_up and is_main:
    final = _records_at(workdir, total)
    last = {k: v for r in final for k, v in r.items() if k != 'step'}
    if not os.path.exists(_sample_path(workdir, total)):
      log.info('Writing the missing sample grid of the final step %d', total)
      write_samples(total)
    eval_due = config.eval_at_end and not any(k.startswith('eval/') for k in last)
    if eval_due:
      # read_metrics drops an earlier session's records at or after this session's first step:
      # log the final train metrics again so the eval does not hide them.
      for record in final:
        writer.write(total, {k: v for k, v in record.items() if k != 'step'})
  if eval_due:
    scores = evaluate.evaluate(
      config, jax.device_get(state['params']), max_images=config.eval_max_images or None
    )
    log.info('Evaluation at step %d:\n%s', step, evaluate.format_table(scores))
    writer.write(step, scores)
    last.update(scores)
  writer.close()
  last['step'] = step
  return last
