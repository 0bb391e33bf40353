"""clean-fid's Inception (`inception-2015-12-05.pt`, NVIDIA's TorchScript) -> `FIDInceptionV3` params.

The archive is the same 2015-12-05 TF graph as pytorch-fid's `.pth`, converted by NVIDIA for
StyleGAN2-ADA: a `layers` Sequential of TF-named blocks (`conv` .. `conv_4`, `mixed` .. `mixed_10`)
and an `output` Linear (1008-way). Each conv layer holds `weight` (OIHW) and its batch norm's
`beta`, `mean`, `var` (TF's batch norm has no scale: 1), eps 0.001 as ours. The blocks are
pytorch-fid's FID blocks one for one (same branches, same concatenation order, the max pool in the
last block), so the tensors map onto our tree key by key (`clean_to_pytorch_fid`). The E blocks
name their convs flat (`tower_mixed_conv`) where the others nest them (`tower.conv_1`); both are
accepted by joining the path inside a block with '_'.

Read by `torchscript.load_tensors` (its code is never run); the network then runs in JAX.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jaxstyle.models import inception
from jaxstyle.ports import torchscript

STEM = {
  'conv': 'Conv2d_1a_3x3',
  'conv_1': 'Conv2d_2a_3x3',
  'conv_2': 'Conv2d_2b_3x3',
  'conv_3': 'Conv2d_3b_1x1',
  'conv_4': 'Conv2d_4a_3x3',
}
BLOCKS = {f'mixed{"_" + str(i) if i else ""}': name for i, name in enumerate(inception.MIXED)}
# Per block kind: the TF conv (its path inside the block joined by '_') -> pytorch-fid's branch.
BRANCHES = {
  'A': {
    'conv': 'branch1x1',
    'tower_conv': 'branch5x5_1',
    'tower_conv_1': 'branch5x5_2',
    'tower_1_conv': 'branch3x3dbl_1',
    'tower_1_conv_1': 'branch3x3dbl_2',
    'tower_1_conv_2': 'branch3x3dbl_3',
    'tower_2_conv': 'branch_pool',
  },
  'B': {
    'conv': 'branch3x3',
    'tower_conv': 'branch3x3dbl_1',
    'tower_conv_1': 'branch3x3dbl_2',
    'tower_conv_2': 'branch3x3dbl_3',
  },
  'C': {
    'conv': 'branch1x1',
    'tower_conv': 'branch7x7_1',
    'tower_conv_1': 'branch7x7_2',
    'tower_conv_2': 'branch7x7_3',
    'tower_1_conv': 'branch7x7dbl_1',
    'tower_1_conv_1': 'branch7x7dbl_2',
    'tower_1_conv_2': 'branch7x7dbl_3',
    'tower_1_conv_3': 'branch7x7dbl_4',
    'tower_1_conv_4': 'branch7x7dbl_5',
    'tower_2_conv': 'branch_pool',
  },
  'D': {
    'tower_conv': 'branch3x3_1',
    'tower_conv_1': 'branch3x3_2',
    'tower_1_conv': 'branch7x7x3_1',
    'tower_1_conv_1': 'branch7x7x3_2',
    'tower_1_conv_2': 'branch7x7x3_3',
    'tower_1_conv_3': 'branch7x7x3_4',
  },
  'E': {
    'conv': 'branch1x1',
    'tower_conv': 'branch3x3_1',
    'tower_mixed_conv': 'branch3x3_2a',
    'tower_mixed_conv_1': 'branch3x3_2b',
    'tower_1_conv': 'branch3x3dbl_1',
    'tower_1_conv_1': 'branch3x3dbl_2',
    'tower_1_mixed_conv': 'branch3x3dbl_3a',
    'tower_1_mixed_conv_1': 'branch3x3dbl_3b',
    'tower_2_conv': 'branch_pool',
  },
}
_BN = {'beta': 'bias', 'mean': 'running_mean', 'var': 'running_var'}
ARCHIVE_FILE = 'inception-2015-12-05.pt'


def _conv_prefix(layer: str) -> str | None:
  """`layers.mixed_9.tower.mixed.conv` -> `Mixed_7b.branch3x3_2a` (None if not a known conv)."""
  parts = layer.split('.')
  if parts[0] != 'layers' or len(parts) < 2:
    return None
  if len(parts) == 2:
    return STEM.get(parts[1])
  block = BLOCKS.get(parts[1])
  if block is None:
    return None
  kind = inception.MIXED[block][0][0]  # E_1 / E_2 -> E
  branch = BRANCHES[kind].get('_'.join(parts[2:]))
  return f'{block}.{branch}' if branch else None


def clean_to_pytorch_fid(tensors: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
  """The archive's tensors under pytorch-fid's state-dict keys (BN scale 1 added); unknown tensors
  fail naming the key, so a different network never turns into wrong FIDs."""
  sd: dict[str, np.ndarray] = {}
  for key, value in tensors.items():
    if key in ('output.weight', 'output.bias'):
      sd['fc.' + key.split('.')[1]] = value
      continue
    layer, _, leaf = key.rpartition('.')
    prefix = _conv_prefix(layer)
    if prefix is None or leaf not in ('weight', *_BN):
      raise inception.InceptionWeightError(
        f"{where}: unknown tensor {key!r} (is it clean-fid's {ARCHIVE_FILE}?)"
      )
    if leaf == 'weight':
      sd[f'{prefix}.conv.weight'] = value
      sd[f'{prefix}.bn.weight'] = np.ones(value.shape[0], np.float32)
    else:
      sd[f'{prefix}.bn.{_BN[leaf]}'] = value
  return sd


def load_inception_cleanfid(path: str | os.PathLike) -> dict[str, Any]:
  """`{'params': ...}` (with the 1008-way `fc`) from clean-fid's TorchScript archive.

  Raises:
    UnsafeCheckpointError: the archive's data.pkl names a global outside the allow-list.
    CheckpointFormatError: not a readable TorchScript archive.
    InceptionWeightError: a missing, unknown or misshapen tensor (naming the file and key).
  """
  path = os.fspath(path)
  sd = clean_to_pytorch_fid(torchscript.load_tensors(path), path)
  try:
    return inception.params_from_state_dict(sd)
  except inception.InceptionWeightError as e:
    raise inception.InceptionWeightError(
      f"{path}: {e} (is it clean-fid's {ARCHIVE_FILE}?)"
    ) from None
