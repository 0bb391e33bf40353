"""Fuzzed readers: seeded mutations of valid `.pth` (zip, legacy), TorchScript `.pt`, Keras `.h5`
and FID `.npz` files.

Every mutated file must give either a result or a `UserError` naming the file: no other exception,
no hang, no allocation far beyond the file's size, and no code from a pickle run. The cases run in
a child process (tests/fuzzing.py) so a crash in C code fails the test instead of killing pytest;
each failure names (target, seed, case), which `python tests/fuzzing.py` replays.
"""

import os
import shutil
from pathlib import Path

import fuzz_mutators as fm
import fuzzing
import h5py
import numpy as np
import pytest
from fuzz_mutators import PICKLE, in_pickle, legacy_numel, npy_header, zip_entry, zip_lying_sizes
from fuzzing import Target

FIX = Path(__file__).resolve().parents[1] / 'fixtures'
SEED = 24
CASES = int(os.environ.get('JAXSTYLE_FUZZ_CASES', '300'))
# A bound on the peak of what a reader allocates per case (tracemalloc: numpy's and Python's
# allocations report to it): a few copies of the file (the zip entry, the arrays, the 4x tensor
# budget of torch_pickle.materialise), plus interpreter overhead (error messages, tracebacks: the
# seeded runs peak below 100 KB on files of 2-70 KB).
PEAK_FACTOR, PEAK_SLACK = 8, 1 << 20


def pth_zip(workdir: Path) -> Target:
  from jaxstyle.ports.torch_pth import load_state_dict

  return Target(
    files={'misc.pth': (FIX / 'pth' / 'misc.pth').read_bytes()},
    readers={'misc.pth': lambda d: load_state_dict(d / 'misc.pth')},
    aware={
      'misc.pth': [
        zip_entry('data.pkl', PICKLE),
        zip_entry('data.pkl', [fm.pickle_inject]),
        zip_entry('data.pkl', fm.GENERIC),
        zip_entry('/data/', fm.GENERIC),
        zip_entry('byteorder', fm.GENERIC),
        zip_lying_sizes,
      ]
    },
  )


def pth_legacy(workdir: Path) -> Target:
  from jaxstyle.ports.torch_pth import load_state_dict

  return Target(
    files={'misc_legacy.pth': (FIX / 'pth' / 'misc_legacy.pth').read_bytes()},
    readers={'misc_legacy.pth': lambda d: load_state_dict(d / 'misc_legacy.pth')},
    aware={'misc_legacy.pth': [in_pickle(PICKLE), legacy_numel]},
  )


def torchscript(workdir: Path) -> Target:
  """clean-fid's weights format: a TorchScript zip read through the same restricted unpickler."""
  from jaxstyle.ports.torchscript import load_tensors

  return Target(
    files={'tiny.pt': (FIX / 'torchscript_tiny.pt').read_bytes()},
    readers={'tiny.pt': lambda d: load_tensors(d / 'tiny.pt')},
    aware={
      'tiny.pt': [
        zip_entry('data.pkl', PICKLE),
        zip_entry('data.pkl', fm.GENERIC),
        zip_entry('/data/', fm.GENERIC),
        zip_lying_sizes,
      ]
    },
  )


# Tiny VGG19 widths, so a complete, valid Keras file is a few KB (the real one is 80 MB).
TINY_BLOCKS = ((1, 2, 5), (2, 2, 6), (3, 4, 7), (4, 4, 9), (5, 4, 10))


def keras_h5(workdir: Path) -> Target:
  from jaxstyle.models import vgg
  from jaxstyle.ports.keras_h5 import load_vgg19

  vgg.BLOCKS = TINY_BLOCKS  # child process only
  shapes = vgg.expected_shapes()
  rng = np.random.default_rng(0)
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / 'vgg.h5'
  with h5py.File(path, 'w') as f:
    order = ['input_1', *shapes]
    f.attrs['layer_names'] = np.array([n.encode() for n in order])
    f.create_group('input_1').attrs['weight_names'] = np.array([], dtype='S1')
    for name, leaves in shapes.items():
      g = f.create_group(name)
      wn = [f'{name}_W_1:0', f'{name}_b_1:0']
      g.attrs['weight_names'] = np.array([w.encode() for w in wn])
      g.create_dataset(wn[0], data=rng.normal(size=leaves['kernel']).astype(np.float32))
      g.create_dataset(wn[1], data=rng.normal(size=leaves['bias']).astype(np.float32))
  dims = sorted({s for leaves in shapes.values() for s in leaves.values()}) + [(len(order),)]
  return Target(
    files={'vgg.h5': path.read_bytes()},
    readers={'vgg.h5': lambda d: load_vgg19(d / 'vgg.h5')},
    aware={'vgg.h5': [fm.h5_dims(dims)]},
  )


def fid_stats(workdir: Path) -> Target:
  from jaxstyle.fid.metrics import load_npz_arrays, load_statistics, save_statistics

  rng = np.random.default_rng(0)
  feats = rng.normal(size=(12, 6))
  mu, sigma = feats.mean(0), np.cov(feats, rowvar=False)
  workdir.mkdir(parents=True, exist_ok=True)
  save_statistics(str(workdir / 'c.npz'), mu, sigma)  # compressed, as pytorch-fid writes
  np.savez(workdir / 's.npz', mu=mu, sigma=sigma)  # stored
  # jaxstyle's own layout (fid.cli.save_stats): also the features and the resize mode.
  np.savez_compressed(workdir / 'j.npz', mu=mu, sigma=sigma, mode=np.array('clean'), feats=feats)

  def read_all(path: Path) -> None:  # what `jaxstyle fid` reads of a statistics file
    load_statistics(str(path))
    load_npz_arrays(str(path), ('features', 'feats'))
    load_npz_arrays(str(path), ('mode',), kinds='U')

  names = ('c.npz', 's.npz', 'j.npz')
  npy = [zip_entry('.npy', [npy_header]), zip_entry('.npy', fm.GENERIC), zip_lying_sizes]
  return Target(
    files={n: (workdir / n).read_bytes() for n in names},
    readers={n: (lambda d, n=n: read_all(d / n)) for n in names},
    aware={n: npy for n in names},
    scope={n: n for n in names},
  )


@pytest.mark.slow  # ~5-30 s a target on 2 loaded cores
@pytest.mark.parametrize(
  'target', ['pth_zip', 'pth_legacy', 'torchscript', 'keras_h5', 'fid_stats']
)
def test_mutated_files_give_user_errors_only(target, tmp_path):
  cases = CASES * 2 // 3 if target == 'keras_h5' else CASES  # h5py: ~50 ms a case
  records, summary = fuzzing.run_target(
    __file__, target, SEED, cases, tmp_path, timeout_s=300, trace=True
  )
  assert len(records) >= cases
  escaped = [r for r in records if r['outcome'] == 'escaped']
  assert not escaped, f'{len(escaped)} cases escaped the UserError boundary:\n' + fuzzing.describe(
    escaped
  )
  assert not any(r['code_ran'] for r in records), 'a pickle ran code'
  over = [r for r in records if r['peak'] > PEAK_FACTOR * r['size'] + PEAK_SLACK]
  assert not over, 'allocations beyond the file size:\n' + fuzzing.describe(over)
  # Every refusal names the file it refuses (readers are keyed by their file's name).
  unnamed = [r for r in records if r['outcome'] == 'user' and r['reader'] not in r['error']]
  assert not unnamed, fuzzing.describe(unnamed)
  assert summary['maxrss_growth_kb'] < 256 << 10
  # The mutations reach past the container: a share of cases must be refused, some still load.
  outcomes = {r['outcome'] for r in records}
  assert 'user' in outcomes
  shutil.rmtree(tmp_path, ignore_errors=True)


def test_hdf5_dataset_declaring_terabytes_is_refused_before_allocation(tmp_path):
  """HDF5 reads unwritten chunks as the fill value, so a valid few-KB file can declare a 36 TB
  kernel; h5py would allocate it whole. The reader must refuse it from the declared shape."""
  import tracemalloc

  from jaxstyle.models import vgg
  from jaxstyle.models.vgg import WeightFileError
  from jaxstyle.ports.keras_h5 import load_vgg19

  path = tmp_path / 'huge.h5'
  with h5py.File(path, 'w') as f:
    f.attrs['layer_names'] = np.array([n.encode() for n in vgg.LAYER_NAMES])
    g = f.create_group(vgg.LAYER_NAMES[0])
    g.attrs['weight_names'] = np.array([b'k:0'])
    g.create_dataset('k:0', shape=(3, 3, 2**20, 2**20), dtype='f4', chunks=(1, 1, 64, 64))
  assert path.stat().st_size < 64 << 10
  tracemalloc.start()
  try:
    with pytest.raises(WeightFileError, match=r'huge\.h5: dataset /block1_conv1/k:0 declares'):
      load_vgg19(path)
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  assert peak < 1 << 20


def test_npz_array_declaring_terabytes_is_refused_before_allocation(tmp_path):
  """A stored `.npy` member whose header says 2**40 float64s, next to 8 real bytes."""
  import struct
  import zipfile

  from jaxstyle.errors import BadInputError
  from jaxstyle.fid.metrics import load_statistics

  header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
  header += ' ' * ((64 - (10 + len(header) + 1) % 64) % 64) + '\n'
  npy = b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode() + bytes(8)
  path = tmp_path / 'stats.npz'
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('mu.npy', npy)
    z.writestr('sigma.npy', npy)
  with pytest.raises(BadInputError, match=r"stats\.npz: .*'mu' declares shape \(1099511627776,\)"):
    load_statistics(str(path))


def test_injected_pickles_run_code_under_a_plain_unpickler(tmp_path, monkeypatch):
  """The payloads the fuzzer splices into pickles are real: `pickle.loads` runs them, so the fuzz
  test's "nothing ran" is the allow-list's doing (the BUILD payload needs torch to get that far)."""
  import pickle

  for i in range(len(fm._payloads())):
    monkeypatch.setattr(fm, 'MARKER', tmp_path / f'ran-{i}')
    name, snippet = fm._payloads()[i]  # built with this case's marker path
    if name.startswith('BUILD'):
      continue
    pickle.loads(b'\x80\x02' + snippet + b'N.')  # noqa: S301 -- the point of the test
    assert fm.MARKER.exists(), name
