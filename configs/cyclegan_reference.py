"""CycleGAN, junyanz reference defaults (= the paper): ResNet-9 ngf 64, 70x70 PatchGAN ndf 64.

Spec §1 `reference`: bicubic resize 286 -> random crop 256 -> h-flip, lambda 1 / 10 / 5,
pool 50, Adam 2e-4 (0.5, 0.999), 100 + 100 epochs with the code's `linear` policy
(`schedule='junyanz'`, exact incl. the LR-0 last epoch; 'paper' is the paper's), epoch =
max(#A, #B) steps at batch 1 per device, IN eps 1e-5 on the variance. Default data: horse2zebra.

Command:
  jaxstyle train --config configs/cyclegan_reference.py --workdir runs/reference \
    --config.data.tfds_download=True
  jaxstyle evaluate --workdir runs/reference
  jaxstyle bench preset --config configs/cyclegan_reference.py --steps 2  # s/step
Hardware: the step measured at the preset's shapes (1 x 256² crops per domain) on stand-in random
  images (TFDS horse2zebra is not on the development machines), 2-core AMD EPYC CPU (AVX2), jaxlib
  0.10.2: 52.1 s/step with other jobs on the cores (16.4 s for the same networks on the quiet
  machine), compile 146 s, peak RSS 5.3 GiB; 34.4 ms/step on one H100 (fp32; 26.0 ms with bf16
  compute) (docs/performance.md: "Presets at their real shapes", the CPU and GPU tables).
Wall time: projected, not run: 200 epochs x 1,334 steps = 266,800 steps: 50 d (quiet) to 161 d on
  that CPU; about 2 h 33 min of steps on one H100 (input pipeline, samples and checkpoints not
  included). Published: junyanz users report 1-2 days on a GTX 1080
  (pytorch-CycleGAN-and-pix2pix#1549), "just under 32 hours" on a Titan X (AAnoosheh/ComboGAN#7).
Expected: FID horse→zebra 62.1 for the authors' released model and 64.5 for MMGen's re-training,
  zebra→horse 138.6 / 141.2; with the sweep's lambda_id 0, horse→zebra 77.2 / 74.8
  (open-mmlab/mmgeneration configs/cyclegan/README.md). `jaxstyle evaluate` reports eval/fid_A2B and
  B2A as pytorch-fid computes them, on the 120 / 140 test images; MMGen's protocol may differ, so
  compare the order of magnitude. The paper (Zhu et al. 2017) reports no horse2zebra metric, only
  sample figures.
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.cyclegan import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.cyclegan_base()
  c.data.update(
    dict(name='horse2zebra', image_size=256, load_size=286, augment='reference', epoch_rule='max')
  )
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
