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
  jaxstyle train --config configs/fast_style_johnson.py:runlocal --workdir runs/fast_local  # minutes, CPU
Hardware: full preset: one accelerator (40k steps of 4 x 256²); runlocal: a laptop CPU.
Wall time: runlocal (60 steps of 2 x 64², random VGG19): see README "Fast style transfer".
Expected: losses fall; with real VGG19 weights the held-out samples take the style's colours and
  strokes. Not measured with real weights (they cannot be downloaded on the development machines).
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
