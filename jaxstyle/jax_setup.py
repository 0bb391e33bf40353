"""Process-wide JAX settings that jaxstyle relies on, applied once on import of jaxstyle.models.

`jax_threefry_partitionable=False`: on the XLA CPU backend of JAX 0.10 the partitionable threefry
makes every random op several times slower to compile (docs/performance.md, "Notes moved out of
the code"). jaxstyle only draws
replicated random numbers (init, image pool), so the sharding-friendly variant buys nothing.
Every entry point (CLI, `python -m jaxstyle.main`, tests, subprocesses) imports the models, so
all of them draw the same stream, which exact resume and the parity tests depend on.
"""

import jax

jax.config.update('jax_threefry_partitionable', False)
