"""The pix2pix step across device counts, with batch norm in both of its cross-device modes.

Batch norm makes a model's function depend on what shares a batch, so "8 devices = 1 device" holds
only where the normalised batches are the same:
  synced      8 devices x 1 pair (moments pmean-ed) = 1 device x the same 8 pairs;
  per_device  8 devices each normalising its own pair = 1 device x 1 pair, when the 8 pairs are
              copies of that pair (8 different pairs on 8 devices are 8 batch-1 models averaged,
              which no single-device batch reproduces: the reference's DDP semantics).
"""

import jax
import numpy as np
import pytest

from jaxstyle import parallel
from jaxstyle.pix2pix import presets
from jaxstyle.pix2pix import step as pix2pix_step

SIZE = 32
pytestmark = pytest.mark.slow  # four compiles of the step (~20 s each under load)


def _config(per_device_batch, batch_stats, gan_mode='vanilla'):
  c = presets.pix2pix_base()
  presets.pix2pix_runlocal(c)
  c.model.update(dict(gen_filters=4, disc_filters=4, n_layers=2, batch_stats=batch_stats))
  # eps = lr keeps Adam's update a smooth function of the gradient (tests/test_parallel.py).
  c.optim.update(dict(eps=1e-3, lr=1e-3, schedule='constant'))
  c.loss.gan_mode = gan_mode
  c.per_device_batch = per_device_batch
  return c


def _run(n_devices, config, pairs):
  """(params, batch_stats, metrics, Adam's first moments) after one step on `pairs`."""
  mesh = parallel.make_mesh(jax.devices()[:n_devices])
  state = pix2pix_step.init_state(config, jax.random.PRNGKey(0), SIZE)
  specs = parallel.state_specs(state, sharded_keys=())
  state = jax.device_put(state, parallel.shardings(mesh, specs))
  step = parallel.compile_step(pix2pix_step.make_train_step(config, 10), mesh, specs)
  state, metrics = step(state, parallel.global_batch_from_local(mesh, pairs))
  mu = {k: v.mu for k, v in state['opt'].items()}
  return jax.device_get((state['params'], state['batch_stats'], metrics, mu))


def _pairs(n, copies=1):
  rng = np.random.default_rng(0)
  x = rng.uniform(-1, 1, (n, SIZE, SIZE, 3)).astype(np.float32)
  y = np.tanh(x[..., ::-1] * 2).astype(np.float32)  # a target that depends on the input
  return {'input': np.repeat(x, copies, 0), 'target': np.repeat(y, copies, 0)}


# Error model (docs/development.md, "Tolerances"): both sides sum the same products in other
# orders. The loss passes <= 14 convs (G: 5 down + 5 up; D on G's output: 4), the gradients 3x
# that; the longest sums are kernel gradients and batch moments over 8·16² positions:
# <= 42·sqrt(2048)·u ≈ 1.1e-4 of the largest term, everywhere (batch norm divides by the batch's
# std, which scales values and their errors alike). Adam with eps = lr passes a gradient error to
# the params 1:1 (the step moves a param by ≤ lr). A missing or doubled pmean is off by 1/8 or 2x
# in the first moments, (1 - b1)·g, which the relative check against their largest catches.
REL = 3e-4


def _assert_close(a, b):
  def check(path, x, y):
    x, y = np.asarray(x), np.asarray(y)
    scale = max(float(np.abs(y).max()), 1e-30)
    np.testing.assert_allclose(x, y, rtol=0, atol=REL * scale, err_msg=jax.tree_util.keystr(path))

  jax.tree_util.tree_map_with_path(check, a, b)


def test_synced_batch_norm_on_eight_devices_equals_one_device_with_the_global_batch():
  pairs = _pairs(8)
  eight = _run(8, _config(1, 'synced'), pairs)
  one = _run(1, _config(8, 'synced'), pairs)
  for got, want in zip(eight, one):
    _assert_close(got, want)


def test_per_device_batch_norm_normalises_each_devices_own_batch():
  eight = _run(8, _config(1, 'per_device'), _pairs(1, copies=8))
  one = _run(1, _config(1, 'per_device'), _pairs(1))
  for got, want in zip(eight, one):
    _assert_close(got, want)
  # And it is not the synced model: with inputs of different contrast, per-image batch norm
  # removes each image's scale (every layer before it is positively homogeneous), synced does not.
  pairs = _pairs(8)
  pairs['input'] *= np.linspace(0.1, 1.0, 8, dtype=np.float32)[:, None, None, None]
  per_dev = _run(8, _config(1, 'per_device'), pairs)[3]['G']['down_1']['kernel']
  synced = _run(8, _config(1, 'synced'), pairs)[3]['G']['down_1']['kernel']
  assert np.abs(per_dev - synced).max() > 0.1 * np.abs(synced).max()  # G's gradients differ


def test_wgangp_step_adds_the_penalty():
  _, _, metrics, _ = _run(1, _config(2, 'per_device', 'wgangp'), _pairs(2))
  assert np.isfinite(metrics['train/loss_D_gp']) and metrics['train/loss_D_gp'] > 0
