"""CycleGAN, GDL Example 5-7: monet2photo at 256x256, book ResNet-9 (g=32), book D (d=64).

Spec §1 `book_5_7`: lambda 1 / 10 / 5, constant LR 2e-4 (assumed as 5-1), pool 50, epoch =
min(#A, #B), resize + h-flip, keras-contrib instance norm (std + 1e-3), N(0, 0.02) init.

Command:
  jaxstyle train --config configs/cyclegan_book_monet2photo.py --workdir runs/book_5_7 \
    --config.data.tfds_download=True
  jaxstyle bench preset --config configs/cyclegan_book_monet2photo.py  # s/step
Hardware: the step measured at the preset's shapes (1 x 256² per domain) on stand-in random images
  (TFDS monet2photo is not on the development machines), 2-core AMD EPYC CPU (AVX2), jaxlib 0.10.2:
  44.7 s/step with other jobs on the cores (loaded figures run 3-6.5x the quiet machine's:
  docs/performance.md "Presets at their real shapes"), compile 129 s, peak RSS 4.0 GiB; no
  accelerator has timed these networks (the reference ResNet-9 at 256²: 34.4 ms/step on one H100).
Wall time: projected, not run: 200 epochs x 1,072 steps = 214,400 steps: 111 d at the loaded rate on
  that CPU, weeks on the quiet machine, so the preset is for an accelerator: about 2 h of steps on
  one H100 if the book's g32 ResNet runs no slower than ResNet-9 g64. Published: no timing for this
  preset; junyanz users report 1-2 days for 200 epochs of horse2zebra on a GTX 1080
  (pytorch-CycleGAN-and-pix2pix#1549).
Expected: no published metric (no verifiable monet2photo FID exists); sample grids like the book's
  Monet ↔ photo figures (Foster, Generative Deep Learning, O'Reilly 2019, ch. 5, Example 5-7) in
  {workdir}/samples.
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.cyclegan import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.cyclegan_base()
  c.data.update(dict(name='monet2photo', image_size=256))
  c.model.update(dict(generator='resnet_book', disc_filters=64, init='normal'))
  c.loss.lambda_id = 5.0
  if arg.runlocal:
    presets.cyclegan_runlocal(c)
  return c


def get_sweep():
  """Identity-loss ablation: off, the book's 5-1 weight, the book's 5-7 / reference weight."""
  return [{'loss.lambda_id': w} for w in (0.0, 2.0, 5.0)]
