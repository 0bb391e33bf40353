"""Keras VGG19 notop h5 (`vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`) -> `models.vgg.VGG19` params.

The file is the legacy Keras `save_weights` layout: the root attribute `layer_names` lists the layers, and
each layer group's attribute `weight_names` lists its datasets (`block1_conv1_W_1:0` HWIO kernel,
`block1_conv1_b_1:0` bias). We key on those attributes rather than hard-coded paths so files written by
other Keras versions (`block1_conv1/kernel:0` sub-groups) load too. Kernels are already HWIO: no transpose.
The weights expect BGR, mean-subtracted, 0-255 input (see `jaxstyle.nst.weights`).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import h5py
import numpy as np

from jaxstyle.models.vgg import LAYER_NAMES, WeightFileError, check_params

_KERAS_NAME = 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
_CONV = re.compile(r'^block(\d)_conv(\d)$')
HDF5_SIGNATURE = b'\x89HDF\r\n\x1a\n'


def is_hdf5(path: str | os.PathLike) -> bool:
  """True when the file has the HDF5 superblock signature, at 0 or a user-block offset (512, 1024, ...).

  A cheap content check (a few 8-byte reads), so a `.pth` passed as Keras weights, or a text file, is
  told apart from a damaged `.h5` before h5py reports a generic 'truncated or corrupt'.
  """
  size = os.path.getsize(path)
  with open(path, 'rb') as f:
    offset = 0
    while offset + len(HDF5_SIGNATURE) <= size:
      f.seek(offset)
      if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
        return True
      offset = 512 if offset == 0 else offset * 2
  return False


def _decode(names: Any) -> list[str]:
  return [n.decode('utf8') if isinstance(n, bytes) else str(n) for n in np.atleast_1d(names)]


# Deflate's maximum expansion: a compressed dataset cannot honestly hold more than this per byte.
_MAX_RATIO = 1032


def _check_size(what: str, shape: Any, dtype: np.dtype, limit: int, path: str) -> None:
  """Refuses a declared shape that needs more bytes than the file could hold, before h5py
  allocates it: HDF5 reads unwritten chunks as the fill value, so a few-KB file can declare a
  dataset of terabytes and h5py would allocate all of it."""
  nbytes = math.prod(shape or ()) * dtype.itemsize
  if nbytes > limit:
    raise WeightFileError(
      f'{path}: {what} declares shape {tuple(shape or ())} ({nbytes} bytes), more than the file '
      'could hold: the file is damaged, delete it and re-download'
    )


def _attr(obj: Any, name: str, path: str) -> Any:
  """An attribute's value, its declared size checked against the file first."""
  aid = obj.attrs.get_id(name)
  _check_size(f'attribute {obj.name}@{name}', aid.shape, aid.dtype, os.path.getsize(path), path)
  return obj.attrs[name]


def _read_layer(group: h5py.Group, name: str, path: str) -> dict[str, np.ndarray]:
  """Reads one conv's kernel and bias, telling them apart by rank (Keras orders them kernel, bias)."""
  if 'weight_names' not in group.attrs:
    raise WeightFileError(f'{path}: layer group {name} has no weight_names attribute')
  weights = {}
  size = os.path.getsize(path)
  for wname in _decode(_attr(group, 'weight_names', path)):
    if wname not in group or not isinstance(group[wname], h5py.Dataset):
      raise WeightFileError(
        f'{path}: layer {name} lists weight {wname!r} but the dataset is missing'
      )
    ds = group[wname]
    filtered = ds.id.get_create_plist().get_nfilters() > 0  # gzip, lzf, szip, plugins
    limit = size * (_MAX_RATIO if filtered else 1)
    _check_size(f'dataset {ds.name}', ds.shape, ds.dtype, limit, path)
    value = np.asarray(ds[()], dtype=np.float32)
    leaf = {4: 'kernel', 1: 'bias'}.get(value.ndim)
    if leaf is None or leaf in weights:
      raise WeightFileError(
        f'{path}: layer {name} weight {wname!r} has unexpected shape {value.shape}'
      )
    weights[leaf] = value
  return weights


def load_vgg19(path: str | os.PathLike) -> dict[str, Any]:
  """Loads the Keras notop VGG19 h5 into a params tree for `VGG19` (float32 numpy arrays).

  Raises:
    WeightFileError: naming `path`, if the file is missing, truncated/corrupt, not VGG19 (e.g. the VGG16
      file, which lacks block3_conv4 ... block5_conv4), or has wrong shapes.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise WeightFileError(f'{path}: no such file')
  if not is_hdf5(path):
    raise WeightFileError(
      f'{path}: not an HDF5 file (no HDF5 signature), so not Keras weights: if it is meant to be '
      f'{_KERAS_NAME} it is truncated or corrupt, delete it and re-download; a PyTorch .pth is '
      'read by the torchvision loader'
    )
  try:
    with h5py.File(path, 'r') as f:
      if 'layer_names' not in f.attrs:
        raise WeightFileError(
          f'{path}: no root attribute layer_names; not a Keras save_weights h5 '
          f'(expected {_KERAS_NAME})'
        )
      layer_names = _decode(_attr(f, 'layer_names', path))
      convs = [n for n in layer_names if _CONV.match(n)]
      missing = [n for n in LAYER_NAMES if n not in convs]
      if missing:
        raise WeightFileError(
          f'{path}: has {len(convs)} conv layers, VGG19 has 16; missing {", ".join(missing)}'
          ' (a VGG16 or other network file?)'
        )
      params = {}
      for name in LAYER_NAMES:
        if name not in f:
          raise WeightFileError(f'{path}: layer_names lists {name} but there is no such group')
        params[name] = _read_layer(f[name], name, path)
  except WeightFileError:
    raise
  except (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError) as e:
    raise WeightFileError(
      f'{path}: cannot read HDF5 weights ({e}); the file is truncated or corrupt, delete it and '
      're-download'
    ) from e
  return check_params(params, path)
