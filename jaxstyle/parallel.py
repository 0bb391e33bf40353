"""Device mesh, shardings and the shard_map step wrapper (pmap programming model)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = 'data'


def make_mesh(devices: list | None = None) -> jax.sharding.Mesh:
  """One 1-D mesh over every device of every host (or over `devices`), axis `data`."""
  if devices is None:
    return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(AxisType.Explicit,))
  return jax.sharding.Mesh(np.asarray(devices), (DATA_AXIS,), axis_types=(AxisType.Explicit,))


def maybe_init_distributed() -> None:
  """Calls jax.distributed.initialize() only when asked: it crashes on non-TPU single hosts."""
  if os.environ.get('JAXSTYLE_DISTRIBUTED') != '1':
    return
  # TPU VMs auto-detect everything. Elsewhere (CPU/GPU hosts, the loopback test) JAX reads the
  # coordinator from JAX_COORDINATOR_ADDRESS but has no variable for the process count and id.
  kwargs = {}
  if os.environ.get('JAXSTYLE_NUM_PROCESSES'):
    kwargs = dict(
      num_processes=int(os.environ['JAXSTYLE_NUM_PROCESSES']),
      process_id=int(os.environ['JAXSTYLE_PROCESS_ID']),
    )
  jax.distributed.initialize(**kwargs)


def state_specs(state: Any, sharded_keys: tuple[str, ...] = ('pool',)) -> Any:
  """PartitionSpecs for a train state: top-level `sharded_keys` on `data`, the rest replicated.

  The image pools are per device (one pool per device, as each pmap replica would keep its own);
  params, optimizer state, rng and step are replicated.
  """
  specs = {}
  for key, value in state.items():
    spec = P(DATA_AXIS) if key in sharded_keys else P()
    specs[key] = jax.tree.map(lambda _, spec=spec: spec, value)
  return specs


def shardings(mesh: jax.sharding.Mesh, specs: Any) -> Any:
  """NamedShardings for a pytree of PartitionSpecs (for `jax.device_put` / abstract restores)."""
  return jax.tree.map(
    lambda spec: NamedSharding(mesh, spec), specs, is_leaf=lambda x: isinstance(x, P)
  )


def compile_step(
  per_device_step: Callable, mesh: jax.sharding.Mesh, specs: Any, n_frozen: int = 0
) -> Callable:
  """Wraps `per_device_step(state, batch, *frozen) -> (state, metrics)` as a jitted SPMD step.

  `frozen` (n_frozen replicated pytrees, e.g. VGG19 weights and style targets) are arguments,
  never closures: closed-over arrays would be baked into the program as constants.

  `per_device_step` is written as for pmap: it sees its own slice of the batch and of the pools
  and must `pmean` gradients and metrics over `data` itself. `check_vma=False` is mandatory:
  with the default, JAX treats replicated inputs as device-invariant and returns their gradient
  already summed over `data`, so our explicit pmean would leave gradients N x too large. The
  state is donated: never touch the state passed in after the call.
  """
  step = jax.shard_map(
    per_device_step,
    mesh=mesh,
    in_specs=(specs, P(DATA_AXIS), *([P()] * n_frozen)),
    out_specs=(specs, P()),
    check_vma=False,
  )
  return jax.jit(step, donate_argnums=0)


def global_batch_from_local(mesh: jax.sharding.Mesh, local_batch: Any) -> Any:
  """Assembles each host's slice of the batch into global arrays sharded on `data`."""
  sharding = NamedSharding(mesh, P(DATA_AXIS))
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)


def place(host_tree: Any, shardings_tree: Any) -> Any:
  """Puts a host pytree (identical on every process) onto the mesh with the given shardings.

  `jax.device_put` refuses non-addressable devices on multi-host meshes, and a device_get'd tree
  would cost a cross-process equality check per leaf; every process instead hands over the
  slices its own devices hold.
  """

  def one(x, sharding):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

  return jax.tree.map(one, host_tree, shardings_tree)


def all_processes_agree(ok: bool) -> bool:
  """True only if `ok` on every process (e.g. so all hosts resume from the same step)."""
  if jax.process_count() == 1:
    return ok
  from jax.experimental import multihost_utils

  return bool(np.all(multihost_utils.process_allgather(np.asarray(ok, np.int32))))
