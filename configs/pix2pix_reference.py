"""pix2pix on any dataset of the reference's datasets/download_pix2pix_dataset.sh, by name.

`:dataset=` one of edges2shoes, edges2handbags, maps (AtoB: sat2map; --config.data.direction=BtoA
for map2sat), night2day, facades, cityscapes (not downloadable: prepare it as the reference says
and pass --config.data.root). Each takes the direction the reference trains
(`pix2pix.presets.DATASETS`) and the paper's settings (`pix2pix_base`); the paper's edges2* runs
used batch 4 (--config.per_device_batch=4) and 15 epochs, here left at the base recipe.

Command:
  jaxstyle train --config configs/pix2pix_reference.py:dataset=edges2shoes \
    --workdir runs/edges2shoes --config.data.download=True
Hardware, wall time and expected figures: not measured yet (docs/pix2pix.md).
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
