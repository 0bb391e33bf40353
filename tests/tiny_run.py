"""A tiny random ResNet generator pair and its run directory, for the translate and evaluate tests."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import checkpoint, models
from jaxstyle.cyclegan import presets


def small_run():
  """(run config as config.json holds it, generator module, {'G_A', 'G_B'} params) at random init."""
  model_cfg = presets.reference_model(gen_filters=4, n_blocks=1)
  g = models.make_generator(model_cfg)
  # Shapes from tracing only, values from NumPy: compiling the random init costs ~20 s on CPU.
  shapes = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3))))['params']
  rng = np.random.default_rng(0)
  params = {
    name: jax.tree.map(lambda s: rng.normal(0, 0.1, s.shape).astype(np.float32), shapes)
    for name in ('G_A', 'G_B')
  }
  data_cfg = presets.data_config(
    source='synthetic', epoch_rule='max', image_size=16, synthetic_size=24, seed=4
  )
  config = {'model': model_cfg.to_dict(), 'data': data_cfg.to_dict()}
  return config, g, params


def write_run(run, config, params):
  """A run directory as the trainer leaves it: config.json + an Orbax checkpoint of the state."""
  run.mkdir()
  (run / 'config.json').write_text(json.dumps(config))
  mngr = checkpoint.make_manager(str(run))
  checkpoint.save(mngr, 3, {'step': np.int32(3), 'params': params}, force=True)
  checkpoint.close(mngr)
  return run


def as_uint8(x):
  """[-1, 1] -> uint8, written out here so tests do not check image_io against itself."""
  return np.clip(np.rint((x + 1) * 127.5), 0, 255).astype(np.uint8)


def noise(shape, seed):
  # Random content: a constant image makes instance norm amplify rounding noise.
  return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
