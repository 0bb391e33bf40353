"""Our networks equal PyTorch junyanz nets (and torch emulations of the book's Keras nets).

The reference outputs come from tests/fixtures/torch_parity.npz, written by
tests/fixtures/make_torch_parity.py (float64 torch forward on float32 weights); torch is never
imported here.
"""

import json
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import models
from jaxstyle.cyclegan import presets

FIXTURE = pathlib.Path(__file__).parent.parent / 'fixtures' / 'torch_parity.npz'
# Error model: two float32 implementations (torch's fixture, ours) of ≤ 14 convs with fan-in ≤
# 4·4·32, each off by ≤ 14·sqrt(512)·u ≈ 2e-5 of the outputs' scale (~1: tanh, PatchGAN logits);
# a wrong key mapping or padding is off by O(0.1).
TOL = 5e-5
NETS = ['resnet', 'patchgan', 'resnet_book', 'unet_book', 'patchgan_book']


def junyanz_name(key: str, cfg: dict) -> tuple[str, ...]:
  """junyanz state_dict module prefix → our submodule path (docs/design/cyclegan.md table)."""
  m = re.fullmatch(r'model\.(\d+)(?:\.conv_block\.(\d+))?', key)
  assert m, key
  idx = int(m.group(1))
  if cfg.get('generator') == 'resnet':
    n = cfg['n_blocks']
    if m.group(2) is not None:
      return (f'block_{idx - 10}', {'1': 'conv_0', '5': 'conv_1'}[m.group(2)])
    return (
      {1: 'stem', 4: 'down_0', 7: 'down_1', 10 + n: 'up_0', 13 + n: 'up_1', 17 + n: 'head'}[idx],
    )
  n = cfg['n_layers']  # NLayerDiscriminator: conv, lrelu, then (conv, norm, lrelu) × n, conv
  names = {0: 'conv_0', 2 + 3 * n: 'head'} | {2 + 3 * (i - 1): f'conv_{i}' for i in range(1, n + 1)}
  return (names[idx],)


def to_params(sd: dict[str, np.ndarray], cfg: dict) -> dict:
  """A torch state_dict → our params. Conv OIHW and ConvT (Cin,Cout,kH,kW) both transpose(2,3,1,0)."""
  params: dict = {}
  for key, value in sd.items():
    prefix, leaf = key.rsplit('.', 1)
    if prefix.startswith('model.'):
      path = junyanz_name(prefix, cfg)
    else:  # the book emulations already use our names
      path = tuple(prefix.split('.'))
    node = params
    for part in path:
      node = node.setdefault(part, {})
    node[{'weight': 'kernel', 'bias': 'bias'}[leaf]] = (
      value.transpose(2, 3, 1, 0) if leaf == 'weight' else value
    )
  return params


def build(cfg: dict):
  fields = {k: v for k, v in cfg.items() if k != 'n_sizes'}
  mcfg = presets.reference_model(**fields)
  return models.make_generator(mcfg) if 'generator' in cfg else models.make_discriminator(mcfg)


@pytest.fixture(scope='module')
def fixture():
  data = np.load(FIXTURE)
  return {k: data[k] for k in data.files}, json.loads(str(data['meta']))


def shapes(tree):
  return jax.tree.map(lambda a: tuple(a.shape), tree)


@pytest.mark.parametrize('name', NETS)
def test_matches_torch(fixture, name):
  arrays, meta = fixture
  cfg = meta[name]
  sd = {k[len(name) + 4 :]: v for k, v in arrays.items() if k.startswith(f'{name}/sd/')}
  params = to_params(sd, cfg)
  net = build(cfg)
  x0 = arrays[f'{name}/x0']
  expected = jax.eval_shape(net.init, jax.random.key(0), x0)['params']
  assert shapes(params) == shapes(expected)
  apply = jax.jit(net.apply)
  with jax.default_matmul_precision('highest'):
    for j in range(cfg['n_sizes']):
      x, y_ref = arrays[f'{name}/x{j}'], arrays[f'{name}/y{j}']
      y = np.asarray(apply({'params': params}, x))
      assert y.shape == y_ref.shape
      err = float(np.abs(y - y_ref).max())
      print(f'parity {name} {x.shape[1]}x{x.shape[2]}: max abs diff {err:.2e}')
      assert err <= TOL, (name, x.shape, err)


def test_resnet9_key_layout(fixture):
  """Every junyanz ResNet-9 key maps onto our tree with the right shape, and nothing is left over."""
  _, meta = fixture
  layout = meta['resnet9_layout']
  cfg = dict(generator='resnet', gen_filters=8, n_blocks=9)
  params = to_params({k: np.zeros(s, np.float32) for k, s in layout.items()}, cfg)
  net = build(cfg)
  expected = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)))['params']
  assert shapes(params) == shapes(expected)
  assert 'model.19.weight' in layout and 'model.26.bias' in layout  # ups / head at N=9
