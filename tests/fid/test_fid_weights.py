"""FID Inception weights: cache, checksum by name, offline messages, ported directories, and parity.

Never touches the network: tests/conftest.py sets JAXSTYLE_OFFLINE=1, and the one "download" reads a
file:// URL with the module's constants patched to a stand-in .pth (the real layout and legacy
format with the seeded random weights of inception_fid_ref.npz, see make_inception_pth.py).
"""

import hashlib
import json
import pathlib
import shutil
import urllib.request

import jax
import numpy as np
import pytest
from helpers import FIXTURES
from make_inception_pth import assert_params_equal, write_pth
from random_weights import random_images

from jaxstyle import checkpoint, cli
from jaxstyle.errors import UserError
from jaxstyle.fid import weights
from jaxstyle.models import inception


@pytest.fixture(scope='module')
def stand_in(tmp_path_factory):
  """(path, state dict, sha256) of the ~96 MB legacy-format stand-in, under a neutral name."""
  path = tmp_path_factory.mktemp('fid_weights') / 'inception_legacy.pth'
  sd = write_pth(path, 'legacy')
  return path, sd, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def ported(stand_in, tmp_path_factory):
  dst = tmp_path_factory.mktemp('fid_ported') / 'inception'
  assert (
    cli.main(['port-weights', str(stand_in[0]), '-o', str(dst), '--kind', 'inception-fid']) == 0
  )
  return dst


@pytest.fixture
def official(stand_in, tmp_path, monkeypatch):
  """The stand-in copied into a cache under the official name, its SHA-256 prefix made the module's."""
  path, _, sha = stand_in
  (tmp_path / 'cache').mkdir()
  dest = tmp_path / 'cache' / weights.INCEPTION_FILE
  shutil.copy(path, dest)
  monkeypatch.setattr(weights, 'INCEPTION_SHA256_PREFIX', sha[:8])
  return dest


def test_cached_official_file_is_verified_once_and_loaded(official, stand_in):
  cache = official.parent
  assert weights.find_cached(cache) == str(official)
  assert weights.locate(cache=cache, download=False) == str(official)
  assert_params_equal(weights.load_params(cache=cache, download=False)['params'], stand_in[1])
  side = json.loads(pathlib.Path(str(official) + '.verified.json').read_text())
  assert side['algo'] == 'sha256' and side['digest'] == stand_in[2]
  assert side['size'] == official.stat().st_size


def test_checksum_mismatch_under_the_official_name(official, monkeypatch):
  monkeypatch.setattr(weights, 'INCEPTION_SHA256_PREFIX', '6726825d')
  with pytest.raises(weights.WeightChecksumError) as e:
    weights.load_params(path=official)
  msg = str(e.value)
  assert str(official) in msg and 'SHA256 is' in msg and 'expected 6726825d' in msg
  assert 'Delete it and re-download' in msg and '--inception PATH' in msg
  assert weights.INCEPTION_URL in msg and isinstance(e.value, UserError)


def _assert_offline_instructions(msg, dest):
  assert weights.INCEPTION_URL in msg and str(dest) in msg and '--inception PATH' in msg
  assert 'jaxstyle port-weights' in msg and '--kind inception-fid' in msg


def test_offline_messages(tmp_path, monkeypatch):
  dest = tmp_path / weights.INCEPTION_FILE
  assert weights.find_cached(tmp_path) is None
  with pytest.raises(weights.InceptionWeightsUnavailable) as e:  # conftest: JAXSTYLE_OFFLINE=1
    weights.load_params(cache=tmp_path)
  _assert_offline_instructions(str(e.value), dest)
  assert 'disabled by JAXSTYLE_OFFLINE' in str(e.value) and isinstance(e.value, UserError)
  with pytest.raises(weights.InceptionWeightsUnavailable, match='downloads disabled'):
    weights.load_params(cache=tmp_path, download=False)
  # Downloads allowed but the URL fails (a missing file:// URL: no network either way).
  monkeypatch.delenv('JAXSTYLE_OFFLINE')
  monkeypatch.setattr(weights, 'INCEPTION_URL', (tmp_path / 'nowhere.pth').as_uri())
  with pytest.raises(weights.InceptionWeightsUnavailable, match='could not download') as e:
    weights.load_params(cache=tmp_path)
  _assert_offline_instructions(str(e.value), dest)
  assert sorted(p.name for p in tmp_path.iterdir()) == []  # no partial file left


def test_file_url_download_checks_the_sha256_prefix(stand_in, tmp_path, monkeypatch):
  path, sd, sha = stand_in
  monkeypatch.setattr(weights, 'INCEPTION_URL', path.as_uri())
  monkeypatch.setattr(weights, 'INCEPTION_SHA256_PREFIX', sha[:7] + ('0' if sha[7] != '0' else '1'))
  with pytest.raises(weights.InceptionWeightsUnavailable, match='SHA-256 mismatch'):
    weights.locate(cache=tmp_path / 'bad')
  assert list((tmp_path / 'bad').iterdir()) == []  # the partial file was deleted
  monkeypatch.setattr(weights, 'INCEPTION_SHA256_PREFIX', sha[:8])
  assert_params_equal(weights.load_params(cache=tmp_path / 'c')['params'], sd)
  dest = tmp_path / 'c' / weights.INCEPTION_FILE
  assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name, dest.name + '.verified.json']
  assert json.loads(pathlib.Path(str(dest) + '.verified.json').read_text())['digest'] == sha

  def no_network(*a, **k):
    raise AssertionError('downloaded although the file is cached')

  monkeypatch.setattr(urllib.request, 'urlopen', no_network)
  assert weights.locate(cache=tmp_path / 'c') == str(dest)


def test_ported_directory(ported, stand_in, tmp_path):
  assert_params_equal(weights.load_params(path=ported)['params'], stand_in[1])
  with pytest.raises(UserError, match='not a jaxstyle port-weights output'):
    weights.load_params(path=tmp_path)
  other = tmp_path / 'vgg'
  checkpoint.save_params(
    str(other), {'block1_conv1': {'kernel': np.ones((3, 3, 3, 2))}}, {'kind': 'vgg19-keras'}
  )
  with pytest.raises(UserError, match="kind 'vgg19-keras', not 'inception-fid'"):
    weights.load_params(path=other)
  with pytest.raises(UserError, match='does not exist'):
    weights.load_params(path=tmp_path / 'absent.pth')


@pytest.mark.slow
def test_ported_params_give_the_reference_features(ported):
  """End to end: port-weights output -> load_params -> pool3 == the float64 torch reference."""
  data = np.load(FIXTURES / 'inception_fid_ref.npz')
  shape, seed = json.loads(str(data['meta']))['images'][0]
  variables = weights.load_params(path=ported)
  got = np.asarray(
    jax.jit(inception.FIDInceptionV3().apply)(variables, random_images(tuple(shape), seed))
  )
  want = data['feat0']
  assert got.shape == want.shape == (1, inception.FEATURE_DIM)
  rel = np.abs(got - want).max() / np.abs(want).max()
  # Error model: float32 vs the float64 reference: pool3 is 47 convs deep (fan-in ≤ 3·3·448),
  # ≤ 47·sqrt(4032)·u ≈ 1.8e-4 of the features' scale; a wrong layer is off by O(1).
  assert rel <= 2e-4, f'max relative diff {rel:.2e}'
