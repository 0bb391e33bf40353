"""CycleGAN, junyanz reference defaults (= the paper): ResNet-9 ngf 64, 70x70 PatchGAN ndf 64.

Spec §1 `reference`: bicubic resize 286 -> random crop 256 -> h-flip, lambda 1 / 10 / 5,
pool 50, Adam 2e-4 (0.5, 0.999), 100 + 100 epochs with the code's `linear` policy
(`schedule='junyanz'`, exact incl. the LR-0 last epoch; 'paper' is the paper's), epoch =
max(#A, #B) steps at batch 1 per device, IN eps 1e-5 on the variance. Default data: horse2zebra.

Command:
  jaxstyle train --config configs/cyclegan_reference.py --workdir runs/reference \
    --config.data.tfds_download=True
Hardware: not yet measured
Wall time: not yet measured, 200 epochs (266,800 steps on horse2zebra at batch 1)
Expected: not yet measured
"""
import ml_collections

from jaxstyle import config_lib
from jaxstyle.cyclegan import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.cyclegan_base()
  c.data.update(dict(name='horse2zebra', image_size=256, load_size=286, augment='reference',
                     epoch_rule='max'))
  c.model.update(presets.REFERENCE_MODEL)  # ResNet-9 g64, PatchGAN d64, IN eps 1e-5 on var
  c.loss.lambda_id = 5.0
  c.optim.schedule = 'junyanz'
  if arg.runlocal:
    presets.cyclegan_runlocal(c)
    c.data.augment = 'book'
  return c


def get_sweep():
  """Identity-loss ablation, as MMGen ran it: identity 0.5 (lambda_id 5) and 0."""
  return [{'loss.lambda_id': w} for w in (0.0, 5.0)]
