"""The sharded step on 8 devices equals a 1-device step on the global batch (pmean/check_vma)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxstyle import parallel
from jaxstyle.cyclegan import presets
from jaxstyle.cyclegan import step as train_state

SIZE = 16


def _config(pool_size=0, book_exact_d=False):
  return ml_collections.ConfigDict(
    dict(
      model=presets.reference_model(gen_filters=4, disc_filters=4, n_blocks=1, n_layers=2),
      loss=dict(lambda_gan=1.0, lambda_cycle=10.0, lambda_id=5.0),
      # eps 1e-3 keeps Adam's update a smooth function of the gradient: a gradient N x too large
      # then changes the update, and float noise on IN-cancelled biases is not amplified to +-lr.
      optim=dict(
        lr=1e-3,
        b1=0.5,
        b2=0.999,
        eps=1e-3,
        schedule='constant',
        n_epochs=1,
        n_epochs_decay=1,
        epoch_count=1,
      ),
      pool_size=pool_size,
      book_exact_d=book_exact_d,
    )
  )


def _batches():
  rng = np.random.default_rng(0)
  return [
    {d: rng.uniform(-1, 1, (8, SIZE, SIZE, 3)).astype(np.float32) for d in 'AB'} for _ in range(2)
  ]


def _run(config, n_devices):
  """(params, metrics, Adam's first moments) after one and two steps on a mesh of `n_devices`,
  global batch 8."""
  mesh = parallel.make_mesh(jax.devices()[:n_devices])
  state = train_state.init_state(config, jax.random.PRNGKey(0), SIZE, n_devices)
  specs = parallel.state_specs(state)
  state = jax.device_put(state, parallel.shardings(mesh, specs))
  step = parallel.compile_step(train_state.make_train_step(config, 10), mesh, specs)
  out = []
  for batch in _batches():
    state, metrics = step(state, parallel.global_batch_from_local(mesh, batch))
    out.append(
      jax.device_get((state['params'], metrics, {k: v.mu for k, v in state['opt'].items()}))
    )
  return out, jax.device_get(state['pool'])


@pytest.fixture(scope='module')
def runs():
  return {key: _run(_config(key[0]), key[1]) for key in ((0, 8), (0, 1), (16, 8))}


# Error model: 8 devices and 1 sum the same products in other orders (the kernel gradients over
# 8·16² pixels at once or per device then pmean; kernels may block batch 1 and 8 differently). The
# losses pass ≤ 14 convs (G_B∘G_A, D∘G), the gradients those 3× (forward, two transposes): ≤
# 42·sqrt(2048)·u ≈ 1.1e-4 of the largest gradient, everywhere (elements near 0, like the conv
# biases before an instance norm, whose true gradient is 0, carry the error of the large terms).
# Adam (eps = lr) moves a param by ≤ (lr/eps)·δg = δg per step: ≤ 1.1e-4·max|g| ≈ 3e-4 per step
# here (max|g| ≈ 2.6 at init), so 6e-4 after two. That is 0.3 of the largest 2-step move (2·lr):
# the first moments, (1 - b1)·g, are what tells a missing or doubled pmean (off by 1/8 or 2×).
def _assert_close(a, b, atol=6e-4):
  jax.tree_util.tree_map_with_path(
    lambda path, x, y: np.testing.assert_allclose(
      x, y, rtol=2e-4, atol=atol, err_msg=jax.tree_util.keystr(path)
    ),
    a,
    b,
  )


def _assert_moments_close(a, b):
  for k in b:  # per optimizer (G, D): their gradients differ in scale
    scale = max(float(np.abs(leaf).max()) for leaf in jax.tree.leaves(b[k]))
    _assert_close(a[k], b[k], atol=2e-4 * scale)  # 1.1e-4 of the largest, as above


@pytest.mark.slow  # 8-device vs 1-device train steps (~60 s)
def test_eight_devices_equal_one_device_on_global_batch(runs):
  (eight, _), (one, _) = runs[(0, 8)], runs[(0, 1)]
  for (p8, m8, mu8), (p1, m1, mu1) in zip(eight, one):
    _assert_moments_close(mu8, mu1)
    _assert_close(p8, p1)
    _assert_close(m8, m1)
  # The update is not trivial: params moved by more than the tolerance.
  init = train_state.init_state(_config(), jax.random.PRNGKey(0), SIZE, 1)['params']
  moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), eight[1][0], jax.device_get(init))
  assert max(jax.tree.leaves(moved)) > 1e-3


@pytest.mark.slow  # reads the same 8-device / 1-device runs (the fast tier keeps the toy pmean test)
def test_pool_fill_phase_matches_no_pool_and_is_per_device(runs):
  # In the fill phase the pool returns its input, so D sees the same fakes as without a pool;
  # hence the 8-device run with pools equals the 1-device run on the global batch too.
  _assert_close(runs[(16, 8)][0][1][0], runs[(0, 1)][0][1][0])
  _assert_moments_close(runs[(16, 8)][0][1][2], runs[(0, 1)][0][1][2])
  pool8 = runs[(16, 8)][1]
  np.testing.assert_array_equal(pool8['A']['count'], [2] * 8)
  # One pool per device: each device stored its own two fakes (all 16 differ), the rest is empty.
  per_dev = pool8['B']['images'].reshape(8, 16, SIZE, SIZE, 3)
  assert np.all(per_dev[:, 2:] == 0)
  flat = per_dev[:, :2].reshape(16, -1)
  assert len({row.tobytes() for row in flat}) == 16 and np.abs(flat).max() > 0


def test_compile_step_grads_are_global_means():
  """A toy regression: the pmean-ed gradient equals the full-batch gradient (not N x it)."""
  mesh = parallel.make_mesh()
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8,)).astype(np.float32)
  w0 = rng.normal(size=(3,)).astype(np.float32)

  def loss(w, xb, yb):
    return jnp.mean((xb @ w - yb) ** 2)

  def per_device_step(state, batch):
    g = jax.lax.pmean(jax.grad(loss)(state['w'], batch['x'], batch['y']), 'data')
    return {'w': g}, {'g': g}

  specs = {'w': P()}
  step = parallel.compile_step(per_device_step, mesh, specs)
  state = jax.device_put({'w': w0}, parallel.shardings(mesh, specs))
  batch = parallel.global_batch_from_local(mesh, {'x': x, 'y': y})
  got = np.asarray(jax.device_get(step(state, batch)[0]['w']))
  want = 2 * x.T @ (x @ w0 - y) / 8
  np.testing.assert_allclose(got, want, rtol=1e-5)

  # The trap compile_step avoids: with check_vma=True the same code returns 8 x the gradient.
  vma = jax.jit(
    jax.shard_map(per_device_step, mesh=mesh, in_specs=(specs, P('data')), out_specs=(specs, P()))
  )
  state = jax.device_put({'w': w0}, parallel.shardings(mesh, specs))
  np.testing.assert_allclose(np.asarray(vma(state, batch)[0]['w']), 8 * want, rtol=1e-5)
