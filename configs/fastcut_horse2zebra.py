"""FastCUT on horse2zebra, the paper's settings (Park et al. 2020; `--CUT_mode FastCUT`).

CUT's networks and data (configs/cut_horse2zebra.py) with what FastCUT changes: λ_NCE 10, no
identity NCE term (one generator pass per step), flip-equivariance augmentation (a random
horizontal flip of the input whose query features are flipped back), 150 + 50 epochs.

Command:
  jaxstyle train --config configs/fastcut_horse2zebra.py --workdir runs/fastcut \
    --config.data.tfds_download=True
  jaxstyle evaluate --workdir runs/fastcut
  jaxstyle train --config configs/fastcut_horse2zebra.py:runlocal --workdir runs/fastcut_local
Hardware: not run at this size here (TFDS horse2zebra is not on the development machines: 2-core AMD
  EPYC CPU, jaxlib 0.10.2); the step at these shapes: `jaxstyle bench cut --mode fastcut`.
Wall time: projected, not run: 200 epochs x 1,334 steps = 266,800 steps, CycleGAN's count, each step
  one generator pass instead of CUT's two images (docs/cut.md).
Expected: horse→zebra FID 73.4 (the paper's Table 1, as clean-fid's README lists it). Users report
  that FastCUT's defaults can fail on other data (the reference repository's issue #94): the
  sweep below varies what they tried.
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.cut import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.cut_base()
  presets.fastcut(c)
  if arg.runlocal:
    presets.cut_runlocal(c)
  return c


def get_sweep():
  """λ_NCE 1 / 10 with and without flip equivariance."""
  return [
    {'loss.lambda_nce': w, 'nce.flip_equivariance': flip}
    for w in (1.0, 10.0)
    for flip in (True, False)
  ]
