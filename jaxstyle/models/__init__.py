"""CycleGAN networks, built from a `model_cfg` (its fields and defaults: `jaxstyle/networks.py`).

Also exports `JohnsonNet`, the fast-style transformation net (`models/johnson.py`): it is not a
CycleGAN generator, so it is deliberately absent from `GENERATORS`.

The registries are plain dicts of builders `model_cfg -> nn.Module` (no dynamic imports), so a
config names a network by string and every field it reads is visible here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxstyle import jax_setup  # noqa: F401  (process-wide RNG setting; see its docstring)
from jaxstyle.errors import ConfigError
from jaxstyle.models.cut import CutGenerator
from jaxstyle.models.johnson import JohnsonNet
from jaxstyle.models.patchgan import PatchDiscriminator
from jaxstyle.models.resnet_gen import ResnetGenerator
from jaxstyle.models.unet import UnetBookGenerator
from jaxstyle.networks import GENERATOR_MULTIPLE

__all__ = [
  'DISCRIMINATORS',
  'GENERATORS',
  'JohnsonNet',
  'PatchDiscriminator',
  'ResnetGenerator',
  'UnetBookGenerator',
  'generator_multiple',
  'make_discriminator',
  'make_generator',
]


def _common(cfg: Any) -> dict[str, Any]:
  # Configs written before `conv_impl` existed (checkpoints, ports) lack it: 'auto'.
  return dict(
    norm_eps=cfg.norm_eps,
    eps_mode=cfg.eps_mode,
    init_scheme=cfg.init,
    init_gain=cfg.init_gain,
    dtype=jnp.dtype(cfg.dtype),
    conv_impl=str(getattr(cfg, 'conv_impl', 'auto')),
  )


def _resnet(book: bool) -> Callable[[Any], nn.Module]:
  def build(cfg: Any) -> nn.Module:
    return ResnetGenerator(
      filters=cfg.gen_filters,
      n_blocks=cfg.n_blocks,
      out_channels=cfg.out_channels,
      book=book,
      upsample=cfg.upsample,
      **_common(cfg),
    )

  return build


def _unet_book(cfg: Any) -> nn.Module:
  # `upsample` is ignored: the book U-Net always upsamples by nearest ×2 + conv.
  return UnetBookGenerator(filters=cfg.gen_filters, out_channels=cfg.out_channels, **_common(cfg))


def _patchgan(book: bool) -> Callable[[Any], nn.Module]:
  def build(cfg: Any) -> nn.Module:
    return PatchDiscriminator(
      filters=cfg.disc_filters, n_layers=cfg.n_layers, book=book, **_common(cfg)
    )

  return build


def _resnet_antialias(cfg: Any) -> nn.Module:
  # CUT's generator (models/cut.py); `upsample` is ignored: it always blurs, then convs.
  return CutGenerator(
    filters=cfg.gen_filters, n_blocks=cfg.n_blocks, out_channels=cfg.out_channels, **_common(cfg)
  )


GENERATORS: dict[str, Callable[[Any], nn.Module]] = {
  'resnet': _resnet(book=False),
  'resnet_book': _resnet(book=True),
  'unet_book': _unet_book,
  'resnet_antialias': _resnet_antialias,
}
DISCRIMINATORS: dict[str, Callable[[Any], nn.Module]] = {
  'patchgan': _patchgan(book=False),
  'patchgan_book': _patchgan(book=True),
}


def make_generator(model_cfg: Any) -> nn.Module:
  """The generator named by `model_cfg.generator`.

  `in_channels` needs no field on the module (Flax infers it from the input at init); it is kept
  in the config so checkpoints record it and callers can build example inputs.
  """
  if model_cfg.generator not in GENERATORS:
    raise ConfigError(f'unknown generator {model_cfg.generator!r}; choose from {list(GENERATORS)}')
  return GENERATORS[model_cfg.generator](model_cfg)


def make_discriminator(model_cfg: Any) -> nn.Module:
  """The discriminator named by `model_cfg.discriminator` (1-channel LSGAN score map)."""
  if model_cfg.discriminator not in DISCRIMINATORS:
    raise ConfigError(
      f'unknown discriminator {model_cfg.discriminator!r}; choose from {list(DISCRIMINATORS)}'
    )
  return DISCRIMINATORS[model_cfg.discriminator](model_cfg)


def generator_multiple(model_cfg: Any) -> int:
  """Input sides must be a multiple of this (2 stride-2 downs for ResNets, 4 for the U-Net)."""
  return GENERATOR_MULTIPLE[model_cfg.generator]
