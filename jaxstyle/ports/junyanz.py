"""junyanz/pytorch-CycleGAN-and-pix2pix state_dicts → jaxstyle params (docs/design/cyclegan.md).

The reference nets are `nn.Sequential`s, so their keys are layer indices (`model.4.weight`). We
derive the architecture (blocks, filters, channels, depth) from the keys and shapes, check that the
key set is exactly the one that architecture produces, and rename onto the pinned submodule names
(ARCHITECTURE.md). A wrong `--netG/--norm/--no_dropout` guess is the most common reason reference
checkpoints fail to load (#296, #812), so a mismatch names the missing and unexpected keys.
"""

from __future__ import annotations

import os
import re
from typing import Any

import ml_collections
import numpy as np

from jaxstyle.networks import reference_model
from jaxstyle.ports import torch_pth
from jaxstyle.ports.torch_pickle import CheckpointFormatError

__all__ = [
  'discriminator_from_pth',
  'discriminator_from_state_dict',
  'generator_from_pth',
  'generator_from_state_dict',
]

# Pre-0.4 PyTorch wrote InstanceNorm running stats; the reference loader drops them too.
_IGNORED_SUFFIXES = ('.running_mean', '.running_var', '.num_batches_tracked')
_BLOCK_RE = re.compile(r'^model\.(\d+)\.conv_block\.(\d+)\.(weight|bias)$')
_TOP_RE = re.compile(r'^model\.(\d+)\.(weight|bias)$')


def _clean(sd: dict[str, Any]) -> dict[str, np.ndarray]:
  """Strips a DataParallel `module.` prefix and drops IN running-stat keys."""
  out = {}
  for key, value in sd.items():
    key = key[len('module.') :] if key.startswith('module.') else key
    if not key.endswith(_IGNORED_SUFFIXES):
      out[key] = np.asarray(value)
  return out


def _conv(sd: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
  """Conv2d / ConvTranspose2d weight → HWIO-style kernel; both are `transpose(2, 3, 1, 0)`.

  Conv2d (O, I, kH, kW) → (kH, kW, I, O). ConvTranspose2d stores (Cin, Cout, kH, kW), which gives
  (kH, kW, Cout, Cin): what Flax `ConvTranspose(transpose_kernel=True)` expects.
  """
  kernel = np.ascontiguousarray(sd[prefix + '.weight'].transpose(2, 3, 1, 0), dtype=np.float32)
  return {'kernel': kernel, 'bias': np.asarray(sd[prefix + '.bias'], dtype=np.float32)}


def _check(sd: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]], what: str) -> None:
  """Raises one error that lists every missing, unexpected and mis-shaped key."""
  missing = sorted(set(expected) - set(sd))
  unexpected = sorted(set(sd) - set(expected))
  shapes = sorted(
    f'{k}: file {tuple(sd[k].shape)} vs expected {expected[k]}'
    for k in set(sd) & set(expected)
    if tuple(sd[k].shape) != expected[k]
  )
  if not (missing or unexpected or shapes):
    return
  lines = [f'state_dict does not match a junyanz {what}:']
  for title, items in (
    ('missing keys', missing),
    ('unexpected keys', unexpected),
    ('shape mismatches', shapes),
  ):
    if items:
      lines.append(
        f'  {title} ({len(items)}): ' + ', '.join(items[:20]) + (' ...' if len(items) > 20 else '')
      )
  if any(k.endswith('.weight') and sd[k].ndim == 1 for k in unexpected):
    lines.append(
      "  1-D '.weight' keys look like BatchNorm / affine norm layers: only "
      '--norm instance (affine=False) checkpoints are supported.'
    )
  raise ValueError('\n'.join(lines))


def _conv_shape(cout: int, cin: int, k: int) -> dict[str, tuple[int, ...]]:
  return {'weight': (cout, cin, k, k), 'bias': (cout,)}


def _expected(entries: dict[str, dict[str, tuple[int, ...]]]) -> dict[str, tuple[int, ...]]:
  return {
    f'{prefix}.{leaf}': shape
    for prefix, leaves in entries.items()
    for leaf, shape in leaves.items()
  }


def generator_from_state_dict(sd: dict[str, Any]) -> tuple[dict, ml_collections.ConfigDict]:
  """junyanz `ResnetGenerator` (resnet_6blocks / resnet_9blocks / any N) → (params, model_cfg).

  Works with and without `use_dropout` (the dropout variant shifts the second block conv to
  `conv_block.6`; dropout itself has no weights and we always run the inference path).
  """
  sd = _clean(sd)
  if 'model.1.weight' not in sd or sd['model.1.weight'].ndim != 4:
    raise ValueError(
      "not a junyanz ResnetGenerator state_dict: no 4-D 'model.1.weight' (stem conv); "
      f'first keys: {sorted(sd)[:8]}'
    )
  blocks = sorted({int(m.group(1)) for k in sd if (m := _BLOCK_RE.match(k))})
  n_blocks = len(blocks)
  second = {int(m.group(2)) for k in sd if (m := _BLOCK_RE.match(k))} - {1}
  dropout = second == {6}
  ngf, in_ch = sd['model.1.weight'].shape[:2]
  head_key = f'model.{17 + n_blocks}.weight'
  out_ch = sd[head_key].shape[0] if head_key in sd and sd[head_key].ndim == 4 else 3
  g = ngf
  layout = {
    'model.1': _conv_shape(g, in_ch, 7),
    'model.4': _conv_shape(2 * g, g, 3),
    'model.7': _conv_shape(4 * g, 2 * g, 3),
  }
  for i in range(n_blocks):
    for j in (1, 6 if dropout else 5):
      layout[f'model.{10 + i}.conv_block.{j}'] = _conv_shape(4 * g, 4 * g, 3)
  layout[f'model.{10 + n_blocks}'] = {'weight': (4 * g, 2 * g, 3, 3), 'bias': (2 * g,)}
  layout[f'model.{13 + n_blocks}'] = {'weight': (2 * g, g, 3, 3), 'bias': (g,)}
  layout[f'model.{17 + n_blocks}'] = _conv_shape(out_ch, g, 7)
  _check(
    sd,
    _expected(layout),
    f'ResnetGenerator (ngf={g}, n_blocks={n_blocks}{", dropout" if dropout else ""})',
  )

  params: dict[str, Any] = {
    'stem': _conv(sd, 'model.1'),
    'down_0': _conv(sd, 'model.4'),
    'down_1': _conv(sd, 'model.7'),
  }
  for i in range(n_blocks):
    params[f'block_{i}'] = {
      'conv_0': _conv(sd, f'model.{10 + i}.conv_block.1'),
      'conv_1': _conv(sd, f'model.{10 + i}.conv_block.{6 if dropout else 5}'),
    }
  params['up_0'] = _conv(sd, f'model.{10 + n_blocks}')
  params['up_1'] = _conv(sd, f'model.{13 + n_blocks}')
  params['head'] = _conv(sd, f'model.{17 + n_blocks}')
  cfg = reference_model(
    generator='resnet',
    gen_filters=int(g),
    n_blocks=n_blocks,
    in_channels=int(in_ch),
    out_channels=int(out_ch),
    upsample='deconv',
    norm_eps=1e-5,
    eps_mode='var',
  )
  return params, cfg


def discriminator_from_state_dict(sd: dict[str, Any]) -> tuple[dict, ml_collections.ConfigDict]:
  """junyanz `NLayerDiscriminator` (basic = n_layers 3, or any n_layers) → (params, model_cfg).

  Conv k sits at `model.0` (k = 0) or `model.{3k-1}` (k = 1..n_layers: conv, norm, LeakyReLU
  triples after the norm-free first pair); the 1-channel head follows at `model.{3n+2}`.
  """
  sd = _clean(sd)
  convs = sorted({int(m.group(1)) for k in sd if (m := _TOP_RE.match(k))})
  if not convs or convs[0] != 0 or sd.get('model.0.weight', np.zeros(0)).ndim != 4:
    raise ValueError(
      "not a junyanz NLayerDiscriminator state_dict: no 4-D 'model.0.weight'; "
      f'first keys: {sorted(sd)[:8]}'
    )
  n_layers = max(len(convs) - 2, 1)
  ndf, in_ch = sd['model.0.weight'].shape[:2]
  index = [0] + [3 * k - 1 for k in range(1, n_layers + 1)]
  layout = {'model.0': _conv_shape(ndf, in_ch, 4)}
  for k in range(1, n_layers + 1):
    layout[f'model.{index[k]}'] = _conv_shape(ndf * min(2**k, 8), ndf * min(2 ** (k - 1), 8), 4)
  head = f'model.{3 * n_layers + 2}'
  layout[head] = _conv_shape(1, ndf * min(2**n_layers, 8), 4)
  _check(sd, _expected(layout), f'NLayerDiscriminator (ndf={ndf}, n_layers={n_layers})')

  params = {f'conv_{k}': _conv(sd, f'model.{i}') for k, i in enumerate(index)}
  params['head'] = _conv(sd, head)
  cfg = reference_model(
    discriminator='patchgan',
    disc_filters=int(ndf),
    n_layers=n_layers,
    in_channels=int(in_ch),
    norm_eps=1e-5,
    eps_mode='var',
  )
  return params, cfg


def generator_from_pth(path: str | os.PathLike) -> tuple[dict, ml_collections.ConfigDict]:
  """Reads e.g. a published `horse2zebra.pth` / `latest_net_G_A.pth` (safe, torch-free)."""
  sd = torch_pth.load_state_dict(path)
  try:
    return generator_from_state_dict(sd)
  except ValueError as e:
    raise CheckpointFormatError(f'{os.fspath(path)}: {e}') from None


def discriminator_from_pth(path: str | os.PathLike) -> tuple[dict, ml_collections.ConfigDict]:
  """Reads e.g. `latest_net_D_A.pth` (safe, torch-free)."""
  sd = torch_pth.load_state_dict(path)
  try:
    return discriminator_from_state_dict(sd)
  except ValueError as e:
    raise CheckpointFormatError(f'{os.fspath(path)}: {e}') from None
