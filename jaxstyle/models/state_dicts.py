"""Checking a PyTorch state dict against the keys and shapes a network port expects.

Shared by the ports of the FID Inception and the fast-style net (`params_from_state_dict`): a
wrong network, a truncated file or a transposed layer must fail naming the key, not produce
wrong numbers later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def checked_arrays(
  sd: Mapping[str, Any],
  expected: Mapping[str, tuple[int, ...]],
  *,
  skip: Callable[[str], bool],
  error: type[Exception],
  network: str,
  shape_hint: Callable[[str], str] = lambda key: '',
) -> dict[str, np.ndarray]:
  """The `expected` keys of `sd` as float32 arrays of exactly their expected shapes.

  Keys for which `skip(key)` is true may be present and are ignored (e.g. BatchNorm counters);
  any other unknown key, a missing key or a wrong shape raises `error` naming the (first) key.
  `network` describes the expected layout in the unknown-key message.
  """
  unknown = sorted(k for k in sd if k not in expected and not skip(k))
  if unknown:
    raise error(
      f'unknown key {unknown[0]!r} in the state dict ({len(unknown)} unknown); '
      f'expected the keys of {network}'
    )
  missing = [k for k in expected if k not in sd]
  if missing:
    raise error(f'missing key {missing[0]!r} in the state dict ({len(missing)} missing)')
  arrays = {}
  for key, shape in expected.items():
    a = np.asarray(sd[key], dtype=np.float32)
    if a.shape != tuple(shape):
      raise error(f'key {key!r} has shape {a.shape}, expected {tuple(shape)}{shape_hint(key)}')
    arrays[key] = a
  return arrays
