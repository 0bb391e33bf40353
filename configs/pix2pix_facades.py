"""pix2pix, the paper's facades labels -> photo (the reference's scripts/train_pix2pix.sh).

U-Net-256 with batch norm and dropout, the conditional 70x70 PatchGAN, vanilla GAN + 100 L1, batch
1, Adam 2e-4 beta1 0.5, 100 + 100 epochs with linear decay, 286 -> 256 crops and flips shared by
both halves; facades' A is the photo and B the label map, so the direction is BtoA.

Command:
  jaxstyle train --config configs/pix2pix_facades.py --workdir runs/facades \
    --config.data.download=True        # once: the reference's facades.tar.gz into the cache
  jaxstyle evaluate --workdir runs/facades [--eval]
  jaxstyle train --config configs/pix2pix_facades.py:runlocal --workdir runs/facades_local
Hardware: the step measured at the preset's shapes (1 x 256² pair, U-Net-256 + 6-channel PatchGAN,
  batch norm, dropout) on random pairs, the shared 2-core AMD EPYC CPU (AVX2), jaxlib 0.10.2, under
  heavy load (load average about 9): 4.1-5.6 s/step, compile 65 s, peak RSS 2.8 GiB.
Wall time: projected, not run: 400 pairs x 200 epochs = 80,000 steps, about 4 days at that rate on
  that CPU. The paper reports small datasets such as facades training in under two hours on one
  Pascal Titan X GPU.
Expected: the paper shows facades labels -> photo as figures only (no metric); `jaxstyle evaluate`
  reports L1 / PSNR / SSIM against the 106 test photos and FID / KID when the Inception weights are
  available. The reference's own model of this recipe is published (`--pretrained
  pix2pix/facades_label2photo`, docs/pix2pix.md) for side-by-side samples.
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
