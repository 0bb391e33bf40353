"""CycleGAN on the embedded synthetic dataset (red-orange shaded shapes ↔ blue striped shapes).

The offline main job: no download, and success is measurable (`jaxstyle evaluate` reports transfer
and content IoU from the ground-truth masks). Book U-Net g32, 70x70 PatchGAN d16 with 2 layers,
32 px, batch 4, lr 5e-4 (linear schedule), 3 epochs = 750 steps; identity weight 5 (0.5 x 10).

Command:
  jaxstyle train --config configs/cyclegan_synthetic.py --workdir runs/synthetic
  jaxstyle evaluate --workdir runs/synthetic
  jaxstyle train --config configs/cyclegan_synthetic.py:runlocal --workdir runs/synthetic_local
Hardware: a quiet 2-core AMD EPYC CPU (AVX2), one JAX CPU device, jaxlib 0.10.2.
Wall time: measured on a fresh clone: 2 min 30 s for the 750 steps (0.14 s per step) with the
  end-of-run evaluation, then 16 s for `jaxstyle evaluate`; :runlocal (32 steps of 1 x 16² and a
  16-image evaluation) measured 82 s with other jobs on the cores. Dates and history:
  docs/performance.md "Presets at their real shapes".
Expected: measured, seed 0, the 1000-image test split (runs/synthetic/eval.json): transfer A2B / B2A
  1.000 / 1.000, content IoU 0.881 / 0.879, cycle L1 0.123 / 0.124; the same figures to the bit on
  the same CPU type and core count (docs/reproducibility.md).
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.cyclegan import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.cyclegan_base()
  presets.synthetic_job(c)  # 32 px, batch 4, lr 5e-4 linear, 750 steps, eval at the end
  c.model.update(
    dict(
      discriminator='patchgan',
      disc_filters=16,
      n_blocks=3,
      n_layers=2,
      norm_eps=1e-5,
      eps_mode='var',
      init='normal',
    )
  )
  c.loss.lambda_id = 5.0
  if arg.runlocal:
    c.data.image_size = 16
    c.data.synthetic_size = 64
    c.model.update(dict(gen_filters=4, disc_filters=4, n_blocks=1))
    c.per_device_batch = 1
    c.num_epochs = 0.5
    c.log_every = 4
    c.sample_every = 8
    c.ckpt.every_steps = 8
    c.eval_max_images = 16
  return c


def get_sweep():
  """Identity-loss ablation: off, the book's 5-1 weight, the reference weight (0.5 * 10)."""
  return [{'loss.lambda_id': w} for w in (0.0, 2.0, 5.0)]
