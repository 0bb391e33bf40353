"""Save and exit on SIGTERM (a preempted VM) or Ctrl-C, at a step every host agrees on.

A preemptible VM gets a SIGTERM and about 30 seconds before it goes away. A trainer that dies on it
loses everything since its last periodic checkpoint; one that finishes the step in flight, saves
it and exits loses nothing, and re-running the same command resumes bit-identically
(docs/troubleshooting.md, "Preemption"; launch/README.md for TPU VMs). A trainer uses it in
two lines (plus its own save):

  with preemption.install() as stop:            # around the training loop
    for step in range(start + 1, total + 1):
      ...                                       # the step
      if stop.requested(step):                  # once per step, on every process
        save(step)                              # the trainer's checkpoint save, forced
        raise stop.exit(f'saved step {step} in {workdir}/ckpt')

(or `stop = preemption.install()` before the loop's `try` and `stop.uninstall()` in its
`finally`). `exit` returns a `Preempted` error; `jaxstyle.cli` prints its one line and exits with
`EXIT_CODES` (143 after SIGTERM, 130 after Ctrl-C: 128 + the signal, the shell's convention).

One process: a Python signal handler sets a flag that `requested` reads; a second Ctrl-C aborts at
once (KeyboardInterrupt, the trainers' old save-if-possible path). Several processes: every host
must save the same step, so the decision is JAX's own preemption sync. `jax.distributed.initialize`
starts the preemption sync manager (`jax_enable_preemption_service`, on by default), which
catches SIGTERM itself (in C++); `requested` then asks
`jax.experimental.multihost_utils.reached_preemption_sync_point(step)`, True on every host at the
same step (one past the largest step any host had reached when the notice spread). So with
several processes no SIGTERM handler is installed here (it would replace JAX's), and Ctrl-C keeps
Python's default: a KeyboardInterrupt on one host is not something the hosts can agree on.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}
RESUME = 're-run the same command to resume'

log = logging.getLogger(__name__)


class Preempted(Exception):
  """Raised by a trainer after it saved its state on a stop request; the CLI exits with
  `exit_code`."""

  def __init__(self, signum: int, what: str, advice: str = RESUME):
    self.signum, self.what, self.advice = signum, what, advice
    self.exit_code = EXIT_CODES.get(signum, 128 + signum)
    super().__init__(f'stopped by {signal.Signals(signum).name}: {what}; {advice}')

  def __reduce__(self) -> tuple:
    return type(self), (self.signum, self.what, self.advice)


class StopRequest:
  """What `install` returns: `requested(step)` once per step, `exit(what)` once saved."""

  def __init__(self, multiprocess: bool):
    self.multiprocess = multiprocess
    self.signum: int | None = None
    self._service_missing = False
    self._previous: dict[int, Any] = {}

  def __enter__(self) -> StopRequest:
    return self

  def __exit__(self, *exc: Any) -> None:
    self.uninstall()

  def uninstall(self) -> None:
    """Puts back the handlers `install` replaced (a later SIGTERM kills the process again)."""
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}

  def _on_signal(self, signum: int, frame: Any) -> None:
    del frame
    if self.signum is not None:
      if signum == signal.SIGINT:  # a second Ctrl-C: stop waiting for the step
        raise KeyboardInterrupt
      return
    self.signum = signum
    log.warning(
      '%s received: finishing the current step, saving it and exiting%s',
      signal.Signals(signum).name,
      ' (Ctrl-C again to abort without saving)' if signum == signal.SIGINT else '',
    )

  def requested(self, step: int) -> bool:
    """Whether to save `step` and stop now. Call it once per step, with the same steps on every
    process (the multi-process sync counts on it)."""
    if not self.multiprocess:
      return self.signum is not None
    if self._service_missing:
      return False
    from jax.experimental import multihost_utils

    try:
      reached = multihost_utils.reached_preemption_sync_point(int(step))
    except RuntimeError as err:  # the service is off (jax_enable_preemption_service=False)
      self._service_missing = True
      log.warning('No save on SIGTERM in this multi-process run: %s', err)
      return False
    if reached:
      self.signum = signal.SIGTERM
    return reached

  def exit(self, what: str, advice: str = RESUME) -> Preempted:
    """The error to raise once the state is saved (`what`: which step, where)."""
    return Preempted(self.signum or signal.SIGTERM, what, advice)


def install() -> StopRequest:
  """Catches SIGTERM and Ctrl-C until `uninstall` (or the end of a `with`): see the module
  docstring. Outside the main thread (a notebook running the trainer in a thread) signals
  cannot be caught; the loop then runs as before, without a handler."""
  import jax

  stop = StopRequest(multiprocess=jax.process_count() > 1)
  if not stop.multiprocess and threading.current_thread() is threading.main_thread():
    for signum in (signal.SIGTERM, signal.SIGINT):
      stop._previous[signum] = signal.signal(signum, stop._on_signal)
  return stop
