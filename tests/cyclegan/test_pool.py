"""The image pool: fill phase, the 50 % swap rule, determinism, and junyanz parity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.cyclegan import pool


def _images(n, start=0, hw=2):
  """Image i is the constant map start + i, so an output identifies its source image."""
  vals = np.arange(start, start + n, dtype=np.float32)
  return jnp.asarray(np.broadcast_to(vals[:, None, None, None], (n, hw, hw, 1)).copy())


def _ids(images):
  return np.asarray(images)[:, 0, 0, 0].astype(int).tolist()


def _empty(size, hw=2):
  """An empty pool in the module's plain-dict layout (the train state stacks one per device)."""
  return {'images': jnp.zeros((size, hw, hw, 1)), 'count': jnp.zeros((), jnp.int32)}


class ReferencePool:
  """junyanz `util/image_pool.py: ImagePool.query`, with the random draws injected."""

  def __init__(self, size):
    self.size, self.images = size, []

  def query(self, images, u, slot):
    if self.size == 0:
      return list(images)
    out = []
    for image, u_i, slot_i in zip(images, u, slot):
      if len(self.images) < self.size:
        self.images.append(image)
        out.append(image)
      elif u_i > 0.5:  # p = random.uniform(0, 1); if p > 0.5: swap with a random stored image
        tmp = self.images[slot_i]
        self.images[slot_i] = image
        out.append(tmp)
      else:
        out.append(image)
    return out


def test_fill_phase_returns_and_stores_inputs():
  p = _empty(3)
  p, out = pool.query(p, _images(2), jax.random.PRNGKey(0))
  assert _ids(out) == [0, 1] and int(p['count']) == 2
  p, out = pool.query(p, _images(1, start=2), jax.random.PRNGKey(1))
  assert _ids(out) == [2] and int(p['count']) == 3
  assert _ids(p['images']) == [0, 1, 2]


def test_size_zero_is_identity():
  p = _empty(0)
  x = _images(4)
  p2, out = pool.query(p, x, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(out, x)
  assert p2['images'].shape == (0, 2, 2, 1)


def test_deterministic_for_a_given_rng():
  p = {'images': _images(5, start=100), 'count': jnp.asarray(5, jnp.int32)}
  a = pool.query(p, _images(4), jax.random.PRNGKey(7))
  b = pool.query(p, _images(4), jax.random.PRNGKey(7))
  jax.tree.map(np.testing.assert_array_equal, a, b)
  c = pool.query(p, _images(4), jax.random.PRNGKey(8))
  assert _ids(a[1]) != _ids(c[1]) or _ids(a[0]['images']) != _ids(c[0]['images'])


def test_swap_rule_statistics():
  size, n = 4, 4000
  full = {'images': _images(size, start=100), 'count': jnp.asarray(size, jnp.int32)}
  rngs = jax.random.split(jax.random.PRNGKey(0), n)
  new_pools, outs = jax.jit(jax.vmap(lambda r: pool.query(full, _images(1), r)))(rngs)
  out_ids = np.asarray(outs)[:, 0, 0, 0, 0]
  swapped = out_ids >= 100
  assert swapped.mean() == pytest.approx(0.5, abs=0.03)
  # A swap returns a uniformly chosen slot and leaves the new image (id 0) in that slot.
  counts = np.bincount(out_ids[swapped].astype(int) - 100, minlength=size)
  assert counts.min() > 0.2 * swapped.sum() and counts.max() < 0.3 * swapped.sum()
  stored = np.asarray(new_pools['images'])[:, :, 0, 0, 0]
  assert np.all((stored == 0).sum(axis=1) == swapped)
  assert np.all(new_pools['count'] == size)


def test_matches_junyanz_reference_on_the_same_draws():
  size, batch, steps = 4, 3, 8
  ref = ReferencePool(size)
  p = _empty(size)
  query = jax.jit(pool.query)
  rng = jax.random.PRNGKey(42)
  for step in range(steps):
    rng_step = jax.random.fold_in(rng, step)
    x = _images(batch, start=10 * step)
    u, slot = pool.draws(rng_step, batch, size)
    want = ref.query(_ids(x), np.asarray(u).tolist(), np.asarray(slot).tolist())
    p, out = query(p, x, rng_step)
    assert _ids(out) == want, f'step {step}'
    assert _ids(p['images'])[: len(ref.images)] == ref.images
  assert int(p['count']) == size
