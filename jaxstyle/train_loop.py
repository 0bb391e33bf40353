"""The pieces the fast-style, AdaIN and pix2pix trainers share: resume order and loop.

Each task's `train(config, workdir)` stays linear and readable (house style): it builds its input,
state, frozen arguments and step, then calls `restore` and `run` here. What differs between tasks
(the step, the samples, the checkpoint's JSON `extra`, the progress bar's figures, an evaluation at
the end) comes in as arguments.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax

from jaxstyle import checkpoint, parallel, preemption
from jaxstyle.metrics import MetricWriter, log_event, train_record

log = logging.getLogger(__name__)


def restore(mngr: Any, state: Any, resume: str) -> tuple[Any, int]:
  """(state, start step): this workdir's newest checkpoint, else `resume`'s, else `state` as is.

  A checkpoint of this run that fails to restore is moved aside (`checkpoint.restore_latest`);
  another run's (`resume`) is only read.
  """
  abstract = checkpoint.abstract_of(state)
  try:
    restored = checkpoint.restore_latest(mngr, abstract)
    if restored is None and resume:
      other = checkpoint.make_manager(resume, None)
      restored = checkpoint.restore_latest(other, abstract, move_aside=False)  # not our run
      checkpoint.close(other)
      if restored is None:
        raise FileNotFoundError(f'config.resume={resume!r} holds no checkpoint')
  except BaseException:
    checkpoint.close(mngr)  # no Orbax thread may outlive the run ("Event loop is closed")
    raise
  if restored is not None:
    state = restored
  start = int(jax.device_get(state['step']))
  if restored is not None:
    log.info('Restored step %d', start)
  return state, start


def run(
  config: Any,
  workdir: str,
  state: Any,
  step_fn: Callable,
  frozen: Any,
  stream: Iterator,
  mesh: Any,
  writer: MetricWriter,
  mngr: Any,
  start: int,
  write_samples: Callable[[int, Any], tuple[str, dict[str, float]]],
  extra: Callable[[int], dict],
  total: int | None = None,
  postfix: Callable[[dict], dict] | None = None,
  at_end: Callable[[int, Any], dict[str, float]] | None = None,
) -> dict[str, float]:
  """Steps `start + 1 .. total` (default `config.total_steps`); returns the last logged metrics
  (+ 'step').

  Metrics are fetched only on log and save steps (the one host sync); `write_samples(step,
  state) -> (path, held-out scores)` runs on process 0 at sample steps; checkpoints hold the whole
  state and `extra(step)`. `postfix(record)`: the progress bar's figures (default the loss).
  `at_end(step, state) -> scores`: after a run that reached `total` (the checkpoints closed), its
  scores logged too. SIGTERM (preemption) / Ctrl-C: finish the step, save it, exit 143 / 130
  (`jaxstyle.preemption`). Closes `stream`, `writer` and `mngr`.
  """
  from tqdm import tqdm

  is_main = jax.process_index() == 0
  total = int(config.total_steps if total is None else total)
  postfix = postfix or (lambda r: {'loss': f'{r["train/loss"]:.4g}'})
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
    try:
      for step in range(start + 1, total + 1):
        t_ask = time.perf_counter()
        batch = parallel.global_batch_from_local(mesh, next(stream))
        t_wait += time.perf_counter() - t_ask
        with jax.transfer_guard('disallow'):
          state, metrics = step_fn(state, batch, frozen)
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
          bar.set_postfix(postfix(last))
        events = []
        if is_main and (step % config.sample_every == 0 or step == total):
          path, scores = write_samples(step, state)  # the grid (and any held-out scores)
          if scores:
            writer.write(step, scores)
          last.update(scores)
          held_out = f' (held-out loss {scores["eval/loss"]:.4g})' if 'eval/loss' in scores else ''
          events.append(f'samples {path}{held_out}')
        if is_save:
          checkpoint.save(mngr, step, state, force=step == total or stop_now, extra=extra(step))
          events.insert(0, 'checkpoint saved')
        if events and is_main:
          log_event(step, events)
        if stop_now:
          raise stop.exit(f'saved step {step} in {os.path.join(workdir, "ckpt")}')
    except KeyboardInterrupt:
      if not any(x.is_deleted() for x in jax.tree.leaves(state)):
        done = int(jax.device_get(state['step']))
        log.warning('Interrupted: saving step %d before exiting', done)
        checkpoint.save(mngr, done, state, force=True, extra=extra(done))
      raise
    finally:
      stop.uninstall()
      bar.close()
      stream.close()
      checkpoint.close(mngr)
    if at_end is not None and step == total and total > start:
      scores = at_end(step, state)  # e.g. a full evaluation
      if scores:
        writer.write(step, scores)
      last.update(scores)
  finally:
    writer.close()
  last['step'] = step
  return last
