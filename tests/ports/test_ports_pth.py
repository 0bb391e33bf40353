"""Torch-free `.pth` import: exact arrays, junyanz key mapping, torch parity, and refusal of unsafe files.

Fixtures come from tests/fixtures/make_pth_fixtures.py (real `torch.save` output, made with torch
offline); nothing here imports torch. The malicious files are hand-assembled pickle opcodes.
"""

import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile

import jax
import numpy as np
import pytest

from jaxstyle import checkpoint, cli, models
from jaxstyle.ports import junyanz
from jaxstyle.ports.torch_pth import CheckpointFormatError, UnsafeCheckpointError, load_state_dict

FIX = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'fixtures', 'pth')


@pytest.fixture(scope='module')
def expected():
  with np.load(os.path.join(FIX, 'expected.npz')) as z:
    return {k: z[k] for k in z.files}


def _expected_for(expected, name):
  return {k.split('::', 1)[1]: v for k, v in expected.items() if k.startswith(name + '::')}


def _assert_same(got, want):
  assert sorted(got) == sorted(want)
  for k in want:
    assert got[k].dtype == want[k].dtype, k
    assert got[k].shape == want[k].shape, k
    np.testing.assert_array_equal(got[k], want[k], err_msg=k)


################################################################################
# Reader: exact arrays for every dtype / layout / format.                      #
################################################################################


@pytest.mark.parametrize('name', ['G.pth', 'G_dropout.pth', 'D.pth', 'D2.pth', 'misc.pth'])
def test_zip_format_arrays_exact(expected, name):
  _assert_same(load_state_dict(os.path.join(FIX, name)), _expected_for(expected, name))


def test_misc_dtypes_and_views(expected):
  sd = load_state_dict(os.path.join(FIX, 'misc.pth'))
  assert sd['bf16'].dtype == np.float32 and sd['f16'].dtype == np.float16
  assert sd['u16'].dtype == np.uint16 and sd['bool'].dtype == np.bool_
  # Views of one storage are rebuilt with their own strides/offset, and come back contiguous.
  np.testing.assert_array_equal(sd['transposed'], sd['base'].T)
  np.testing.assert_array_equal(sd['sliced'], sd['base'][2:5, 1:4])
  np.testing.assert_array_equal(sd['u32_sliced'], np.array([2**32 - 1, 5], np.uint32))
  assert sd['transposed'].flags.c_contiguous and sd['scalar'].shape == ()
  assert sd['empty'].shape == (0, 4)


def test_legacy_format_matches_zip(expected):
  misc = _expected_for(expected, 'misc.pth')
  got = load_state_dict(os.path.join(FIX, 'misc_legacy.pth'))
  _assert_same(got, {k: misc[k] for k in got})
  assert len(got) == len(misc) - 2  # all but the v3-only uint16/uint32 entries
  _assert_same(load_state_dict(os.path.join(FIX, 'G_legacy.pth')), _expected_for(expected, 'G.pth'))


def test_module_prefix_and_nested_checkpoint(expected):
  sd = load_state_dict(os.path.join(FIX, 'G_module.pth'))
  assert all(k.startswith('module.') for k in sd)  # the reader keeps names; junyanz strips
  g = _expected_for(expected, 'G.pth')
  for k, v in g.items():
    np.testing.assert_array_equal(sd['module.' + k], v)
  # D.pth is {'model': state_dict, 'epoch': 3, 'note': ...}: unwrapped to the state_dict.
  assert sorted(load_state_dict(os.path.join(FIX, 'D.pth'))) == sorted(
    _expected_for(expected, 'D.pth')
  )


################################################################################
# Unsafe and broken files.                                                     #
################################################################################


def _str(s: str) -> bytes:
  data = s.encode()
  return b'X' + struct.pack('<I', len(data)) + data


def _call_global(module: str, name: str, arg: str) -> bytes:
  return b'c' + f'{module}\n{name}\n'.encode() + _str(arg) + b'\x85R'  # GLOBAL, TUPLE1, REDUCE


def _call_stack_global(module: str, name: str, arg: str) -> bytes:
  return _str(module) + _str(name) + b'\x93' + _str(arg) + b'\x85R'  # STACK_GLOBAL (protocol 4)


def _payloads(marker: str) -> dict[str, bytes]:
  touch = f'touch {marker}'
  exec_src = f"open({marker!r}, 'w').close()"
  in_dict = (
    b'\x80\x02ccollections\nOrderedDict\n)R('
    + _str('weight')
    + _call_global('os', 'system', touch)
    + b'u.'
  )
  return {
    'os.system': b'\x80\x02' + _call_global('os', 'system', touch) + b'.',
    'posix.system': b'\x80\x02' + _call_global('posix', 'system', touch) + b'.',
    'builtins.exec': b'\x80\x02' + _call_global('builtins', 'exec', exec_src) + b'.',
    'builtins.eval': b'\x80\x02' + _call_global('builtins', 'eval', f'exec({exec_src!r})') + b'.',
    'subprocess.getoutput': b'\x80\x04'
    + _call_stack_global('subprocess', 'getoutput', touch)
    + b'.',
    'os.system (inside a state_dict)': in_dict,
    'collections.OrderedDict.fromkeys': b'\x80\x04'
    + _call_stack_global('collections', 'OrderedDict.fromkeys', 'ab')
    + b'.',
  }


def _zip_pth(path, data_pkl: bytes, prefix: str = 'archive') -> str:
  with zipfile.ZipFile(path, 'w') as zf:
    zf.writestr(f'{prefix}/data.pkl', data_pkl)
    zf.writestr(f'{prefix}/byteorder', 'little')
    zf.writestr(f'{prefix}/version', '3\n')
  return str(path)


def test_payloads_really_execute_under_plain_pickle(tmp_path):
  """Guards the test below: these bytes do run code when loaded the usual (unsafe) way."""
  for i, name in enumerate(['os.system', 'builtins.exec']):
    marker = tmp_path / f'proof{i}'
    pkl = tmp_path / f'p{i}.pkl'
    pkl.write_bytes(_payloads(str(marker))[name])
    subprocess.run(
      [sys.executable, '-c', "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))", str(pkl)],
      check=False,
      capture_output=True,
      timeout=60,
    )
    assert marker.exists(), name


@pytest.mark.parametrize('name', list(_payloads('x')))
@pytest.mark.parametrize('container', ['zip', 'legacy'])
def test_malicious_pth_refused(tmp_path, name, container):
  marker = tmp_path / 'pwned'
  payload = _payloads(str(marker))[name]
  if container == 'zip':
    path = _zip_pth(tmp_path / 'evil.pth', payload, prefix='evil_model')
  else:  # legacy stream: magic, protocol, sys_info, then the payload as the main pickle
    path = tmp_path / 'evil_legacy.pth'
    path.write_bytes(
      b''.join(
        pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {'little_endian': True})
      )
      + payload
    )
  with pytest.raises(UnsafeCheckpointError) as err:
    load_state_dict(path)
  msg = str(err.value)
  assert str(path) in msg and name.split(' ')[0] in msg and 'weights_only' in msg
  assert isinstance(err.value, ValueError)
  assert not marker.exists()


def test_build_cannot_patch_allowed_globals(tmp_path):
  """BUILD on an allowed global (here setting `__defaults__`) must fail, not mutate our reader."""
  from jaxstyle.ports import torch_pth

  fn = torch_pth.ALLOWED[('torch._utils', '_rebuild_tensor_v2')]
  patch = b'N}' + _str('__defaults__') + b'K\x01\x85s\x86b'  # (None, {...: (1,)}) BUILD
  for target in (
    b'ctorch._utils\n_rebuild_tensor_v2\n',
    b'ccollections\nOrderedDict\n',
    b'ctorch\nFloatStorage\n',
  ):
    path = _zip_pth(tmp_path / 'patch.pth', b'\x80\x02' + target + patch + b'.')
    with pytest.raises(CheckpointFormatError, match='patch.pth'):
      load_state_dict(path)
  assert torch_pth.ALLOWED[('torch._utils', '_rebuild_tensor_v2')] is fn
  assert not hasattr(fn, '__defaults__') and fn.fn.__defaults__ == (None,)


def test_missing_and_garbage_files(tmp_path):
  with pytest.raises(FileNotFoundError, match='nope.pth'):
    load_state_dict(tmp_path / 'nope.pth')
  cases = {
    'empty.pth': b'',
    'text.pth': b'hello, not a checkpoint\n',
    'random.pth': np.random.default_rng(0).bytes(4096),
    'pickle_list.pth': pickle.dumps([1, 2, 3], protocol=2),
  }
  good = open(os.path.join(FIX, 'G.pth'), 'rb').read()
  cases['truncated_zip.pth'] = good[: len(good) // 2]
  legacy = open(os.path.join(FIX, 'G_legacy.pth'), 'rb').read()
  cases['truncated_legacy.pth'] = legacy[: len(legacy) - 100]
  cases['truncated_legacy_header.pth'] = legacy[:30]
  for name, data in cases.items():
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CheckpointFormatError, match=name):
      load_state_dict(path)


def test_tar_and_foreign_zip_rejected(tmp_path):
  tar_path = tmp_path / 'old.pth'
  inner = tmp_path / 'pickle'
  inner.write_bytes(b'x')
  with tarfile.open(tar_path, 'w') as tf:
    tf.add(inner, arcname='pickle')
  with pytest.raises(CheckpointFormatError, match='tar format'):
    load_state_dict(tar_path)
  other = tmp_path / 'other.zip'
  with zipfile.ZipFile(other, 'w') as zf:
    zf.writestr('readme.txt', 'hi')
  with pytest.raises(CheckpointFormatError, match='data.pkl'):
    load_state_dict(other)


def test_out_of_bounds_storage_rejected(tmp_path):
  """A storage shorter than its tensor view must fail, not read past the buffer."""
  src = zipfile.ZipFile(os.path.join(FIX, 'G.pth'))
  path = tmp_path / 'short.pth'
  with zipfile.ZipFile(path, 'w') as zf:
    for info in src.infolist():
      data = src.read(info.filename)
      zf.writestr(info.filename, data[:16] if info.filename.endswith('/data/0') else data)
  with pytest.raises(CheckpointFormatError, match='short.pth'):
    load_state_dict(path)


################################################################################
# junyanz mapping and parity with the torch forward pass.                      #
################################################################################


def _shapes(tree):
  return jax.tree.map(lambda a: tuple(a.shape), tree)


def _init_shapes(net, x):
  return _shapes(jax.eval_shape(net.init, jax.random.key(0), x)['params'])


@pytest.fixture(scope='module')
def generator(expected):
  return junyanz.generator_from_state_dict(load_state_dict(os.path.join(FIX, 'G.pth')))


def test_generator_mapping(expected, generator):
  params, cfg = generator
  assert (cfg.generator, cfg.gen_filters, cfg.n_blocks) == ('resnet', 4, 2)
  assert (cfg.in_channels, cfg.out_channels, cfg.norm_eps, cfg.eps_mode) == (3, 3, 1e-5, 'var')
  g = _expected_for(expected, 'G.pth')
  np.testing.assert_array_equal(
    params['block_1']['conv_1']['kernel'], g['model.11.conv_block.5.weight'].transpose(2, 3, 1, 0)
  )
  np.testing.assert_array_equal(
    params['up_0']['kernel'], g['model.12.weight'].transpose(2, 3, 1, 0)
  )
  np.testing.assert_array_equal(params['head']['bias'], g['model.19.bias'])
  x = np.zeros((1, 16, 12, 3), np.float32)
  assert _shapes(params) == _init_shapes(models.make_generator(cfg), x)
  # DataParallel prefix + pre-0.4 InstanceNorm running stats: same params.
  params_mod, cfg_mod = junyanz.generator_from_pth(os.path.join(FIX, 'G_module.pth'))
  jax.tree.map(np.testing.assert_array_equal, params_mod, params)
  assert cfg_mod == cfg


def test_generator_matches_torch(expected, generator):
  params, cfg = generator
  x = expected['x_G'].transpose(0, 2, 3, 1)
  with jax.default_matmul_precision('highest'):
    y = jax.jit(models.make_generator(cfg).apply)({'params': params}, x)
  # Error model: torch's float32 and ours, ≤ 14 convs with fan-in ≤ 4·4·32 each: ≤
  # 14·sqrt(512)·u ≈ 2e-5 of the output scale (≤ 1, tanh) apiece; a wrong key or layout is O(0.1).
  np.testing.assert_allclose(
    np.asarray(y), expected['y_G'].transpose(0, 2, 3, 1), atol=5e-5, rtol=0
  )


@pytest.mark.parametrize('name,n_layers,out', [('D.pth', 3, 'y_D'), ('D2.pth', 2, 'y_D2')])
def test_discriminator_matches_torch(expected, name, n_layers, out):
  params, cfg = junyanz.discriminator_from_pth(os.path.join(FIX, name))
  assert (cfg.discriminator, cfg.disc_filters, cfg.n_layers) == ('patchgan', 4, n_layers)
  assert sorted(params) == [f'conv_{k}' for k in range(n_layers + 1)] + ['head']
  x = expected['x_D'].transpose(0, 2, 3, 1)
  with jax.default_matmul_precision('highest'):
    y = jax.jit(models.make_discriminator(cfg).apply)({'params': params}, x)
  # As above (PatchGAN logits of scale ~1).
  np.testing.assert_allclose(np.asarray(y), expected[out].transpose(0, 2, 3, 1), atol=5e-5, rtol=0)


def test_dropout_generator_mapping(expected):
  params, cfg = junyanz.generator_from_pth(os.path.join(FIX, 'G_dropout.pth'))
  assert (cfg.gen_filters, cfg.n_blocks) == (2, 1)
  w = _expected_for(expected, 'G_dropout.pth')['model.10.conv_block.6.weight']
  np.testing.assert_array_equal(params['block_0']['conv_1']['kernel'], w.transpose(2, 3, 1, 0))
  assert _shapes(params) == _init_shapes(
    models.make_generator(cfg), np.zeros((1, 8, 8, 3), np.float32)
  )


@pytest.fixture(scope='module')
def full_size_keys():
  with open(os.path.join(FIX, 'full_size_keys.json')) as f:
    return json.load(f)


def _random_sd(shapes, seed=0):
  rng = np.random.default_rng(seed)
  return {k: (rng.standard_normal(s) * 0.02).astype(np.float32) for k, s in shapes.items()}


@pytest.mark.parametrize(
  'arch,n_blocks,count', [('resnet_9blocks', 9, 11_378_179), ('resnet_6blocks', 6, 7_837_699)]
)
def test_published_generator_layout_loads(full_size_keys, arch, n_blocks, count):
  """Keys/shapes of the published pretrained G files (e.g. horse2zebra.pth) map onto our ResNet."""
  params, cfg = junyanz.generator_from_state_dict(_random_sd(full_size_keys[arch]))
  assert (cfg.gen_filters, cfg.n_blocks, cfg.out_channels) == (64, n_blocks, 3)
  assert sum(a.size for a in jax.tree.leaves(params)) == count  # docs/design/cyclegan.md
  net = models.make_generator(cfg)
  x = np.linspace(-1, 1, 8 * 8 * 3, dtype=np.float32).reshape(1, 8, 8, 3)
  assert _shapes(params) == _init_shapes(net, x)
  if n_blocks == 9:
    y = jax.jit(net.apply)({'params': params}, x)
    assert y.shape == (1, 8, 8, 3) and bool(np.isfinite(np.asarray(y)).all())


def test_published_discriminator_layout_loads(full_size_keys):
  params, cfg = junyanz.discriminator_from_state_dict(_random_sd(full_size_keys['basic_D']))
  assert (cfg.disc_filters, cfg.n_layers) == (64, 3)
  assert sum(a.size for a in jax.tree.leaves(params)) == 2_764_737  # docs/design/cyclegan.md
  x = np.zeros((1, 64, 64, 3), np.float32)
  assert _shapes(params) == _init_shapes(models.make_discriminator(cfg), x)


def test_mismatched_state_dict_errors(full_size_keys):
  sd = _random_sd(full_size_keys['resnet_9blocks'])
  missing = dict(sd)
  del missing['model.22.bias']
  with pytest.raises(ValueError, match=r'missing keys \(1\): model\.22\.bias'):
    junyanz.generator_from_state_dict(missing)
  extra = dict(
    sd, **{'model.2.weight': np.ones(64, np.float32), 'model.2.bias': np.ones(64, np.float32)}
  )
  with pytest.raises(
    ValueError, match=r'(?s)unexpected keys \(2\): model\.2\.bias, model\.2\.weight.*BatchNorm'
  ):
    junyanz.generator_from_state_dict(extra)
  bad = dict(sd, **{'model.4.weight': np.ones((128, 64, 4, 4), np.float32)})
  with pytest.raises(ValueError, match=r'model\.4\.weight: file \(128, 64, 4, 4\)'):
    junyanz.generator_from_state_dict(bad)
  with pytest.raises(ValueError, match='not a junyanz ResnetGenerator'):
    junyanz.generator_from_state_dict(_random_sd(full_size_keys['basic_D']))
  with pytest.raises(ValueError, match='not a junyanz NLayerDiscriminator'):
    junyanz.discriminator_from_state_dict({'features.0.weight': np.ones((1, 1, 1, 1))})


################################################################################
# `jaxstyle port-weights` round trip.                                          #
################################################################################


def test_port_weights_cli_round_trip(tmp_path, generator, capsys):
  dst = tmp_path / 'G_port'
  src = os.path.join(FIX, 'G.pth')
  assert cli.main(['port-weights', src, '-o', str(dst), '--kind', 'junyanz-G']) == 0
  params, meta = checkpoint.load_params(str(dst))
  want, cfg = generator
  jax.tree.map(np.testing.assert_array_equal, params, want)
  assert meta['kind'] == 'junyanz-G' and meta['source'] == os.path.abspath(src)
  assert meta['model_cfg'] == cfg.to_dict()
  # --kind guessed from the keys; unsafe input fails with exit code 1 and a message.
  assert cli.main(['port-weights', os.path.join(FIX, 'D.pth'), '-o', str(tmp_path / 'D')]) == 0
  assert checkpoint.load_params(str(tmp_path / 'D'))[1]['model_cfg']['n_layers'] == 3
  evil = _zip_pth(tmp_path / 'evil.pth', _payloads(str(tmp_path / 'pwned'))['os.system'])
  assert cli.main(['port-weights', evil, '-o', str(tmp_path / 'E')]) == 2
  assert 'os.system' in capsys.readouterr().err
  assert not (tmp_path / 'pwned').exists() and not (tmp_path / 'E').exists()


@pytest.mark.parametrize(
  'kind,module', [('vgg19-keras', 'keras_h5'), ('vgg19-torchvision', 'torchvision_vgg')]
)
def test_port_weights_dispatches_vgg(tmp_path, monkeypatch, kind, module):
  """Only the wiring: the VGG converters themselves are tested by their own test files."""
  import importlib

  conv = importlib.import_module(f'jaxstyle.ports.{module}')
  calls = []
  fake = {
    'block1_conv1': {'kernel': np.ones((3, 3, 3, 2), np.float32), 'bias': np.zeros(2, np.float32)}
  }
  monkeypatch.setattr(conv, 'load_vgg19', lambda path: calls.append(path) or fake)
  src = str(tmp_path / 'vgg.weights')
  open(src, 'wb').write(b'stand-in')  # port-weights checks the source exists before loading
  assert cli.main(['port-weights', src, '-o', str(tmp_path / 'V'), '--kind', kind]) == 0
  params, meta = checkpoint.load_params(str(tmp_path / 'V'))
  assert calls == [src] and meta['kind'] == kind and meta['model_cfg']['net'] == 'vgg19'
  np.testing.assert_array_equal(params['block1_conv1']['kernel'], fake['block1_conv1']['kernel'])


def test_port_weights_mismatch_names_file(tmp_path, capsys):
  src = os.path.join(FIX, 'D.pth')
  assert cli.main(['port-weights', src, '-o', str(tmp_path / 'X'), '--kind', 'junyanz-G']) == 2
  err = capsys.readouterr().err
  assert src in err and 'not a junyanz ResnetGenerator' in err
