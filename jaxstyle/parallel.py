"""Device mesh, shardings and the shard_map step wrapper (pmap programming model)."""
from __future__ import annotations

import os

import jax
from jax.sharding import AxisType

DATA_AXIS = "data"


def make_mesh() -> jax.sharding.Mesh:
  """One 1-D mesh over every device of every host, axis `data`."""
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(AxisType.Explicit,))


def maybe_init_distributed() -> None:
  """Calls jax.distributed.initialize() only when asked: it crashes on non-TPU single hosts."""
  if os.environ.get("JAXSTYLE_DISTRIBUTED") == "1":
    jax.distributed.initialize()
