"""Fast style transfer, one style: Johnson et al. 2016 (the paper's losses, weights and schedule).

A feed-forward transformation net (jaxstyle.models.johnson, 1,679,235 parameters, resize-conv ups,
scaled-tanh output) trained with the NST package's losses: content MSE at relu3_3 (block3_conv3),
Gram MSE at relu1_2, relu2_2, relu3_3, relu4_3, TV 1e-6; content 1 / style 5; Adam 1e-3, batch 4,
256² crops, 40,000 steps. The paper trained on COCO: `--config.data.source=tfds` (coco/2017,
prepared in ArrayRecord format) or `--config.data.source=folder --config.data.root=DIR`; the
default content is the embedded synthetic set, so the command runs offline (VGG19 weights aside).

Command:
  jaxstyle train --config configs/fast_style_johnson.py --workdir runs/fast --config.styles=style.jpg
  jaxstyle stylize --model runs/fast photo.jpg -o photo_styled.jpg
  jaxstyle train --config configs/fast_style_johnson.py:runlocal --workdir runs/fast_local \
    --config.vgg.source=random  # a CPU smoke run: 60 steps of 2 x 64², random VGG19
  jaxstyle bench preset --config configs/fast_style_johnson.py  # s/step
Hardware: the train step measured at the preset's shapes (4 x 256² crops, one 256² style) with
  random-initialised VGG19 and random stand-in images (the Keras ImageNet weights and COCO are not
  on the development machines), 2-core AMD EPYC CPU (AVX2), jaxlib 0.10.2: 36.6 s/step with other
  jobs on the cores (5.78 s for the same step on the quiet machine), compile 41 s, peak RSS 3.7 GiB;
  no accelerator has timed this step (docs/performance.md: "Presets at their real shapes", "Fast
  style").
Wall time: projected, not run: 40,000 steps: 2 d 16 h (quiet) to 16 d 22 h on that CPU, so the full
  preset is for an accelerator. Published: Johnson et al. 2016 (§4) train the same 40,000 steps in
  roughly 4 hours on one GTX Titan X.
Expected: with real VGG19 weights, held-out samples in the style's colours and strokes; Johnson et
  al. 2016 report that the trained net reaches the perceptual loss of 50 to 100 L-BFGS iterations of
  Gatys et al.'s optimisation in one forward pass (0.015 s at 256² on a GTX Titan X).
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.fast_style import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.fast_style_base()
  if arg.runlocal:
    presets.runlocal(c)
  return c


def get_sweep():
  """Style-weight ablation around the paper's 5."""
  return [{'loss.style_weight': w} for w in (2.0, 5.0, 10.0)]
