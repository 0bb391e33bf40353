"""CUT's netG / netD / netF state dicts → our params (jaxstyle/ports/cut.py, issue #25).

The small files in tests/fixtures/pth/cut_*.pth and the full-size key layouts in cut_ref.npz come
from tests/fixtures/make_cut_fixture.py, whose torch nets carry the reference repository's
`nn.Sequential` layouts and `.filt` buffers (their outputs are compared in tests/models/test_cut.py).
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import FIXTURES
from torch_save_writer import write_state_dict

from jaxstyle import checkpoint, cli, errors, models, networks
from jaxstyle.models import cut
from jaxstyle.ports import cli as port_cli
from jaxstyle.ports import cut as cut_port
from jaxstyle.ports import torch_pth

REF = np.load(FIXTURES / 'cut_ref.npz')
FULL = json.loads(str(REF['full']))
PTH = FIXTURES / 'pth'


def full_size_sd(name: str) -> dict[str, np.ndarray]:
  """A state dict with the published file's keys and shapes: seeded weights, the real filters."""
  rng = np.random.default_rng(0)
  sd = {}
  for key, shape in FULL['layouts'][name].items():
    if key.endswith('.filt'):
      filt = cut_port.BLUR_DOWN if shape[-1] == 3 else cut_port.BLUR_UP
      sd[key] = np.broadcast_to(filt, shape).astype(np.float32)
    else:
      sd[key] = rng.standard_normal(shape).astype(np.float32)
  return sd


def shapes(tree):
  return jax.tree.map(lambda a: tuple(a.shape), tree)


def test_published_layouts_port_onto_the_networks():
  """ResNet-9 ngf 64, the 70 px D ndf 64 and F of 256: every key used, the trees our nets make."""
  g_params, g_cfg = cut_port.generator_from_state_dict(full_size_sd('G'))
  d_params, d_cfg = cut_port.discriminator_from_state_dict(full_size_sd('D'))
  f_params, f_cfg = cut_port.patch_sampler_from_state_dict(full_size_sd('F'))
  assert (g_cfg.generator, g_cfg.gen_filters, g_cfg.n_blocks, g_cfg.out_channels) == (
    'resnet_antialias',
    64,
    9,
    3,
  )
  assert (d_cfg.disc_filters, d_cfg.n_layers, f_cfg.mlp_features) == (64, 3, 256)
  counts = [sum(a.size for a in jax.tree.leaves(p)) for p in (g_params, d_params, f_params)]
  assert counts == [FULL['param_counts'][n] for n in 'GDF']
  cfg = networks.cut_model()
  g, d, f = models.make_generator(cfg), cut.make_discriminator(cfg), cut.make_patch_sampler(cfg)
  x = jnp.zeros((1, 32, 32, 3))
  pg = jax.eval_shape(g.init, jax.random.key(0), x)
  feats = jax.eval_shape(lambda p: g.apply(p, x, cut.NCE_LAYERS), pg)
  pf = jax.eval_shape(lambda fs: f.init(jax.random.key(0), fs, 8, rng=jax.random.key(1)), feats)
  assert shapes(pg['params']) == shapes(g_params)
  assert shapes(jax.eval_shape(d.init, jax.random.key(0), x)['params']) == shapes(d_params)
  assert shapes(pf['params']) == shapes(f_params)
  # A conv lands transposed to HWIO, a Linear to (in, out).
  sd = full_size_sd('G')
  np.testing.assert_array_equal(
    g_params['down_1']['kernel'], sd['model.8.weight'].transpose(2, 3, 1, 0)
  )
  np.testing.assert_array_equal(
    g_params['block_3']['conv_1']['bias'], sd['model.15.conv_block.5.bias']
  )
  np.testing.assert_array_equal(
    g_params['up_0']['kernel'], sd['model.22.weight'].transpose(2, 3, 1, 0)
  )
  fsd = full_size_sd('F')
  np.testing.assert_array_equal(f_params['mlp_1']['dense_0']['kernel'], fsd['mlp_1.0.weight'].T)
  np.testing.assert_array_equal(f_params['mlp_4']['dense_1']['bias'], fsd['mlp_4.2.bias'])


def test_mismatches_are_named():
  sd = full_size_sd('G')
  missing = {k: v for k, v in sd.items() if k != 'model.26.bias'}
  with pytest.raises(ValueError, match=r'missing keys \(1\): model\.26\.bias'):
    cut_port.generator_from_state_dict(missing)
  blurred = dict(sd, **{'model.7.filt': np.ones((128, 1, 3, 3), np.float32)})
  with pytest.raises(ValueError, match=r'model\.7\.filt: not the reference blur filter 3x3'):
    cut_port.generator_from_state_dict(blurred)
  # Without its buffers (saved by hand) the G still ports: the filters are fixed.
  bare = {k: v for k, v in sd.items() if not k.endswith('.filt')}
  assert cut_port.generator_from_state_dict(bare)[1].n_blocks == 9
  # junyanz's CycleGAN G (stride-2 convs at 4 and 7) is not CUT's.
  junyanz_g = torch_pth.load_state_dict(PTH / 'G.pth')
  with pytest.raises(ValueError, match='does not match a CUT ResnetGenerator'):
    cut_port.generator_from_state_dict(junyanz_g)
  d = full_size_sd('D')
  with pytest.raises(ValueError, match=r'model\.11\.weight: file \(1, 2\)'):
    cut_port.discriminator_from_state_dict(dict(d, **{'model.11.weight': np.ones((1, 2))}))
  f = full_size_sd('F')
  with pytest.raises(ValueError, match=r'mlp_2\.2\.weight: file \(256, 255\)'):
    cut_port.patch_sampler_from_state_dict(dict(f, **{'mlp_2.2.weight': np.ones((256, 255))}))
  with pytest.raises(ValueError, match='not a CUT PatchSampleF'):
    cut_port.patch_sampler_from_state_dict(d)


def test_kinds_are_guessed_from_the_keys():
  for name in 'GDF':
    assert port_cli._guess_kind(str(PTH / f'cut_{name}.pth')) == f'cut-{name}'
  assert port_cli._guess_kind(str(PTH / 'G.pth')) == 'junyanz-G'  # CycleGAN's still junyanz
  assert port_cli._guess_kind(str(PTH / 'D.pth')) == 'junyanz-D'


def test_port_weights_cli_round_trip(tmp_path, capsys):
  """`jaxstyle port-weights` on netG (a DataParallel-prefixed copy, guessed kind) gives a weight
  directory whose config rebuilds the generator: the fixture's image within test_cut's bound."""
  sd = {'module.' + k: v for k, v in torch_pth.load_state_dict(PTH / 'cut_G.pth').items()}
  src = write_state_dict(tmp_path / 'latest_net_G.pth', sd, 'zip')
  assert cli.main(['port-weights', src, '-o', str(tmp_path / 'G')]) == 0
  assert 'cut-G' in capsys.readouterr().out
  params, meta = checkpoint.load_params(str(tmp_path / 'G'))
  assert meta['kind'] == 'cut-G' and meta['model_cfg']['generator'] == 'resnet_antialias'
  cfg = networks.cut_model(**{**meta['model_cfg'], 'conv_impl': 'xla'})
  y = jax.jit(models.make_generator(cfg).apply)({'params': params}, REF['g/x2'])
  # Error model in tests/models/test_cut.py: 1e-4 of the largest value.
  assert np.max(np.abs(np.asarray(y) - REF['g/y2'])) < 1e-4 * np.max(np.abs(REF['g/y2']))
  assert cli.main(['port-weights', str(PTH / 'cut_F.pth'), '-o', str(tmp_path / 'F')]) == 0
  assert checkpoint.load_params(str(tmp_path / 'F'))[1]['model_cfg']['mlp_features'] == 32
  bad = str(PTH / 'cut_D.pth')
  assert cli.main(['port-weights', bad, '-o', str(tmp_path / 'X'), '--kind', 'cut-G']) == 2
  err = capsys.readouterr().err
  assert bad in err and 'not a CUT ResnetGenerator' in err and not (tmp_path / 'X').exists()


def test_translate_loads_cut_generators(tmp_path):
  """`translate --weights` takes the reference's latest_net_G.pth and its port-weights folder."""
  from jaxstyle.cyclegan import translate

  folder = tmp_path / 'G'
  assert cli.main(['port-weights', str(PTH / 'cut_G.pth'), '-o', str(folder)]) == 0
  for source in (str(PTH / 'cut_G.pth'), str(folder)):
    net, params, cfg = translate.load_generator(weights=source)
    assert cfg.generator == 'resnet_antialias' and cfg.n_blocks == 6
    y = jax.jit(net.clone(conv_impl='xla').apply)({'params': params}, REF['g/x2'])
    assert np.max(np.abs(np.asarray(y) - REF['g/y2'])) < 1e-4 * np.max(np.abs(REF['g/y2']))
  with pytest.raises(errors.UserError, match='cut_D.pth: not a junyanz ResnetGenerator'):
    translate.load_generator(weights=str(PTH / 'cut_D.pth'))
