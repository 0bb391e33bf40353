"""CUT on the embedded synthetic dataset, at the CycleGAN main job's shapes (configs/cyclegan_synthetic.py).

Offline, and success is measurable (`jaxstyle evaluate`: transfer rate and content IoU from the
ground-truth masks). 32 px, batch 4, lr 5e-4 on the linear schedule, 3 epochs = 750 steps, as the
CycleGAN job; CUT's anti-aliased ResNet g32 with 5 blocks (so the default taps 12 and 16 are the
first and last block, as in ResNet-9), its anti-aliased PatchGAN d16 with 2 layers, 64 patches per
tap (a 32-px image has 64 positions at tap 8). `:fastcut` trains FastCUT at the same shapes.

Command:
  jaxstyle train --config configs/cut_synthetic.py --workdir runs/cut_synthetic
  jaxstyle train --config configs/cut_synthetic.py:fastcut --workdir runs/fastcut_synthetic
  jaxstyle evaluate --workdir runs/cut_synthetic
  jaxstyle train --config configs/cut_synthetic.py:runlocal --workdir runs/cut_local
Hardware: a 2-core AMD EPYC CPU (AVX2), one JAX CPU device, jaxlib 0.10.2, shared with other jobs
  (load average ~9) when measured.
Wall time: measured under that load: 60 steps in 237 s (compile included; 1.2 s per step, FastCUT 0.6 s),
  the 750 steps in 14 min 42 s with the 1000-image evaluation (0.92 s per step, median of the logged
  intervals); a quiet machine is faster (docs/cut.md).
Expected: measured, seed 0, the 1000-image test split: transfer A2B 1.000, content IoU 0.817 (CycleGAN's
  main job: 1.000 / 0.881). FastCUT at 750 steps and the timed comparison: docs/cut.md, "Side by side"
  (tools/compare_cut.py).
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.cut import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False, fastcut=False)
  c = presets.cut_base()
  if arg.fastcut:
    presets.fastcut(c)
  presets.synthetic_job(c)  # the CycleGAN main job's shapes, schedule and loop
  c.data.update(dict(load_size=0, augment='book'))
  c.model.update(dict(gen_filters=32, disc_filters=16, n_blocks=5, n_layers=2))
  c.nce.num_patches = 64
  if arg.runlocal:
    presets.cut_runlocal(c)
  return c


def get_sweep():
  """λ_NCE, the taps (encoder only vs with the blocks) and CUT vs FastCUT's losses."""
  return [
    {'loss.lambda_nce': 1.0},
    {'loss.lambda_nce': 10.0},
    {'nce.layers': (0, 4, 8)},
    {'loss.lambda_nce': 10.0, 'loss.nce_idt': False, 'nce.flip_equivariance': True},
  ]
