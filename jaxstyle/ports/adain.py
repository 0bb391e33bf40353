"""pytorch-AdaIN's released weights (`decoder.pth`, `vgg_normalised.pth`) -> `models.adain` params.

Both files are `torch.save(nn.Sequential.state_dict())` of naoto0804/pytorch-AdaIN's `net.decoder`
and `net.vgg` (keys are the Sequential indices, e.g. '28.weight'); they are read by
`torch_pth`'s restricted reader (no code from the file runs) and renamed by
`models.adain.params_from_state_dict`. `load_encoder` also takes a `port-weights --kind adain-vgg`
folder, so inference can name either.
"""

from __future__ import annotations

import os
from typing import Any

from jaxstyle.models import adain as adain_model
from jaxstyle.ports import torch_pth

DECODER_NET = 'adain_decoder'
VGG_NET = 'adain_vgg'


def _state_dict(path: str | os.PathLike) -> dict[str, Any]:
  sd = torch_pth.load_state_dict(path)
  return {k[len('module.') :] if k.startswith('module.') else k: v for k, v in sd.items()}


def _with_path(err: adain_model.AdainWeightError, path: str | os.PathLike) -> Exception:
  return adain_model.AdainWeightError(f'{os.fspath(path)}: {err}')


def load_decoder(path: str | os.PathLike) -> dict[str, Any]:
  """`decoder.pth` -> `Decoder` params (`conv_0` .. `conv_8`)."""
  try:
    return adain_model.params_from_state_dict(_state_dict(path), 'decoder')
  except adain_model.AdainWeightError as e:
    raise _with_path(e, path) from None


def load_vgg(path: str | os.PathLike) -> dict[str, Any]:
  """`vgg_normalised.pth` -> `encode(..., kind='normalised')` params (all 17 convs)."""
  try:
    return adain_model.params_from_state_dict(_state_dict(path), 'vgg')
  except adain_model.AdainWeightError as e:
    raise _with_path(e, path) from None


def is_decoder(keys: set[str]) -> bool:
  return keys == set(adain_model.decoder_torch_shapes())


def is_vgg(keys: set[str]) -> bool:
  return keys == set(adain_model.vgg_torch_shapes())


def load_encoder(path: str | os.PathLike) -> dict[str, Any]:
  """The 'normalised' encoder to relu4_1 from `vgg_normalised.pth` or its ported folder."""
  if os.path.isdir(path):
    from jaxstyle import checkpoint

    params, meta = checkpoint.load_params(os.fspath(path))
    if meta.get('model_cfg', {}).get('net') != VGG_NET:
      raise adain_model.AdainWeightError(
        f'{os.fspath(path)} is not a ported AdaIN VGG (jaxstyle port-weights '
        'vgg_normalised.pth --kind adain-vgg -o DIR makes one)'
      )
  else:
    params = load_vgg(path)
  return {name: params[name] for name in adain_model.encoder_shapes()}
