"""pix2pix, the paper's facades labels -> photo (the reference's scripts/train_pix2pix.sh).

U-Net-256 with batch norm and dropout, the conditional 70x70 PatchGAN, vanilla GAN + 100 L1, batch
1, Adam 2e-4 beta1 0.5, 100 + 100 epochs with linear decay, 286 -> 256 crops and flips shared by
both halves; facades' A is the photo and B the label map, so the direction is BtoA.

Command:
  jaxstyle train --config configs/pix2pix_facades.py --workdir runs/facades \
    --config.data.download=True        # once: the reference's facades.tar.gz into the cache
  jaxstyle evaluate --workdir runs/facades [--eval]
  jaxstyle train --config configs/pix2pix_facades.py:runlocal --workdir runs/facades_local
Hardware, wall time and expected figures: not measured yet (docs/pix2pix.md).
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.pix2pix import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.dataset_config('facades')
  if arg.runlocal:
    presets.pix2pix_runlocal(c)
  return c
