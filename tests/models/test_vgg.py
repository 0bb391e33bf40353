"""VGG19 module, weight ports (Keras h5, torchvision .pth) and weight download/preprocessing.

Weight files are written in the real layouts with random values; activations are checked against an
independent float64 NumPy VGG (im2col conv, ReLU, floor pooling).
"""

import hashlib
import os
import pathlib
import shutil
import urllib.error
import urllib.request

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import FIXTURES
from np_vgg_reference import np_vgg, random_vgg_params

from jaxstyle.models import vgg
from jaxstyle.nst import weights as vgg_weights
from jaxstyle.ports import keras_h5, torch_pth, torchvision_vgg

WIDTH = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


def random_params(seed=0):
  return random_vgg_params(vgg.expected_shapes(), seed)


def write_keras_h5(path, params, layers=vgg.LAYER_NAMES):
  """The legacy Keras save_weights layout of vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5."""
  blocks = sorted({int(n[5]) for n in layers})
  order = ['input_1']
  for b in blocks:
    order += [n for n in layers if n.startswith(f'block{b}_')] + [f'block{b}_pool']
  with h5py.File(path, 'w') as f:
    f.attrs['layer_names'] = np.array([n.encode() for n in order])
    f.attrs['backend'] = b'tensorflow'
    f.attrs['keras_version'] = b'2.0.6'
    for name in order:
      g = f.create_group(name)
      if name in params:
        wn = [f'{name}_W_1:0', f'{name}_b_1:0']
        g.attrs['weight_names'] = np.array([w.encode() for w in wn])
        g.create_dataset(wn[0], data=params[name]['kernel'])
        g.create_dataset(wn[1], data=params[name]['bias'])
      else:
        g.attrs['weight_names'] = np.array([], dtype='S1')


@pytest.fixture(scope='module')
def params():
  return random_params()


@pytest.fixture(scope='module')
def keras_file(tmp_path_factory, params):
  path = tmp_path_factory.mktemp('keras') / vgg_weights.KERAS_FILE
  write_keras_h5(path, params)
  return path


@pytest.fixture(scope='module')
def loaded(keras_file):
  return keras_h5.load_vgg19(keras_file)


################################################################################
# Module.


def test_param_count_names_and_shapes():
  shapes = jax.eval_shape(vgg.init_params, jax.random.key(0))
  assert sum(x.size for x in jax.tree.leaves(shapes)) == vgg.NUM_CONV_PARAMS == 20_024_384
  assert tuple(shapes) == vgg.LAYER_NAMES and len(shapes) == 16
  for name, want in vgg.expected_shapes().items():
    assert shapes[name]['kernel'].shape == want['kernel']
    assert shapes[name]['bias'].shape == want['bias']


def test_aliases():
  assert vgg.canonical_name('relu5_2') == vgg.canonical_name('conv5_2') == 'block5_conv2'
  assert vgg.canonical_name('block1_conv1') == 'block1_conv1'
  for bad in ('conv1_3', 'block6_conv1', 'relu'):
    with pytest.raises(ValueError, match='unknown VGG19 layer'):
      vgg.canonical_name(bad)


def test_stops_after_deepest_requested(params):
  net = vgg.VGG19(outputs=('relu2_1',))
  x = jnp.zeros((1, 16, 16, 3))
  created = net.init(jax.random.key(0), x)['params']
  assert list(created) == ['block1_conv1', 'block1_conv2', 'block2_conv1']
  jaxpr = str(jax.make_jaxpr(lambda p, x: net.apply({'params': p}, x))(params, x))
  assert jaxpr.count('conv_general_dilated') == 3
  assert 'reduce_max' not in jaxpr.split('conv_general_dilated')[-1]  # no pool after the last conv


@pytest.mark.parametrize('pool', ['max', 'avg'])
def test_forward_matches_numpy(loaded, pool):
  layers = ('block1_conv1', 'relu2_2', 'block3_conv4', 'conv4_2', 'block5_conv1', 'block5_conv2')
  x = np.random.default_rng(1).uniform(-120, 130, (2, 32, 32, 3)).astype(np.float32)
  with jax.default_matmul_precision('highest'):
    out = vgg.VGG19(pool=pool, outputs=layers).apply({'params': loaded}, x)
  ref = np_vgg(x, loaded, pool)
  assert set(out) == set(layers)
  for name in layers:
    want = ref[vgg.canonical_name(name)]
    assert out[name].shape == want.shape
    err = np.max(np.abs(np.asarray(out[name]) - want)) / np.max(np.abs(want))
    # Error model: float32 vs NumPy's float64: block5_conv2 is 14 convs deep (fan-in ≤ 3·3·512),
    # ≤ 14·sqrt(4608)·u ≈ 6e-5 of the layer's largest value; a wrong layer is off by O(1).
    assert err < 1e-4, (name, err)
  assert out['block5_conv2'].shape == (2, 2, 2, 512)


def test_block_losses_same_values_and_grads_as_vgg19(params):
  """`block_losses` (losses inside each block; remat or not) equals VGG19 features + the losses."""
  x = jax.random.normal(jax.random.key(2), (1, 16, 16, 3)) * 50
  layer_losses = {name: lambda f, _: {'l': jnp.mean(f**2)} for name in ('relu1_1', 'relu3_1')}

  # Average pooling: three programs may round the forward differently, and a max pool's gradient
  # is discontinuous at near-ties (docs/development.md, "Tolerances"); the forward test covers max.
  def loss(x, remat):
    if remat is None:
      feats = vgg.VGG19(pool='avg', outputs=tuple(layer_losses)).apply({'params': params}, x)
      return sum(jnp.mean(f**2) for f in feats.values())
    args = dict.fromkeys(layer_losses)
    return vgg.block_losses(params, x, layer_losses, args, pool='avg', remat=remat)['l']

  with jax.default_matmul_precision('highest'):
    (v0, g0), *others = (
      jax.jit(jax.value_and_grad(loss), static_argnums=1)(x, r) for r in (None, False, True)
    )
  # Error model: the same convs, possibly fused and so summed in other orders: relu3_1 is 5 convs
  # deep (fan-in ≤ 3·3·128), ≤ 5·sqrt(1152)·u ≈ 1e-5 relative for the value, 3× that for the
  # gradient (forward, transposed convs, the recomputed forward), relative to its largest element.
  for v, g in others:
    np.testing.assert_allclose(v, v0, rtol=2e-5)
    np.testing.assert_allclose(g, g0, rtol=0, atol=3e-5 * float(jnp.max(jnp.abs(g0))))
  # remat: the backward pass recomputes each block behind a barrier (see vgg.checkpoint)
  jaxprs = {r: str(jax.make_jaxpr(jax.grad(lambda x, r=r: loss(x, r)))(x)) for r in (False, True)}
  assert 'optimization_barrier' in jaxprs[True] and 'optimization_barrier' not in jaxprs[False]


@pytest.mark.slow  # full VGG gradients (~10 s)
def test_input_gradient_matches_autodiff_with_and_without_precomputed_kernels(params):
  """The custom input gradient (explicit transposed kernel) equals XLA's own conv transpose."""
  x = jax.random.normal(jax.random.key(3), (1, 12, 16, 3)) * 50
  # Average pooling: a max pool's gradient is discontinuous at near-ties, so two programs that
  # round the forward differently may route it elsewhere (docs/development.md, "Tolerances").
  net = vgg.VGG19(pool='avg', outputs=('relu2_2', 'relu3_1'))
  kernels_t = vgg.frozen_kernels(params)

  def loss(x, kt):
    return sum(jnp.sum(jnp.sin(f)) for f in net.apply({'params': params}, x, kt).values())

  def reference(x):  # plain lax convs, autodiff all the way
    h, total = x, 0.0
    for name in vgg.LAYER_NAMES[:LAYER_NAMES_UPTO_3_1]:
      p = params[name]
      h = jax.nn.relu(
        jax.lax.conv_general_dilated(
          h, p['kernel'], (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
        )
        + p['bias']
      )
      if name in ('block2_conv2', 'block3_conv1'):
        total = total + jnp.sum(jnp.sin(h))
      if name in ('block1_conv2', 'block2_conv2'):  # average pooling, as the net below
        n, hh, ww, c = h.shape
        h = h.reshape(n, hh // 2, 2, ww // 2, 2, c).mean(axis=(2, 4))
    return total

  with jax.default_matmul_precision('highest'):
    g_ref = jax.grad(reference)(x)
    for kt in (None, kernels_t):
      g = jax.grad(loss)(x, kt)
      # Error model: another program for the same sums: 5 convs (fan-in ≤ 1152) forward and their
      # transposes backward, 10·sqrt(1152)·u ≈ 2e-5 of the largest element (rtol covers the rest).
      np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=3e-5 * float(jnp.max(jnp.abs(g_ref))))


LAYER_NAMES_UPTO_3_1 = 5  # block1_conv1 .. block3_conv1


################################################################################
# Keras h5 port.


def test_keras_roundtrip(params, loaded):
  assert list(loaded) == list(vgg.LAYER_NAMES)
  for name in vgg.LAYER_NAMES:
    np.testing.assert_array_equal(loaded[name]['kernel'], params[name]['kernel'])
    np.testing.assert_array_equal(loaded[name]['bias'], params[name]['bias'])
    assert loaded[name]['kernel'].dtype == np.float32


def test_keras_nested_weight_names(tmp_path, params):
  """Newer Keras writes `name/kernel:0` sub-groups; weight_names still points at them."""
  path = tmp_path / 'nested.h5'
  with h5py.File(path, 'w') as f:
    f.attrs['layer_names'] = np.array([n.encode() for n in vgg.LAYER_NAMES])
    for name in vgg.LAYER_NAMES:
      g = f.create_group(name)
      g.attrs['weight_names'] = np.array([f'{name}/kernel:0'.encode(), f'{name}/bias:0'.encode()])
      g.create_dataset(f'{name}/kernel:0', data=params[name]['kernel'])
      g.create_dataset(f'{name}/bias:0', data=params[name]['bias'])
  out = keras_h5.load_vgg19(path)
  np.testing.assert_array_equal(out['block5_conv4']['bias'], params['block5_conv4']['bias'])


def test_keras_vgg16_file_rejected(tmp_path, params):
  vgg16 = [n for n in vgg.LAYER_NAMES if not n.endswith('conv4')]
  path = tmp_path / 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'
  write_keras_h5(path, params, vgg16)
  with pytest.raises(vgg.WeightFileError, match='13 conv layers') as e:
    keras_h5.load_vgg19(path)
  assert str(path) in str(e.value) and 'block5_conv4' in str(e.value)


def test_keras_truncated_and_garbage(tmp_path, keras_file):
  data = keras_file.read_bytes()
  for name, blob in (('trunc.h5', data[: len(data) // 2]), ('garbage.h5', b'not hdf5' * 100)):
    path = tmp_path / name
    path.write_bytes(blob)
    with pytest.raises(vgg.WeightFileError, match='truncated or corrupt') as e:
      keras_h5.load_vgg19(path)
    assert str(path) in str(e.value)
  with pytest.raises(vgg.WeightFileError, match='no such file'):
    keras_h5.load_vgg19(tmp_path / 'absent.h5')


def test_keras_wrong_shape_and_no_layer_names(tmp_path, params):
  bad = dict(params)
  bad['block3_conv2'] = {
    'kernel': np.zeros((3, 3, 256, 128), np.float32),
    'bias': np.zeros(128, np.float32),
  }
  path = tmp_path / 'shape.h5'
  write_keras_h5(path, bad)
  with pytest.raises(
    vgg.WeightFileError, match=r'block3_conv2/kernel has shape \(3, 3, 256, 128\)'
  ):
    keras_h5.load_vgg19(path)
  path = tmp_path / 'plain.h5'
  with h5py.File(path, 'w') as f:
    f.create_dataset('x', data=np.zeros(3))
  with pytest.raises(vgg.WeightFileError, match='layer_names'):
    keras_h5.load_vgg19(path)


################################################################################
# torchvision port.


def torchvision_state_dict(params, indices=torchvision_vgg.FEATURE_INDICES):
  sd = {}
  for name, idx in zip(vgg.LAYER_NAMES, indices):
    sd[f'features.{idx}.weight'] = params[name]['kernel'].transpose(3, 2, 0, 1)  # HWIO -> OIHW
    sd[f'features.{idx}.bias'] = params[name]['bias']
  sd['classifier.0.weight'] = np.zeros((4, 5), np.float32)
  sd['classifier.6.bias'] = np.zeros(1000, np.float32)
  return sd


def test_torchvision_mapping(params):
  sd = torchvision_state_dict(params)
  out = torchvision_vgg.from_state_dict(sd)
  for name in vgg.LAYER_NAMES:
    np.testing.assert_array_equal(out[name]['kernel'], params[name]['kernel'])
    np.testing.assert_array_equal(out[name]['bias'], params[name]['bias'])
  # Element check of the transpose: HWIO[h, w, i, o] == OIHW[o, i, h, w].
  w = sd['features.21.weight']
  assert out['block4_conv2']['kernel'][0, 2, 7, 11] == w[11, 7, 0, 2]


def test_torchvision_errors(params):
  sd = torchvision_state_dict(params)
  del sd['features.34.weight']
  with pytest.raises(vgg.WeightFileError, match=r'vgg19-x\.pth.*missing features\.34\.weight'):
    torchvision_vgg.from_state_dict(sd, source='vgg19-x.pth')
  sd = torchvision_state_dict(params)
  del sd['features.30.bias']
  with pytest.raises(vgg.WeightFileError, match=r'missing features\.30\.bias'):
    torchvision_vgg.from_state_dict(sd)
  vgg16_idx = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
  with pytest.raises(vgg.WeightFileError, match=r'vgg16\.pth: has 13 conv layers'):
    torchvision_vgg.from_state_dict(_vgg16_sd(params, vgg16_idx), source='vgg16.pth')
  sd = torchvision_state_dict(params)
  sd['features.5.weight'] = sd['features.5.weight'][:, :32]
  with pytest.raises(vgg.WeightFileError, match=r'block2_conv1/kernel has shape'):
    torchvision_vgg.from_state_dict(sd)


def _vgg16_sd(params, indices):
  names = [n for n in vgg.LAYER_NAMES if not n.endswith('conv4')]
  sd = {}
  for name, idx in zip(names, indices):
    sd[f'features.{idx}.weight'] = params[name]['kernel'].transpose(3, 2, 0, 1)
    sd[f'features.{idx}.bias'] = params[name]['bias']
  return sd


def test_torchvision_real_pth_matches_torch(params):
  """A genuine torch.save file: the OIHW mapping reproduces torch's own block-1 activations."""
  path = FIXTURES / 'vgg19_block1.pth'
  with pytest.raises(vgg.WeightFileError, match=r'missing features\.5\.weight') as e:
    torchvision_vgg.load_vgg19(path)
  assert str(path) in str(e.value)
  sd = torch_pth.load_state_dict(path)
  full = torchvision_state_dict(params)
  full.update({k: v for k, v in sd.items() if k.startswith('features.')})
  out = torchvision_vgg.from_state_dict(full)
  ref = np.load(FIXTURES / 'vgg19_block1_ref.npz')
  x = ref['x'].transpose(0, 2, 3, 1)
  with jax.default_matmul_precision('highest'):
    y = vgg.VGG19(outputs=('relu1_2',)).apply({'params': out}, x)['relu1_2']
  np.testing.assert_allclose(y, ref['y'].transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_torchvision_unreadable(tmp_path):
  path = tmp_path / 'vgg19-dcbb9e9d.pth'
  path.write_bytes(b'PK\x03\x04 truncated')
  with pytest.raises(vgg.WeightFileError, match='cannot read') as e:
    torchvision_vgg.load_vgg19(path)
  assert str(path) in str(e.value)


################################################################################
# Preprocessing and download.


def test_preprocessing():
  rgb = np.array([[[[10.0, 20.0, 30.0], [255.0, 0.0, 128.0]]]], np.float32)
  keras = vgg_weights.PREPROCESSING['keras']
  assert (keras.channel_order, keras.scale) == ('BGR', 1.0)
  want = np.stack([rgb[..., 2] - 103.939, rgb[..., 1] - 116.779, rgb[..., 0] - 123.68], -1)
  np.testing.assert_allclose(keras.preprocess(rgb), want, rtol=1e-6)
  tv = vgg_weights.PREPROCESSING['torchvision']
  assert (tv.channel_order, tv.scale) == ('RGB', 1 / 255)
  want = (rgb / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
  np.testing.assert_allclose(tv.preprocess(rgb), want, rtol=1e-5)
  for prep in (keras, tv):
    np.testing.assert_allclose(prep.deprocess(prep.preprocess(rgb)), rgb, atol=1e-3)
    assert float(jnp.max(prep.deprocess(prep.preprocess(rgb) + 1e3))) == 255.0
    assert float(jnp.max(prep.deprocess(prep.preprocess(rgb) + 1e3, clip=False))) > 255.0


def _md5(path):
  return hashlib.md5(pathlib.Path(path).read_bytes()).hexdigest()


def test_download_file_url_and_load(tmp_path, monkeypatch, keras_file, loaded):
  monkeypatch.setattr(vgg_weights, 'KERAS_URL', keras_file.as_uri())
  monkeypatch.setattr(vgg_weights, 'KERAS_MD5', _md5(keras_file))
  monkeypatch.setattr(vgg_weights, 'KERAS_BYTES', keras_file.stat().st_size)
  monkeypatch.setenv('JAXSTYLE_CACHE', str(tmp_path / 'cache'))
  params, prep = vgg_weights.get_vgg19('keras')
  dest = tmp_path / 'cache' / vgg_weights.KERAS_FILE
  assert dest.read_bytes() == keras_file.read_bytes()
  # No temp file left; the sidecar records the hash computed while downloading.
  assert sorted(os.listdir(tmp_path / 'cache')) == [
    vgg_weights.KERAS_FILE,
    vgg_weights.KERAS_FILE + '.verified.json',
  ]
  assert prep.channel_order == 'BGR'
  np.testing.assert_array_equal(params['block5_conv2']['kernel'], loaded['block5_conv2']['kernel'])

  # Second use reads the cache and never opens a URL.
  def no_network(*a, **k):
    raise AssertionError('downloaded although the file is cached')

  monkeypatch.setattr(urllib.request, 'urlopen', no_network)
  params, _ = vgg_weights.get_vgg19('keras')
  assert len(params) == 16


def test_download_md5_mismatch(tmp_path, keras_file):
  dest = tmp_path / 'c' / 'w.h5'
  with pytest.raises(vgg_weights.WeightDownloadError, match='MD5 mismatch'):
    vgg_weights.download(keras_file.as_uri(), str(dest), md5='0' * 32, progress=False)
  assert os.listdir(dest.parent) == []  # temp file deleted, nothing under the final name
  sha = hashlib.sha256(keras_file.read_bytes()).hexdigest()
  vgg_weights.download(keras_file.as_uri(), str(dest), sha256_prefix=sha[:8], progress=False)
  assert dest.exists()


def test_offline_error(tmp_path, monkeypatch):
  def offline(*a, **k):
    raise urllib.error.URLError('Name or service not known')

  monkeypatch.setattr(urllib.request, 'urlopen', offline)
  with pytest.raises(vgg_weights.WeightDownloadError) as e:
    vgg_weights.get_vgg19('keras', cache_dir=tmp_path)
  msg = str(e.value)
  assert vgg_weights.KERAS_URL in msg and '--vgg19 PATH' in msg
  assert str(tmp_path / vgg_weights.KERAS_FILE) in msg
  assert os.listdir(tmp_path) == []
  with pytest.raises(vgg_weights.WeightDownloadError, match='downloads disabled'):
    vgg_weights.get_vgg19('keras', cache_dir=tmp_path, download=False)


def test_get_vgg19_explicit_paths(tmp_path, keras_file):
  # Random weights under another name: not checksum-checked (tests/nst/test_weights.py covers that).
  mine = tmp_path / 'my_vgg19.h5'
  shutil.copy(keras_file, mine)
  params, prep = vgg_weights.get_vgg19('keras', path=mine, download=False)
  assert prep.source == 'keras' and len(params) == 16
  copy = tmp_path / 'block1.pth'
  shutil.copy(FIXTURES / 'vgg19_block1.pth', copy)
  with pytest.raises(vgg.WeightFileError, match=str(copy)):
    vgg_weights.get_vgg19('torchvision', path=copy)
  with pytest.raises(ValueError, match='unknown VGG19 weight source'):
    vgg_weights.get_vgg19('caffe', path=copy)


def test_bfloat16_compute(params):
  x = np.random.default_rng(3).uniform(-100, 100, (1, 16, 16, 3)).astype(np.float32)
  f32 = vgg.VGG19(outputs=('relu2_1',)).apply({'params': params}, x)['relu2_1']
  bf16 = jax.jit(
    lambda p, x: vgg.VGG19(outputs=('relu2_1',), dtype=jnp.bfloat16).apply({'params': p}, x)
  )(params, x)['relu2_1']
  assert bf16.dtype == jnp.bfloat16
  assert float(jnp.max(jnp.abs(bf16.astype(jnp.float32) - f32))) < 0.05 * float(jnp.max(f32))
