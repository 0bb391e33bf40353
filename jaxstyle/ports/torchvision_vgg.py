"""torchvision VGG19 state_dict (`vgg19-dcbb9e9d.pth`, or Caffe conversions in the same layout) -> VGG19 params.

The convs sit at `features.{0,2,5,7,10,12,14,16,19,21,23,25,28,30,32,34}` with OIHW kernels, which become
Flax HWIO by `transpose(2, 3, 1, 0)`. The FC head (`classifier.*`) is ignored: NST only needs the trunk.
The file is read by our torch-free restricted unpickler (`ports.torch_pth`), so it never runs file code.
The weights expect RGB input in [0, 1] normalised with the ImageNet mean/std (see `jaxstyle.nst.weights`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxstyle.models.vgg import LAYER_NAMES, WeightFileError, check_params
from jaxstyle.ports import torch_pth

# torchvision `features` index of each conv, in LAYER_NAMES order.
FEATURE_INDICES: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
_KEY = re.compile(r'^(?:module\.)?features\.(\d+)\.(weight|bias)$')


def is_torch_checkpoint(path: str | os.PathLike) -> bool:
  """True when the file starts like a `torch.save` file: zip (torch >= 1.6), pickle (legacy) or tar.

  Only the first 512 bytes are read. The pre-0.4 tar format counts, so the reader can refuse it with
  its own message rather than the file being called 'not a weight file'.
  """
  with open(path, 'rb') as f:
    head = f.read(512)
  return head.startswith(b'PK\x03\x04') or head[:1] == b'\x80' or head[257:262] == b'ustar'


def from_state_dict(sd: Mapping[str, Any], source: str = 'state_dict') -> dict[str, Any]:
  """Maps a torchvision-layout VGG19 state_dict (numpy/array values) onto VGG19 params.

  Raises:
    WeightFileError: naming `source`, for missing keys, a different network (e.g. VGG16's 13 convs at
      other indices) or wrong shapes.
  """
  found: dict[int, dict[str, Any]] = {}
  for key, value in sd.items():
    m = _KEY.match(key)
    if m:
      found.setdefault(int(m.group(1)), {})[m.group(2)] = value
  conv_idx = sorted(i for i, d in found.items() if np.ndim(d.get('weight')) == 4)
  if conv_idx != list(FEATURE_INDICES):
    missing = [f'features.{i}.weight' for i in FEATURE_INDICES if i not in conv_idx]
    raise WeightFileError(
      f'{source}: has {len(conv_idx)} conv layers at features.{conv_idx}; VGG19 has 16 at '
      f'features.{list(FEATURE_INDICES)}; missing {", ".join(missing) or "none"} '
      '(a VGG16 or non-torchvision file?)'
    )
  params = {}
  for name, idx in zip(LAYER_NAMES, FEATURE_INDICES):
    entry = found[idx]
    if 'bias' not in entry:
      raise WeightFileError(f'{source}: missing features.{idx}.bias')
    kernel = np.asarray(entry['weight'], dtype=np.float32)
    if kernel.ndim != 4:
      raise WeightFileError(f'{source}: features.{idx}.weight has shape {kernel.shape}, want OIHW')
    params[name] = {
      'kernel': kernel.transpose(2, 3, 1, 0),
      'bias': np.asarray(entry['bias'], dtype=np.float32),
    }
  return check_params(params, source)


def load_vgg19(path: str | os.PathLike) -> dict[str, Any]:
  """Loads a torchvision VGG19 `.pth` into VGG19 params (float32 numpy, HWIO).

  Raises:
    WeightFileError: naming `path`, if the file is missing, unreadable, or not a VGG19 state_dict.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise WeightFileError(f'{path}: no such file')
  try:
    sd = torch_pth.load_state_dict(path)
  except torch_pth.UnsafeCheckpointError:
    raise
  except (ValueError, OSError, KeyError, EOFError) as e:
    raise WeightFileError(f'{path}: cannot read PyTorch state_dict ({e})') from e
  return from_state_dict(sd, source=path)
