"""Issue #28: clean-fid's TorchScript Inception read without torch and without running its code.

`torchscript_tiny.pt` was written by `torch.jit.save` (tests/fixtures/make_torchscript_fixture.py)
in the real archive's layout; its tensors, as torch's own `state_dict()` gave them, are in
torchscript_tiny_ref.npz. The full-size key mapping is tested on seeded random arrays under the
archive's names, against pytorch-fid's mapping of the same arrays.
"""

import os
import pickle
import zipfile

import numpy as np
import pytest
from helpers import FIXTURES

from jaxstyle.fid import weights as fid_weights
from jaxstyle.models import inception
from jaxstyle.ports import inception_cleanfid, torch_pth, torchscript
from jaxstyle.ports.torch_pickle import CheckpointFormatError, UnsafeCheckpointError

TINY = FIXTURES / 'torchscript_tiny.pt'


def test_reads_the_tensors_torch_wrote():
  got = torchscript.load_tensors(TINY)
  with np.load(FIXTURES / 'torchscript_tiny_ref.npz') as ref:
    assert sorted(got) == sorted(ref.files)
    for key in ref.files:
      np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
      assert got[key].dtype == ref[key].dtype
  assert torchscript.is_torchscript(TINY)
  assert 'layers.mixed.tower.conv_1.weight' in got and 'layers.mixed_9.tower_mixed_conv.var' in got


def test_the_state_dict_reader_refuses_a_torchscript_archive():
  """The .pth reader's allow-list has no `__torch__` classes: such files go through ours."""
  with pytest.raises(UnsafeCheckpointError, match='__torch__'):
    torch_pth.load_state_dict(TINY)


def _archive(path, data_pkl: bytes, code: bool = True) -> str:
  with zipfile.ZipFile(path, 'w') as zf:
    zf.writestr('archive/data.pkl', data_pkl)
    zf.writestr('archive/constants.pkl', pickle.dumps((), protocol=2))
    if code:
      zf.writestr('archive/code/__torch__.py', 'import os\nos.system("touch pwned")\n')
  return str(path)


class _Reduce:
  def __init__(self, fn, args):
    self.fn, self.args = fn, args

  def __reduce__(self):
    return self.fn, self.args


def test_malicious_archives_are_refused_and_nothing_runs(tmp_path):
  marker = tmp_path / 'pwned'
  evil = pickle.dumps(_Reduce(os.system, (f'touch {marker}',)), protocol=2)
  with pytest.raises(UnsafeCheckpointError, match='system'):
    torchscript.load_tensors(_archive(tmp_path / 'evil.pt', evil))
  assert not marker.exists()
  # A `__torch__` class is only ever our inert record: state that is not a dict of attributes,
  # or constructor arguments, are refused.
  class_then = b'\x80\x02c__torch__\nM\n)\x81'
  bad_state = class_then + b'K\x01b.'  # BUILD with an int
  with pytest.raises(CheckpointFormatError, match='state'):
    torchscript.load_tensors(_archive(tmp_path / 'state.pt', bad_state))
  with_args = b'\x80\x02c__torch__\nM\nK\x01\x85\x81.'  # NEWOBJ(cls, (1,))
  with pytest.raises(CheckpointFormatError, match='arguments'):
    torchscript.load_tensors(_archive(tmp_path / 'args.pt', with_args))
  empty = class_then + b'}b.'
  with pytest.raises(CheckpointFormatError, match='no tensors'):
    torchscript.load_tensors(_archive(tmp_path / 'empty.pt', empty))
  assert not (tmp_path / 'pwned').exists() and not os.path.exists('pwned')


def _cleanfid_layout():
  """(archive key, shape) for every tensor of the real archive, from the mapping tables."""
  by_conv = {}
  for ts, ours in inception_cleanfid.STEM.items():
    by_conv[f'layers.{ts}'] = ours
  for ts_block, block in inception_cleanfid.BLOCKS.items():
    kind = inception.MIXED[block][0][0]
    for ts, branch in inception_cleanfid.BRANCHES[kind].items():
      # nested in the A-D blocks (`tower_1.conv_2`), flat in E (`tower_1_mixed_conv`)
      path = ts if kind == 'E' else ts.replace('tower_conv', 'tower.conv')
      path = path.replace('tower_1_conv', 'tower_1.conv').replace('tower_2_conv', 'tower_2.conv')
      by_conv[f'layers.{ts_block}.{path}'] = f'{block}.{branch}'
  specs = inception.conv_specs()
  layout = []
  for key, ours in by_conv.items():
    s = specs[ours]
    layout.append((f'{key}.weight', (s.cout, s.cin, *s.kernel)))
    layout += [(f'{key}.{leaf}', (s.cout,)) for leaf in ('beta', 'mean', 'var')]
  return layout + [('output.weight', (1008, 2048)), ('output.bias', (1008,))], by_conv


def test_full_size_mapping_equals_pytorch_fid_mapping():
  layout, by_conv = _cleanfid_layout()
  assert len(by_conv) == 94 and len(set(by_conv.values())) == 94  # every conv, once
  rng = np.random.RandomState(4)
  tensors = {k: rng.standard_normal(shape).astype(np.float32) for k, shape in layout}
  got = inception_cleanfid.clean_to_pytorch_fid(tensors, 'x.pt')
  want = {}
  for key, ours in by_conv.items():
    want[f'{ours}.conv.weight'] = tensors[f'{key}.weight']
    want[f'{ours}.bn.weight'] = np.ones(tensors[f'{key}.beta'].shape, np.float32)
    for leaf, theirs in (('beta', 'bias'), ('mean', 'running_mean'), ('var', 'running_var')):
      want[f'{ours}.bn.{theirs}'] = tensors[f'{key}.{leaf}']
  want['fc.weight'], want['fc.bias'] = tensors['output.weight'], tensors['output.bias']
  assert sorted(got) == sorted(want)
  for k in want:
    np.testing.assert_array_equal(got[k], want[k], err_msg=k)
  params = inception.params_from_state_dict(got)  # shapes checked key by key there
  assert inception.has_logits(params)

  assert (
    inception_cleanfid._conv_prefix('layers.mixed_4.tower_1_conv_3') == 'Mixed_6b.branch7x7dbl_4'
  )
  assert inception_cleanfid._conv_prefix('layers.mixed_9.tower.mixed.conv_1') == (
    'Mixed_7b.branch3x3_2b'
  )


def test_unknown_tensors_name_the_key():
  with pytest.raises(inception.InceptionWeightError, match='layers.mixed_11.conv.weight'):
    inception_cleanfid.clean_to_pytorch_fid({'layers.mixed_11.conv.weight': np.zeros(1)}, 'x.pt')


def test_load_params_routes_torchscript_and_checks_the_official_name(tmp_path, monkeypatch):
  """A TorchScript file goes to the clean-fid reader (the tiny one fails its key check, naming
  the file); under the official name it must match the pinned SHA-256 first."""
  with pytest.raises(inception.InceptionWeightError, match='torchscript_tiny.pt'):
    fid_weights.load_params(TINY)
  official = tmp_path / fid_weights.CLEAN_FILE
  official.write_bytes(TINY.read_bytes())
  with pytest.raises(fid_weights.WeightChecksumError, match='f58cb9b6'):
    fid_weights.load_params(official)
  monkeypatch.setenv('JAXSTYLE_OFFLINE', '1')
  with pytest.raises(fid_weights.InceptionWeightsUnavailable, match='nvlabs'):
    fid_weights.load_params(cache=tmp_path / 'empty', mode='clean')
