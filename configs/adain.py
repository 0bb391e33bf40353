"""Arbitrary style transfer (AdaIN): Huang & Belongie 2017, the reference trainer's settings.

A frozen VGG19 encoder to relu4_1, an AdaIN layer and the reference decoder (jaxstyle.models.adain,
3,505,219 parameters) trained as naoto0804/pytorch-AdaIN `train.py`: content loss at relu4_1 against
the AdaIN target, style loss on the means and standard deviations of relu1_1 ... relu4_1, content 1 /
style 10; Adam 1e-4 decayed as lr / (1 + 5e-5 · iteration), batch 8, images squashed to 512² and
randomly cropped to 256², 160,000 iterations. The reference trained on MS-COCO content and WikiArt
styles: `--config.data.source=tfds` (coco/2017, prepared in ArrayRecord format) or
`--config.data.source=folder --config.data.root=DIR`, and `--config.style.source=folder
--config.style.root=WIKIART_DIR`. The defaults are the embedded synthetic scenes and recoloured
embedded patterns, so the command runs offline (VGG19 weights aside).

Command:
  jaxstyle train --config configs/adain.py --workdir runs/adain --config.data.source=tfds \
    --config.style.source=folder --config.style.root=wikiart/train
  jaxstyle train --config configs/adain.py:runlocal --workdir runs/adain_local \
    --config.vgg.source=random  # a CPU smoke run: 60 steps of 2 x 32² crops, random VGG19
  jaxstyle bench adain --with-peer  # s/step and frames/s against the PyTorch peer
Hardware: the train step measured at the preset's shapes (8 x 256² crops) with random-initialised
  VGG19 and random images (`jaxstyle bench adain`), 2-core AMD EPYC CPU (AVX2), jaxlib 0.10.2, quiet
  machine: 11.5 s/step (the PyTorch peer: 18.0 s), compile 9 s, peak RSS 4.0 GiB; no accelerator
  reading yet (docs/adain.md, "Speed").
Wall time: projected, not run: 160,000 steps x 11.5 s = 21 days on that CPU, so the full preset is
  for an accelerator. :runlocal: about a minute on that CPU (60 steps of 2 x 32², 1
  device). Published: the reference README gives no training time; its train.py defaults to
  these 160,000 iterations of batch 8.
Expected: with real VGG19 weights, COCO and WikiArt, a decoder that stylises any content with any
  style in one forward pass (the paper: 15 frames/s at 512² on a Pascal Titan X, including the
  encoder). :runlocal on random VGG19 (measured): the held-out loss falls from 2.08e5 at
  initialisation to 1.30e5 at step 60 (the pictures mean nothing).
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.adain import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.adain_base()
  if arg.runlocal:
    presets.runlocal(c)
  return c


def get_sweep():
  """Style-weight ablation around the reference's 10."""
  return [{'loss.style_weight': w} for w in (1.0, 10.0, 100.0)]
