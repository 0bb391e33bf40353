"""CUT on horse2zebra, the paper's settings (Park et al. 2020; `--CUT_mode CUT`).

taesungp/contrastive-unpaired-translation's defaults: anti-aliased ResNet-9 g64 and PatchGAN d64,
xavier init (gain 0.02), LSGAN λ_GAN 1, PatchNCE λ_NCE 1 on taps (0, 4, 8, 12, 16) with 256
patches per tap, T 0.07, the identity NCE term on domain Y, no image pool, batch 1, Adam 2e-4
(0.5, 0.999) for G, D and F, 200 + 200 epochs (the code's linear policy, `schedule='junyanz'`),
bicubic 286 -> random 256 crop -> h-flip, epoch = max(#A, #B). Every field: jaxstyle/cut/presets.py.

Command:
  jaxstyle train --config configs/cut_horse2zebra.py --workdir runs/cut \
    --config.data.tfds_download=True
  jaxstyle evaluate --workdir runs/cut
  jaxstyle translate --workdir runs/cut --out out/ photos/
  jaxstyle train --config configs/cut_horse2zebra.py:runlocal --workdir runs/cut_local
Hardware: not run at this size here (TFDS horse2zebra is not on the development machines: 2-core AMD
  EPYC CPU, jaxlib 0.10.2); the step at these shapes: `jaxstyle bench cut` (256², batch 1).
Wall time: projected, not run: 400 epochs x 1,334 steps (max of 1,067 horses, 1,334 zebras) = 533,600
  steps, twice CycleGAN's 266,800 (configs/cyclegan_reference.py); CUT's 256² step time has not been
  timed on these machines (`jaxstyle bench cut`). :runlocal: seconds of steps after a ~1 min compile.
Expected: horse→zebra FID 45.5 (the paper's Table 1, as clean-fid's README lists it); CycleGAN
  77.2 on the same protocol. The paper reports the best of the training run's FIDs (the reference
  repository's issue #65): compare with `jaxstyle evaluate --step best` under
  eval.fid_every_steps, and say so (docs/fid.md).
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.cut import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.cut_base()
  if arg.runlocal:
    presets.cut_runlocal(c)
  return c


def get_sweep():
  """λ_NCE, as in the paper's ablations: 0 (GAN alone), 1 (CUT), 10 (FastCUT's weight)."""
  return [{'loss.lambda_nce': w} for w in (0.0, 1.0, 10.0)]
