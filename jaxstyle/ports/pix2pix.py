"""junyanz pix2pix generators (`UnetGenerator`, `--norm batch`) → jaxstyle variables.

The reference's published pix2pix files (`latest_net_G.pth`: facades_label2photo, edges2shoes, ...)
are U-Net-256 state_dicts: nested `UnetSkipConnectionBlock`s whose keys spell the depth
(`model.model.1.model.3.model.1.weight`), conv weights, batch-norm affine weights and their running
statistics. We derive (ngf, depth, channels) from the keys and shapes, check the key set is exactly
what that net has (torch >= 0.4.1 adds `num_batches_tracked`, which we drop: our batch norm's
momentum is fixed), and rename onto `models.unet256.UnetGenerator`'s modules through its
`torch_names` map. The result is Flax variables `{'params', 'batch_stats'}`: the running statistics
are state, used by the reference's `--eval` inference mode and by resumed training.
"""

from __future__ import annotations

import os
import re
from typing import Any

import ml_collections
import numpy as np

from jaxstyle import networks
from jaxstyle.models import unet256
from jaxstyle.ports import torch_pth
from jaxstyle.ports.torch_pickle import CheckpointFormatError

__all__ = ['generator_from_pth', 'generator_from_state_dict', 'is_pix2pix_generator']

_DEPTH_RE = re.compile(r'^model\.model\.(1\.model\.)?((3\.model\.)*)')


def is_pix2pix_generator(keys: Any) -> bool:
  """The U-Net's outermost conv key with batch-norm keys: what `port-weights` guesses by."""
  keys = set(keys)
  return 'model.model.0.weight' in keys and any(k.endswith('.running_mean') for k in keys)


def _layout(num_downs: int, ngf: int, in_ch: int, out_ch: int) -> dict[str, tuple[int, ...]]:
  """Every state-dict key of that `UnetGenerator` -> its torch shape."""
  w = unet256.widths(num_downs, ngf)
  outs = [out_ch] + w[:-1]
  ins = [in_ch] + w[:-1]
  names = unet256.torch_names(num_downs)
  out: dict[str, tuple[int, ...]] = {}
  for d in range(num_downs):
    out[names[f'down_{d}'] + '.weight'] = (w[d], ins[d], 4, 4)
    up_in = w[d] if d == num_downs - 1 else 2 * w[d]
    out[names[f'up_{d}'] + '.weight'] = (up_in, outs[d], 4, 4)  # ConvTranspose2d: (in, out, ...)
  out[names['up_0'] + '.bias'] = (out_ch,)
  for name, prefix in names.items():
    if 'norm' in name:
      c = w[int(name.rsplit('_', 1)[1])] if name.startswith('down') else outs[int(name[8:])]
      for leaf in ('weight', 'bias', 'running_mean', 'running_var'):
        out[f'{prefix}.{leaf}'] = (c,)
  return out


def _clean(sd: dict[str, Any]) -> dict[str, np.ndarray]:
  out = {}
  for key, value in sd.items():
    key = key[len('module.') :] if key.startswith('module.') else key
    if not key.endswith('.num_batches_tracked'):
      out[key] = np.asarray(value)
  return out


def _check(sd: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]], what: str) -> None:
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
  for title, items in (('missing', missing), ('unexpected', unexpected), ('mis-shaped', shapes)):
    if items:
      more = ' ...' if len(items) > 20 else ''
      lines.append(f'  {title} keys ({len(items)}): ' + ', '.join(items[:20]) + more)
  if not any(k.endswith('.running_mean') for k in sd):
    lines.append('  no batch-norm statistics: only --norm batch U-Nets (pix2pix) are supported')
  raise ValueError('\n'.join(lines))


def generator_from_state_dict(sd: dict[str, Any]) -> tuple[dict, ml_collections.ConfigDict]:
  """A `UnetGenerator` state_dict → ({'params', 'batch_stats'}, model_cfg)."""
  sd = _clean(sd)
  first = sd.get('model.model.0.weight')
  if first is None or first.ndim != 4:
    raise ValueError(
      "not a junyanz UnetGenerator state_dict: no 4-D 'model.model.0.weight' (outermost conv); "
      f'first keys: {sorted(sd)[:8]}'
    )
  ngf, in_ch = (int(v) for v in first.shape[:2])
  # The innermost block's down conv is the deepest `.1.weight`; its nesting gives the depth.
  depths = [
    len(m.group(2)) // len('3.model.') + 1 for k in sd if (m := _DEPTH_RE.match(k)) and m.group(1)
  ]
  num_downs = max(depths, default=0) + 1
  head = sd.get('model.model.3.weight')
  out_ch = int(head.shape[1]) if head is not None and head.ndim == 4 else 3
  what = f'UnetGenerator (ngf={ngf}, num_downs={num_downs}, --norm batch)'
  if num_downs < 5:
    raise ValueError(f'state_dict nests {num_downs} U-Net levels; a {what} has at least 5')
  _check(sd, _layout(num_downs, ngf, in_ch, out_ch), what)

  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}
  for name, prefix in unet256.torch_names(num_downs).items():
    if 'norm' in name:
      params[name] = {
        'scale': sd[prefix + '.weight'].astype(np.float32),
        'bias': sd[prefix + '.bias'].astype(np.float32),
      }
      stats[name] = {
        'mean': sd[prefix + '.running_mean'].astype(np.float32),
        'var': sd[prefix + '.running_var'].astype(np.float32),
      }
    else:  # Conv2d (O, I, kH, kW) and ConvTranspose2d (I, O, kH, kW): both transpose(2, 3, 1, 0)
      kernel = np.ascontiguousarray(sd[prefix + '.weight'].transpose(2, 3, 1, 0), np.float32)
      params[name] = {'kernel': kernel}
      if prefix + '.bias' in sd:
        params[name]['bias'] = sd[prefix + '.bias'].astype(np.float32)
  cfg = networks.pix2pix_generator(num_downs, ngf, in_ch, out_ch)
  return {'params': params, 'batch_stats': stats}, cfg


def generator_from_pth(path: str | os.PathLike) -> tuple[dict, ml_collections.ConfigDict]:
  """Reads e.g. a published `facades_label2photo.pth` (safe, torch-free)."""
  sd = torch_pth.load_state_dict(path)
  try:
    return generator_from_state_dict(sd)
  except ValueError as e:
    raise CheckpointFormatError(f'{os.fspath(path)}: {e}') from None


def make_generator(cfg: Any) -> unet256.UnetGenerator:
  """The Flax module for a ported `model_cfg`."""
  return unet256.UnetGenerator(
    num_downs=int(cfg['num_downs']),
    filters=int(cfg['gen_filters']),
    out_channels=int(cfg['out_channels']),
    use_dropout=bool(cfg.get('use_dropout', True)),
  )
