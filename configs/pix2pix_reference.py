"""pix2pix on any dataset of the reference's datasets/download_pix2pix_dataset.sh, by name.

`:dataset=` one of edges2shoes, edges2handbags, maps (AtoB: sat2map; --config.data.direction=BtoA
for map2sat), night2day, facades, cityscapes (not downloadable: prepare it as the reference says
and pass --config.data.root). Each takes the direction the reference trains
(`pix2pix.presets.DATASETS`) and the paper's settings (`pix2pix_base`); the paper's edges2* runs
used batch 4 (--config.per_device_batch=4) and 15 epochs, here left at the base recipe.

Command:
  jaxstyle train --config configs/pix2pix_reference.py:dataset=edges2shoes \
    --workdir runs/edges2shoes --config.data.download=True
Hardware: the step at 256², batch 1, as configs/pix2pix_facades.py measured it (2-core AMD EPYC
  CPU under heavy load: 4.1-5.6 s/step); an accelerator is the realistic target for these datasets.
Wall time: projected, not run: the dataset's training pairs x 200 epochs steps (edges2shoes: 49,825
  pairs, about 10 M steps) at that rate; the paper's 15 epochs at batch 4 cut it 13x.
Expected: the paper reports its edges2shoes / maps / night2day results as figures and AMT
  perceptual studies, not a metric this command recomputes; `jaxstyle evaluate` gives L1 / PSNR /
  SSIM and FID / KID on the test split. Cityscapes labels -> photo is the paper's FCN-score task
  (L1 + cGAN: per-pixel acc 0.66, per-class acc 0.23, class IoU 0.17), whose FCN this repository
  does not ship.
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.pix2pix import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, dataset='edges2shoes', runlocal=False)
  c = presets.dataset_config(arg.dataset)
  if arg.runlocal:
    presets.pix2pix_runlocal(c)
  return c
