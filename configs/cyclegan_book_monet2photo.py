"""CycleGAN, GDL Example 5-7: monet2photo at 256x256, book ResNet-9 (g=32), book D (d=64).

Spec §1 `book_5_7`: lambda 1 / 10 / 5, constant LR 2e-4 (assumed as 5-1), pool 50, epoch =
min(#A, #B), resize + h-flip, keras-contrib instance norm (std + 1e-3), N(0, 0.02) init.

Command:
  jaxstyle train --config configs/cyclegan_book_monet2photo.py --workdir runs/book_5_7 \
    --config.data.tfds_download=True
Hardware: not yet measured
Wall time: not yet measured, 200 epochs
Expected: not yet measured (sample grids as the book's Monet figures in {workdir}/samples)
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
