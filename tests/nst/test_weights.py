"""VGG19 weight files: checksum verification with its sidecar, and format detection from content.

The published constants are patched to those of small temp files, so nothing needs the real 80 MB
Keras or 548 MB torchvision file and nothing downloads (the download test reads a file:// URL).
"""

import hashlib
import json
import logging
import os
import pathlib
import shutil

import h5py
import numpy as np
import pytest
from helpers import FIXTURES

from jaxstyle.errors import UserError
from jaxstyle.models.vgg import WeightFileError
from jaxstyle.nst import weights
from jaxstyle.ports import keras_h5, torchvision_vgg, weight_files

FAKE = {'block1_conv1': {'kernel': np.ones((3, 3, 3, 2), np.float32)}}


def _tiny_h5(path):
  with h5py.File(path, 'w') as f:
    f.attrs['layer_names'] = np.array([b'block1_conv1'])
  return path


@pytest.fixture
def official_keras(tmp_path, monkeypatch):
  """A small HDF5 file under the official Keras name, with the module's constants made its own."""
  (tmp_path / 'cache').mkdir()
  path = _tiny_h5(tmp_path / 'cache' / weights.KERAS_FILE)
  data = path.read_bytes()
  monkeypatch.setattr(weights, 'KERAS_MD5', hashlib.md5(data).hexdigest())
  monkeypatch.setattr(weights, 'KERAS_BYTES', len(data))
  return path


@pytest.fixture
def hashes(monkeypatch):
  """Counts whole-file hashes (the expensive read the sidecar exists to avoid)."""
  calls = []
  real = weights.file_digest
  monkeypatch.setattr(weights, 'file_digest', lambda p, a: calls.append(p) or real(p, a))
  return calls


@pytest.fixture
def loaders(monkeypatch):
  """Replaces both loaders by spies, so format routing is tested without full VGG19 files."""
  calls = []
  monkeypatch.setattr(keras_h5, 'load_vgg19', lambda p: calls.append(('keras', p)) or FAKE)
  monkeypatch.setattr(
    torchvision_vgg, 'load_vgg19', lambda p: calls.append(('torchvision', p)) or FAKE
  )
  return calls


#### Checksums


def test_wrong_size_names_expected_and_actual(official_keras, monkeypatch, hashes):
  monkeypatch.setattr(weights, 'KERAS_BYTES', 80_134_624)
  size = official_keras.stat().st_size
  with pytest.raises(weights.WeightChecksumError) as e:
    weights.verify(official_keras)
  msg = str(e.value)
  assert str(official_keras) in msg and '80,134,624 bytes' in msg and f'{size:,} bytes' in msg
  assert 'Delete it and re-download' in msg and '--vgg19' in msg
  assert hashes == []  # the size alone decided: no 80 MB read
  assert isinstance(e.value, UserError)


def test_wrong_hash_same_size(official_keras, monkeypatch):
  monkeypatch.setattr(weights, 'KERAS_MD5', '0' * 32)
  actual = hashlib.md5(official_keras.read_bytes()).hexdigest()
  with pytest.raises(weights.WeightChecksumError, match=f'MD5 is {actual}, expected {"0" * 32}'):
    weights.verify(official_keras)
  assert not os.path.exists(weights.sidecar_path(str(official_keras)))


def test_good_file_is_hashed_once_then_remembered(official_keras, hashes):
  assert weights.verify(official_keras) is True
  side = json.loads(pathlib.Path(weights.sidecar_path(str(official_keras))).read_text())
  st = official_keras.stat()
  assert side == {
    'size': st.st_size,
    'mtime_ns': st.st_mtime_ns,
    'algo': 'md5',
    'digest': weights.KERAS_MD5,
  }
  assert weights.verify(official_keras) is True
  assert len(hashes) == 1  # the second use trusted the sidecar


def test_changed_file_is_hashed_again(official_keras, hashes):
  weights.verify(official_keras)
  st = official_keras.stat()
  os.utime(official_keras, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched: stale
  weights.verify(official_keras)
  assert len(hashes) == 2
  data = bytearray(official_keras.read_bytes())  # same size, other bytes: the re-hash catches it
  data[-1] ^= 0xFF
  official_keras.write_bytes(bytes(data))
  with pytest.raises(weights.WeightChecksumError, match='MD5'):
    weights.verify(official_keras)
  assert len(hashes) == 3


def test_unwritable_sidecar_still_verifies(official_keras, monkeypatch, hashes, caplog):
  def read_only(*a, **k):
    raise PermissionError(13, 'Permission denied')

  monkeypatch.setattr(weight_files.tempfile, 'mkstemp', read_only)  # where the sidecar is written
  with caplog.at_level(logging.INFO, logger=weights.__name__):
    assert weights.verify(official_keras) and weights.verify(official_keras)
  assert len(hashes) == 2 and 'hashed again' in caplog.text
  assert sorted(os.listdir(official_keras.parent)) == [weights.KERAS_FILE]


def test_torchvision_name_checks_the_sha256_prefix(tmp_path, monkeypatch, hashes):
  path = tmp_path / weights.TORCHVISION_FILE
  shutil.copy(FIXTURES / 'vgg19_block1.pth', path)
  with pytest.raises(
    weights.WeightChecksumError, match=r'SHA256 is [0-9a-f]{64}, expected dcbb9e9d'
  ):
    weights.verify(path)
  sha = hashlib.sha256(path.read_bytes()).hexdigest()
  monkeypatch.setattr(weights, 'TORCHVISION_SHA256_PREFIX', sha[:8])
  assert weights.verify(path) and weights.verify(path) and len(hashes) == 2  # 1 failed + 1 good


def test_other_names_are_not_checksummed(tmp_path, hashes):
  path = _tiny_h5(tmp_path / 'my_vgg19.h5')
  assert weights.verify(path) is False and hashes == []


def test_download_records_the_hash(tmp_path, monkeypatch, hashes):
  src = _tiny_h5(tmp_path / 'src.h5')
  monkeypatch.setattr(weights, 'KERAS_MD5', hashlib.md5(src.read_bytes()).hexdigest())
  monkeypatch.setattr(weights, 'KERAS_BYTES', src.stat().st_size)
  dest = tmp_path / 'cache' / weights.KERAS_FILE
  weights.download(src.as_uri(), str(dest), md5=weights.KERAS_MD5, progress=False)
  assert weights.verify(dest) and hashes == []  # hashed while downloading, not again


def test_cached_file_is_verified_before_loading(official_keras, monkeypatch, loaders):
  cache = official_keras.parent
  params, prep = weights.get_vgg19('keras', cache_dir=cache, download=False)
  assert loaders == [('keras', str(official_keras))] and prep.source == 'keras'
  monkeypatch.setattr(weights, 'KERAS_BYTES', 1)
  with pytest.raises(weights.WeightChecksumError, match='size'):
    weights.get_vgg19('keras', cache_dir=cache, download=False)
  assert len(loaders) == 1


#### Format detection


def test_pth_content_with_keras_source_loads_as_torchvision(tmp_path, loaders, caplog):
  path = tmp_path / 'weights.pth'  # not an official name: format-checked only
  shutil.copy(FIXTURES / 'vgg19_block1.pth', path)
  with caplog.at_level(logging.WARNING, logger=weights.__name__):
    params, prep = weights.get_vgg19('keras', path=path)
  assert loaders == [('torchvision', str(path))] and params is FAKE
  assert prep is weights.PREPROCESSING['torchvision']
  assert 'torchvision loader and preprocessing' in caplog.text and "'keras'" in caplog.text


def test_h5_content_with_torchvision_source_loads_as_keras(tmp_path, loaders):
  path = _tiny_h5(tmp_path / 'vgg.weights')  # the extension plays no part
  _, prep = weights.get_vgg19('torchvision', path=path)
  assert loaders == [('keras', str(path))] and prep.source == 'keras'


def test_real_pth_through_the_real_loader(tmp_path):
  """Unpatched loaders: the .pth reaches the torchvision port (block 1 only, so it names the gap)."""
  path = tmp_path / 'block1.pth'
  shutil.copy(FIXTURES / 'vgg19_block1.pth', path)
  with pytest.raises(WeightFileError, match=r'missing features\.5\.weight'):
    weights.get_vgg19('keras', path=path)


@pytest.mark.parametrize(
  'content,match',
  [
    (b'hello, not weights\n' * 40, 'neither|not a VGG19 weight file'),
    (b'', 'is empty'),
  ],
)
def test_garbage_file_is_a_user_error(tmp_path, loaders, content, match):
  path = tmp_path / 'vgg19.bin'
  path.write_bytes(content)
  with pytest.raises(WeightFileError, match=match) as e:
    weights.get_vgg19('keras', path=path)
  assert str(path) in str(e.value) and isinstance(e.value, UserError) and loaders == []
  if content:
    assert 'HDF5' in str(e.value) and 'PyTorch' in str(e.value)


def test_missing_file_and_unknown_source(tmp_path):
  with pytest.raises(WeightFileError, match='does not exist'):
    weights.get_vgg19('keras', path=tmp_path / 'absent.h5')
  with pytest.raises(UserError, match='unknown VGG19 weight source'):
    weights.get_vgg19('caffe', path=tmp_path / 'absent.h5')


def test_hdf5_signature_after_a_user_block(tmp_path):
  path = tmp_path / 'ub.h5'
  with h5py.File(path, 'w', userblock_size=512) as f:
    f.attrs['x'] = 1
  assert keras_h5.is_hdf5(path) and weights.detect_format(path) == 'keras'
  assert weights.detect_format(FIXTURES / 'vgg19_block1.pth') == 'torchvision'
