"""taesungp/contrastive-unpaired-translation (CUT / FastCUT) state dicts → jaxstyle params (docs/cut.md).

`latest_net_G.pth` is the anti-aliased `ResnetGenerator`, `latest_net_D.pth` the anti-aliased
`NLayerDiscriminator`, `latest_net_F.pth` `PatchSampleF` with its MLPs (`mlp_{i}.0`, `mlp_{i}.2`).
As in the junyanz port, the architecture is read off the keys and shapes, the key set must be
exactly what that architecture saves, and every conv lands on the pinned names of
`models/cut.py`. The blur layers' `.filt` buffers are fixed filters, not weights: they are
checked against the reference's ([1,2,1]² / 16 down, [1,3,3,1]² / 16 · 4 up), not stored, so a
file of a network with other filters fails instead of porting wrongly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import ml_collections
import numpy as np

from jaxstyle.networks import cut_model
from jaxstyle.ports import torch_pth
from jaxstyle.ports.torch_pickle import CheckpointFormatError

__all__ = [
  'discriminator_from_pth',
  'discriminator_from_state_dict',
  'generator_from_pth',
  'generator_from_state_dict',
  'is_cut_discriminator',
  'is_cut_generator',
  'is_patch_sampler',
  'patch_sampler_from_pth',
  'patch_sampler_from_state_dict',
]

_BLOCK_RE = re.compile(r'^model\.(\d+)\.conv_block\.\d+\.(weight|bias)$')
_TOP_RE = re.compile(r'^model\.(\d+)\.weight$')
_MLP_RE = re.compile(r'^mlp_(\d+)\.0\.weight$')


def _binomial(taps: list[float], scale: float) -> np.ndarray:
  a = np.asarray(taps)
  f = np.outer(a, a)
  return f / f.sum() * scale


BLUR_DOWN = _binomial([1, 2, 1], 1.0)  # the reference `Downsample(filt_size=3)`
BLUR_UP = _binomial([1, 3, 3, 1], 4.0)  # the reference `Upsample(filt_size=4)`, stride² gain


def _clean(sd: dict[str, Any]) -> dict[str, np.ndarray]:
  """Strips a DataParallel `module.` prefix (the reference saves `net.module`'s, but users don't)."""
  return {
    (k[len('module.') :] if k.startswith('module.') else k): np.asarray(v) for k, v in sd.items()
  }


def _conv(sd: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
  """Conv2d (O, I, kH, kW) → HWIO kernel and bias."""
  kernel = np.ascontiguousarray(sd[prefix + '.weight'].transpose(2, 3, 1, 0), dtype=np.float32)
  return {'kernel': kernel, 'bias': np.asarray(sd[prefix + '.bias'], dtype=np.float32)}


def _dense(sd: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
  """Linear (out, in) → Flax Dense kernel (in, out) and bias."""
  kernel = np.ascontiguousarray(sd[prefix + '.weight'].T, dtype=np.float32)
  return {'kernel': kernel, 'bias': np.asarray(sd[prefix + '.bias'], dtype=np.float32)}


def _conv_shape(prefix: str, cout: int, cin: int, k: int) -> dict[str, tuple[int, ...]]:
  return {f'{prefix}.weight': (cout, cin, k, k), f'{prefix}.bias': (cout,)}


def _check(
  sd: dict[str, np.ndarray],
  expected: dict[str, tuple[int, ...]],
  filters: dict[str, np.ndarray],
  what: str,
) -> None:
  """One error listing every missing, unexpected and mis-shaped key and any wrong blur filter.

  `filters` are the `.filt` buffers, optional (a state dict saved without buffers lacks them) but
  checked when present: each channel's copy must be the reference's filter.
  """
  missing = sorted(set(expected) - set(sd))
  unexpected = sorted(set(sd) - set(expected) - set(filters))
  problems = [
    f'{k}: file {tuple(sd[k].shape)} vs expected {expected[k]}'
    for k in sorted(set(sd) & set(expected))
    if tuple(sd[k].shape) != expected[k]
  ]
  for key, filt in filters.items():
    if key in sd:
      a = np.asarray(sd[key], dtype=np.float64)
      if a.ndim != 4 or a.shape[1] != 1 or not np.allclose(a, filt[None, None], atol=1e-6):
        problems.append(f'{key}: not the reference blur filter {filt.shape[0]}x{filt.shape[1]}')
  if not (missing or unexpected or problems):
    return
  lines = [f'state_dict does not match a CUT {what}:']
  for title, items in (
    ('missing keys', missing),
    ('unexpected keys', unexpected),
    ('mismatches', problems),
  ):
    if items:
      lines.append(
        f'  {title} ({len(items)}): ' + ', '.join(items[:20]) + (' ...' if len(items) > 20 else '')
      )
  raise ValueError('\n'.join(lines))


def is_cut_generator(keys: Any) -> bool:
  """The anti-aliased ResNet generator: res blocks plus blur buffers (junyanz's G has no `.filt`)."""
  return any('.conv_block.' in k for k in keys) and any(k.endswith('.filt') for k in keys)


def is_cut_discriminator(keys: Any) -> bool:
  """The anti-aliased PatchGAN: `model.0.weight` and `model.2.filt`, its first blur."""
  return 'model.0.weight' in keys and 'model.2.filt' in keys


def is_patch_sampler(keys: Any) -> bool:
  """PatchSampleF (`--netF mlp_sample`): `mlp_0.0.weight`."""
  return 'mlp_0.0.weight' in keys


def generator_from_state_dict(sd: dict[str, Any]) -> tuple[dict, ml_collections.ConfigDict]:
  """CUT's `ResnetGenerator` (any n_blocks, ngf, channels; no dropout) → (params, model_cfg).

  Sequential layout: 1 stem, 4 down_0 (stride 1), 7 blur, 8 down_1, 11 blur, 12.. blocks,
  12+n blur-up, 13+n up_0 (a Conv2d), 16+n blur-up, 17+n up_1, 21+n head.
  """
  sd = _clean(sd)
  if 'model.1.weight' not in sd or sd['model.1.weight'].ndim != 4:
    raise ValueError(
      "not a CUT ResnetGenerator state_dict: no 4-D 'model.1.weight' (stem conv); "
      f'first keys: {sorted(sd)[:8]}'
    )
  n = len({int(m.group(1)) for k in sd if (m := _BLOCK_RE.match(k))})
  g, in_ch = (int(v) for v in sd['model.1.weight'].shape[:2])
  head = f'model.{21 + n}'
  out_ch = (
    int(sd[head + '.weight'].shape[0]) if sd.get(head + '.weight', np.zeros(0)).ndim == 4 else 3
  )
  expected = {
    **_conv_shape('model.1', g, in_ch, 7),
    **_conv_shape('model.4', 2 * g, g, 3),
    **_conv_shape('model.8', 4 * g, 2 * g, 3),
    **_conv_shape(f'model.{13 + n}', 2 * g, 4 * g, 3),
    **_conv_shape(f'model.{17 + n}', g, 2 * g, 3),
    **_conv_shape(head, out_ch, g, 7),
  }
  for i in range(n):
    for j in (1, 5):
      expected.update(_conv_shape(f'model.{12 + i}.conv_block.{j}', 4 * g, 4 * g, 3))
  filters = {'model.7.filt': BLUR_DOWN, 'model.11.filt': BLUR_DOWN}
  filters.update({f'model.{12 + n}.filt': BLUR_UP, f'model.{16 + n}.filt': BLUR_UP})
  _check(sd, expected, filters, f'ResnetGenerator (ngf={g}, n_blocks={n}, anti-aliased)')

  params: dict[str, Any] = {
    'stem': _conv(sd, 'model.1'),
    'down_0': _conv(sd, 'model.4'),
    'down_1': _conv(sd, 'model.8'),
  }
  for i in range(n):
    params[f'block_{i}'] = {
      'conv_0': _conv(sd, f'model.{12 + i}.conv_block.1'),
      'conv_1': _conv(sd, f'model.{12 + i}.conv_block.5'),
    }
  params['up_0'] = _conv(sd, f'model.{13 + n}')
  params['up_1'] = _conv(sd, f'model.{17 + n}')
  params['head'] = _conv(sd, head)
  cfg = cut_model(gen_filters=g, n_blocks=n, in_channels=in_ch, out_channels=out_ch)
  return params, cfg


def discriminator_from_state_dict(sd: dict[str, Any]) -> tuple[dict, ml_collections.ConfigDict]:
  """CUT's anti-aliased `NLayerDiscriminator` (basic = n_layers 3, or any) → (params, model_cfg).

  Conv k sits at `model.0` (k = 0) or `model.{4k-1}` (k ≥ 1: conv, norm, LeakyReLU, blur; the
  last has no blur), the blurs at `model.2` and `model.{4k+2}`, the head at `model.{4n+2}`.
  """
  sd = _clean(sd)
  convs = sorted({int(m.group(1)) for k in sd if (m := _TOP_RE.match(k))})
  if not convs or convs[0] != 0 or sd['model.0.weight'].ndim != 4:
    raise ValueError(
      "not a CUT NLayerDiscriminator state_dict: no 4-D 'model.0.weight'; "
      f'first keys: {sorted(sd)[:8]}'
    )
  n_layers = max(len(convs) - 2, 1)
  ndf, in_ch = (int(v) for v in sd['model.0.weight'].shape[:2])
  index = [0] + [4 * k - 1 for k in range(1, n_layers + 1)]
  expected = _conv_shape('model.0', ndf, in_ch, 4)
  for k in range(1, n_layers + 1):
    expected.update(
      _conv_shape(f'model.{index[k]}', ndf * min(2**k, 8), ndf * min(2 ** (k - 1), 8), 4)
    )
  head = f'model.{4 * n_layers + 2}'
  expected.update(_conv_shape(head, 1, ndf * min(2**n_layers, 8), 4))
  filters = {f'model.{4 * k + 2}.filt': BLUR_DOWN for k in range(n_layers)}
  _check(
    sd, expected, filters, f'NLayerDiscriminator (ndf={ndf}, n_layers={n_layers}, anti-aliased)'
  )

  params = {f'conv_{k}': _conv(sd, f'model.{i}') for k, i in enumerate(index)}
  params['head'] = _conv(sd, head)
  cfg = cut_model(disc_filters=ndf, n_layers=n_layers, in_channels=in_ch)
  return params, cfg


def patch_sampler_from_state_dict(sd: dict[str, Any]) -> tuple[dict, ml_collections.ConfigDict]:
  """`PatchSampleF` (`mlp_sample`) → (params `mlp_{i}/dense_{0,1}`, model_cfg with its width).

  The input channels of each MLP are those of the tapped layer (3, 128, 256, 256, 256 for the
  default ResNet-9 ngf 64 and nce_layers 0,4,8,12,16); they are read from the file.
  """
  sd = _clean(sd)
  mlps = sorted(int(m.group(1)) for k in sd if (m := _MLP_RE.match(k)))
  if not mlps or sd['mlp_0.0.weight'].ndim != 2:
    raise ValueError(
      f"not a CUT PatchSampleF state_dict: no 2-D 'mlp_0.0.weight'; first keys: {sorted(sd)[:8]}"
    )
  nc = int(sd['mlp_0.0.weight'].shape[0])
  expected: dict[str, tuple[int, ...]] = {}
  for i in range(len(mlps)):
    cin = int(sd[f'mlp_{i}.0.weight'].shape[1]) if f'mlp_{i}.0.weight' in sd else 0
    expected.update({f'mlp_{i}.0.weight': (nc, cin), f'mlp_{i}.0.bias': (nc,)})
    expected.update({f'mlp_{i}.2.weight': (nc, nc), f'mlp_{i}.2.bias': (nc,)})
  _check(sd, expected, {}, f'PatchSampleF ({len(mlps)} MLPs of width {nc})')
  params = {
    f'mlp_{i}': {'dense_0': _dense(sd, f'mlp_{i}.0'), 'dense_1': _dense(sd, f'mlp_{i}.2')}
    for i in range(len(mlps))
  }
  return params, cut_model(mlp_features=nc)


def _from_pth(
  convert: Callable[[dict], tuple[dict, ml_collections.ConfigDict]],
) -> Callable[[str | os.PathLike], tuple[dict, ml_collections.ConfigDict]]:
  def load(path: str | os.PathLike) -> tuple[dict, ml_collections.ConfigDict]:
    sd = torch_pth.load_state_dict(path)
    try:
      return convert(sd)
    except ValueError as e:
      raise CheckpointFormatError(f'{os.fspath(path)}: {e}') from None

  load.__doc__ = f'Reads a `.pth` safely (no torch, no code run) and applies `{convert.__name__}`.'
  return load


generator_from_pth = _from_pth(generator_from_state_dict)
discriminator_from_pth = _from_pth(discriminator_from_state_dict)
patch_sampler_from_pth = _from_pth(patch_sampler_from_state_dict)
