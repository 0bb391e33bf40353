"""Process-wide JAX settings that jaxstyle relies on, applied once on import of jaxstyle.models.

`jax_threefry_partitionable=False`: on the XLA CPU backend of JAX 0.10 the partitionable threefry
makes every random op very slow to compile (measured on the 2-core dev machine: one jitted
`random.bits` 3.9 s vs 1.0 s; jitted init of a 1-block ResNet 67 s vs 8.6 s). jaxstyle only draws
replicated random numbers (init, image pool), so the sharding-friendly variant buys nothing.
Every entry point (CLI, `python -m jaxstyle.main`, tests, subprocesses) imports the models, so
all of them draw the same stream, which exact resume and the parity tests depend on.
"""
import jax

jax.config.update("jax_threefry_partitionable", False)
