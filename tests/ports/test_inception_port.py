"""Torch-free port of pytorch-fid's Inception .pth: both torch.save formats, port-weights, unsafe files.

The .pth files are written once per module from tests/fixtures/make_inception_pth.py's
`state_dict` by torch_save_writer (the real key layout, order and format, with the seeded random weights of inception_fid_ref.npz;
checked against real torch by running that script). Nothing here needs torch or the network.
"""

import os
import zipfile

import numpy as np
import pytest
from helpers import FIXTURES
from make_inception_pth import assert_params_equal, state_dict
from torch_save_writer import write_state_dict

from jaxstyle import checkpoint, cli
from jaxstyle.fid import weights as fid_weights
from jaxstyle.models.inception import InceptionWeightError
from jaxstyle.ports import inception_fid, torch_pth
from jaxstyle.ports.torch_pth import UnsafeCheckpointError


@pytest.fixture(scope='module')
def pths(tmp_path_factory):
  """{fmt: path} of the ~96 MB stand-in in both formats, and its state dict."""
  folder = tmp_path_factory.mktemp('inception_pth')
  paths = {fmt: folder / f'inception_{fmt}.pth' for fmt in ('zip', 'legacy')}
  sd = state_dict()
  for fmt, path in paths.items():
    write_state_dict(path, sd, fmt)
  return paths, sd


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_both_formats_load_exactly(pths, fmt):
  paths, sd = pths
  raw = torch_pth.load_state_dict(paths[fmt])
  assert list(raw) == list(sd)  # order, fc and the int64 counters included
  assert raw['fc.weight'].shape == (1008, 2048)
  assert raw['Conv2d_1a_3x3.bn.num_batches_tracked'].dtype == np.int64
  assert raw['Conv2d_1a_3x3.bn.num_batches_tracked'].shape == ()
  variables = inception_fid.load_inception_fid(paths[fmt])
  assert list(variables) == ['params']
  assert_params_equal(variables['params'], sd)


def test_kind_detection_and_module_prefix(pths, monkeypatch):
  paths, sd = pths
  assert inception_fid.is_inception_fid(sd)
  assert inception_fid.is_inception_fid(['module.' + k for k in sd])
  assert not inception_fid.is_inception_fid(['features.0.weight', 'model.1.conv_block.1.weight'])
  prefixed = {'module.' + k: v for k, v in sd.items()}  # a DataParallel save
  monkeypatch.setattr(torch_pth, 'load_state_dict', lambda path: prefixed)
  assert_params_equal(inception_fid.load_inception_fid('dp.pth')['params'], sd)


def test_port_weights_round_trip_guesses_the_kind(pths, tmp_path, capsys):
  paths, sd = pths
  dst = tmp_path / 'inception'
  assert cli.main(['port-weights', str(paths['legacy']), '-o', str(dst)]) == 0
  assert 'inception-fid' in capsys.readouterr().out
  params, meta = checkpoint.load_params(str(dst))
  assert meta['kind'] == 'inception-fid' and meta['model_cfg'] == {'net': 'inception_fid'}
  assert meta['source'] == os.path.abspath(paths['legacy'])
  assert_params_equal(params, sd)
  inception_fid.check_params(params, str(dst))


def test_wrong_network_names_the_file(tmp_path, capsys):
  src = str(FIXTURES / 'vgg19_block1.pth')
  assert cli.main(['port-weights', src, '-o', str(tmp_path / 'X'), '--kind', 'inception-fid']) == 2
  err = capsys.readouterr().err
  assert src in err and 'unknown key' in err and 'pt_inception' in err
  with pytest.raises(InceptionWeightError, match='block1_conv1|missing'):
    inception_fid.check_params({'block1_conv1': {'kernel': np.zeros((3, 3, 3, 64))}}, 'vgg')


def test_hostile_pickle_naming_os_system_is_refused(tmp_path, capsys):
  marker = tmp_path / 'pwned'
  cmd = f'touch {marker}'.encode()
  payload = b'\x80\x02cos\nsystem\nX' + len(cmd).to_bytes(4, 'little') + cmd + b'\x85R.'
  evil = tmp_path / 'pt_inception_evil.pth'
  with zipfile.ZipFile(evil, 'w') as zf:
    zf.writestr('archive/data.pkl', payload)
    zf.writestr('archive/version', '3\n')
  with pytest.raises(UnsafeCheckpointError, match='os.system'):
    inception_fid.load_inception_fid(evil)
  with pytest.raises(UnsafeCheckpointError, match='os.system'):
    fid_weights.load_params(path=evil)
  assert (
    cli.main(['port-weights', str(evil), '-o', str(tmp_path / 'E'), '--kind', 'inception-fid']) == 2
  )
  assert 'os.system' in capsys.readouterr().err
  assert not marker.exists() and not (tmp_path / 'E').exists()
