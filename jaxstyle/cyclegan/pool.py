"""The reference CycleGAN image pool (junyanz `util/image_pool.py`) as pure functions over arrays.

D is trained on a history of generated images to damp oscillation (Shrivastava et al. 2017).
Per image: while fewer than `size` images are stored, store it and return it; afterwards, with
probability 0.5 return a uniformly random stored image and put the new one in its slot, else
return the new image. `size == 0` disables the pool. The pool is a plain dict
`{'images': (size,H,W,C), 'count': int32[]}` so it lives in the checkpointed train state and
resume is exact.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def draws(rng: jax.Array, n: int, size: int) -> tuple[jax.Array, jax.Array]:
  """The random draws `query` consumes for `n` images: (u ~ U[0,1), slot ~ U{0..size-1}).

  Public so that tests can drive a plain-Python reference with exactly the same draws.
  """
  rng_u, rng_slot = jax.random.split(rng)
  u = jax.random.uniform(rng_u, (n,))
  slot = jax.random.randint(rng_slot, (n,), 0, max(size, 1))
  return u, slot


def query(
  pool: dict, images: jax.Array, rng: jax.Array, size: int | None = None
) -> tuple[dict, jax.Array]:
  """Returns (new_pool, images_for_D) for a batch `images` (B,H,W,C), keyed by `rng`.

  `size` defaults to the pool's capacity; `size=0` disables the pool (the trainer keeps one
  unused slot then, because Orbax cannot save zero-size arrays).

  A `lax.scan` over batch items keeps the reference's sequential semantics for batch > 1 (an
  image stored by item i can be returned to item i+1).
  """
  size = pool['images'].shape[0] if size is None else size
  if size == 0:
    return pool, images
  images = jax.lax.stop_gradient(images).astype(pool['images'].dtype)
  u, slot = draws(rng, images.shape[0], size)

  def one(carry, inputs):
    stored, count = carry
    x, u_i, slot_i = inputs
    filling = count < size
    swap = jnp.logical_and(~filling, u_i > 0.5)
    where = jnp.where(filling, count, slot_i)
    old = stored[where]
    out = jnp.where(swap, old, x)
    new_slot = jnp.where(jnp.logical_or(filling, swap), x, old)
    stored = jax.lax.dynamic_update_index_in_dim(stored, new_slot, where, axis=0)
    count = count + filling.astype(count.dtype)
    return (stored, count), out

  (stored, count), out = jax.lax.scan(one, (pool['images'], pool['count']), (images, u, slot))
  return {'images': stored, 'count': count}, out
