"""A pix2pix run's generator for inference: its checkpoint (params and running statistics) and
the reference's two test modes. Shared by `evaluate` and `translate` (and ports of the reference's
pix2pix generators, which come with running statistics too).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxstyle.errors import UserError


def load_run(workdir: str, step: int | None = None) -> tuple[Any, Any, Any, int]:
  """(config dict, params {G, D}, batch_stats {G, D}, step) of a pix2pix run's checkpoint."""
  from jaxstyle import checkpoint  # orbax: `--help` stays instant

  config, params, step = checkpoint.load_run_with_step(workdir, step)
  _, stats, _ = checkpoint.load_run_with_step(workdir, step, key='batch_stats')
  if config.get('task') != 'pix2pix' or 'G' not in params:
    raise UserError(f'{workdir} is not a pix2pix run (task {config.get("task")!r})')
  return config, params, stats, step


def run_config(config: dict) -> Any:
  """The preset with the run's `model`, `data` and `seed` (an older run keeps the defaults it
  lacks; unknown keys are dropped)."""
  from jaxstyle.pix2pix import presets

  cfg = presets.pix2pix_base()
  cfg.model.update({k: v for k, v in config.get('model', {}).items() if k in cfg.model})
  cfg.data.update({k: v for k, v in config.get('data', {}).items() if k in cfg.data})
  cfg.seed = int(config.get('seed', 0))
  return cfg


def load_ported(path: str) -> tuple[Any, Any, Any]:
  """(config, G params, G batch_stats) of a `port-weights --kind pix2pix-G` folder (e.g. a
  reference generator fetched by `--pretrained`): the preset with the port's model fields, at the
  U-Net's own input size (256 for unet_256, as the reference tests its published models)."""
  from jaxstyle import checkpoint  # orbax: `--help` stays instant

  variables, meta = checkpoint.load_params(path)
  if meta.get('kind') != 'pix2pix-G' or set(variables) != {'params', 'batch_stats'}:
    raise UserError(
      f'{path} holds a {meta.get("kind")!r}, not a pix2pix generator (port a reference '
      'pix2pix .pth with `jaxstyle port-weights FILE -o DIR --kind pix2pix-G`)'
    )
  cfg = run_config({'model': meta.get('model_cfg', {})})
  cfg.data.image_size = 2 ** int(cfg.model.num_downs)
  return cfg, variables['params'], variables['batch_stats']


def translate_fn(model_cfg: Any, params: Any, batch_stats: Any, eval_mode: bool, seed: int = 0):
  """`fn(x, first) -> G(x)` for float NHWC batches whose first image is number `first`.

  `eval_mode=False`: the reference's default test (dropout on, each image's own batch statistics:
  one image per call, dropout key `fold_in(seed, image number)`); `True`: `--eval` (running
  statistics, no dropout, the batch in one call).
  """
  import jax  # the jax stack: `jaxstyle evaluate --help` stays instant

  from jaxstyle.pix2pix import step

  g = step.make_generator_fn(model_cfg, eval_mode)
  key = jax.random.PRNGKey(seed)

  def fn(x: np.ndarray, first: int) -> np.ndarray:
    if eval_mode:
      return np.asarray(g(params, batch_stats, x, key))
    # One image per call: batch statistics are the image's own (the reference's batch 1).
    return np.concatenate(
      [
        np.asarray(g(params, batch_stats, x[i : i + 1], jax.random.fold_in(key, first + i)))
        for i in range(len(x))
      ]
    )

  return fn
