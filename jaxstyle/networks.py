"""The translation networks' `model` sections: fields and the book's, junyanz's, CUT's, pix2pix values.

It sits below `models/` (which builds networks from it), `ports/` (the junyanz port returns one)
and `cyclegan/` (whose presets embed it), so none of them imports another for it. Like
config_lib it imports only ml_collections: configs and presets stay cheap to load (no jax).
"""

from __future__ import annotations

from typing import Any

import ml_collections

from jaxstyle import config_lib

# The book's Example 5-1 networks: U-Net g32, book PatchGAN d32, Keras init, eps 1e-3 on the std.
BOOK_MODEL = dict(
  generator='unet_book',
  discriminator='patchgan_book',
  gen_filters=32,
  disc_filters=32,
  n_blocks=9,
  n_layers=3,
  norm_eps=1e-3,
  eps_mode='std',
  init='keras',
  init_gain=0.02,
  upsample='deconv',
  dtype='float32',
  in_channels=3,
  out_channels=3,
  conv_impl='auto',
)  # auto | xla | subpixel | cpu_fast | cpu_winograd (kernels/dispatch.py)

# junyanz/pytorch-CycleGAN-and-pix2pix's networks (= the paper): what the reference preset
# changes in the book's model section. ResNet-9 ngf 64, 70x70 PatchGAN ndf 64, instance norm
# eps 1e-5 on the variance, N(0, 0.02) init.
REFERENCE_MODEL = dict(
  generator='resnet',
  discriminator='patchgan',
  gen_filters=64,
  disc_filters=64,
  norm_eps=1e-5,
  eps_mode='var',
  init='normal',
)

# Generator -> the multiple its input sides must be (2 stride-2 downs for ResNets, 4 for the
# U-Net); its keys are `models.GENERATORS`' (tests/test_config_validation.py).
GENERATOR_MULTIPLE = {'resnet': 4, 'resnet_book': 4, 'unet_book': 16, 'resnet_antialias': 4}

# CUT / FastCUT's networks (taesungp/contrastive-unpaired-translation's defaults; models/cut.py):
# the anti-aliased ResNet-9 and PatchGAN, torch xavier_normal init gain 0.02, and the width of
# PatchSampleF's MLPs (`--netF_nc`). `upsample` is unused by these networks.
CUT_MODEL = dict(
  generator='resnet_antialias',
  discriminator='patchgan_antialias',
  init='xavier',
  mlp_features=256,
)


def model_config(**overrides: Any) -> ml_collections.ConfigDict:
  """The book's `model` section (Example 5-1) with `overrides`; an unknown key is an error."""
  section = ml_collections.ConfigDict(BOOK_MODEL)
  config_lib.apply_overrides(section, overrides)
  return section


def reference_model(**overrides: Any) -> ml_collections.ConfigDict:
  """junyanz's networks (`REFERENCE_MODEL` over the book's section) with `overrides`."""
  return model_config(**{**REFERENCE_MODEL, **overrides})


def cut_model(**overrides: Any) -> ml_collections.ConfigDict:
  """CUT's `model` section: junyanz's with `CUT_MODEL` on top, then `overrides`."""
  section = ml_collections.ConfigDict({**BOOK_MODEL, **REFERENCE_MODEL, **CUT_MODEL})
  config_lib.apply_overrides(section, overrides)
  return section


def pix2pix_generator(
  num_downs: int = 8, filters: int = 64, in_channels: int = 3, out_channels: int = 3
) -> ml_collections.ConfigDict:
  """A ported pix2pix U-Net's fields, named as the pix2pix task's `model` section names them (its
  presets fill the rest), with the input width the weights expect."""
  return ml_collections.ConfigDict(
    dict(
      generator='unet256',
      norm='batch',
      num_downs=num_downs,
      gen_filters=filters,
      in_channels=in_channels,
      out_channels=out_channels,
      use_dropout=True,  # the reference's pix2pix default (no --no_dropout); no weights tell
    )
  )
