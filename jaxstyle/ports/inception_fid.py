"""pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` -> `models.inception.FIDInceptionV3` params.

Read by jaxstyle's own restricted unpickler (`torch_pth`), so neither torch nor code from the file
runs: FID numbers are only comparable with published ones when computed with exactly these weights,
and this is how they get in without trusting a pickle. The key mapping itself is
`models.inception.params_from_state_dict`; this module adds the file, a DataParallel `module.`
prefix, and the path in every error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from jaxstyle.models import inception
from jaxstyle.ports import torch_pth

_MODULE = 'module.'


def _strip_module(sd: Mapping[str, Any]) -> dict[str, Any]:
  """Drops a DataParallel `module.` prefix when every key has it."""
  if sd and all(k.startswith(_MODULE) for k in sd):
    return {k[len(_MODULE) :]: v for k, v in sd.items()}
  return dict(sd)


def is_inception_fid(keys: Iterable[str]) -> bool:
  """Whether state-dict keys look like an Inception3 (lets `port-weights` guess `--kind`)."""
  return any(k.startswith(('Mixed_5b.', _MODULE + 'Mixed_5b.')) for k in keys)


def load_inception_fid(path: str | os.PathLike) -> dict[str, Any]:
  """Reads the .pth (zip or legacy torch.save) into `{'params': ...}` for `FIDInceptionV3.apply`.

  Raises:
    UnsafeCheckpointError: the pickle names a global outside the allow-list (e.g. `os.system`).
    CheckpointFormatError: not a readable torch.save file.
    InceptionWeightError: naming the file and the key, for a missing, unknown or misshapen key.
  """
  path = os.fspath(path)
  sd = _strip_module(torch_pth.load_state_dict(path))
  try:
    return inception.params_from_state_dict(sd)
  except inception.InceptionWeightError as e:
    raise inception.InceptionWeightError(
      f"{path}: {e} (is it pytorch-fid's pt_inception-2015-12-05-6726825d.pth?)"
    ) from None


def expected_shapes() -> dict[tuple[str, ...], tuple[int, ...]]:
  """`FIDInceptionV3` param path -> shape (what a ported directory must hold)."""
  shapes = {}
  for prefix, s in inception.conv_specs().items():
    node = tuple(prefix.split('.'))
    shapes[(*node, 'conv', 'kernel')] = (*s.kernel, s.cin, s.cout)
    for leaf in ('scale', 'bias', 'mean', 'var'):
      shapes[(*node, 'bn', leaf)] = (s.cout,)
  return shapes


def check_params(params: Mapping[str, Any], where: str) -> None:
  """Checks an unwrapped param tree against `expected_shapes`; the error names `where` and the leaf.

  Raises:
    InceptionWeightError: a missing, unknown or misshapen leaf.
  """
  flat: dict[tuple[str, ...], Any] = {}

  def walk(node: Any, path: tuple[str, ...]) -> None:
    if isinstance(node, Mapping):
      for k, v in node.items():
        walk(v, (*path, str(k)))
    else:
      flat[path] = node

  walk(params, ())
  want = expected_shapes()
  optional = {
    ('fc', 'kernel'): (inception.FEATURE_DIM, inception.NUM_CLASSES),
    ('fc', 'bias'): (inception.NUM_CLASSES,),
  }
  if any(path in flat for path in optional):  # the Inception Score's classifier: both or neither
    want = {**want, **optional}
  for path, shape in want.items():
    if path not in flat:
      raise inception.InceptionWeightError(
        f'{where}: missing {"/".join(path)} in the Inception params'
      )
    got = tuple(np.shape(flat[path]))
    if got != shape:
      raise inception.InceptionWeightError(
        f'{where}: {"/".join(path)} has shape {got}, expected {shape}'
      )
  unknown = sorted(set(flat) - set(want))
  if unknown:
    raise inception.InceptionWeightError(
      f'{where}: unknown param {"/".join(unknown[0])} ({len(unknown)} unknown) in the Inception params'
    )
