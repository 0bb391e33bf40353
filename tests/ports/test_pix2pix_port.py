"""pix2pix generator port: torch parity of the translated image in both inference modes, the running
statistics after a batch-statistics forward, and the full-size layout of the published files.

Fixtures: tests/fixtures/make_pix2pix_fixture.py (torch, float64 forward from the stored float32
weights) wrote pth/pix2pix_G.pth (U-Net-256 structure, ngf 4) and pix2pix_ref.npz.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import checkpoint, cli, image_io
from jaxstyle.models import unet256
from jaxstyle.ports import pix2pix, pretrained, torch_pth
from jaxstyle.ports.torch_pickle import CheckpointFormatError

FIX = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'fixtures')
PTH = os.path.join(FIX, 'pth', 'pix2pix_G.pth')


@pytest.fixture(scope='module')
def ref():
  with np.load(os.path.join(FIX, 'pix2pix_ref.npz')) as z:
    return {k: z[k] for k in z.files}


@pytest.fixture(scope='module')
def ported():
  return pix2pix.generator_from_pth(PTH)


def _translate(cfg, variables, x8, train):
  net = pix2pix.make_generator(cfg)
  x = image_io.to_float(x8)
  with jax.default_matmul_precision('highest'):
    if train:  # batch statistics, dropout off; the running statistics come back updated
      y, new = net.apply(variables, x, train=True, dropout=False, mutable=['batch_stats'])
      return image_io.to_uint8(np.asarray(y)), new['batch_stats']
    return image_io.to_uint8(np.asarray(net.apply(variables, x, train=False, dropout=False))), None


# Error model: float32 convs (HIGHEST precision) against torch's float64 forward of the same
# float32 weights differ by ~1e-5 relative after 16 layers and 13 batch norms; the image is rounded
# to 8 bits, so a value near a rounding boundary may land one level away: |diff| <= 1 (= 1/255),
# the bound. Pixels one level off must also be rare (< 1 %), or the port is wrong.
@pytest.mark.parametrize('mode', ['eval', 'batch'])
def test_translate_parity_both_modes(ref, ported, mode):
  variables, cfg = ported
  assert (cfg.num_downs, cfg.gen_filters, cfg.in_channels, cfg.out_channels) == (8, 4, 3, 3)
  y, _ = _translate(cfg, variables, ref['x'], train=mode == 'batch')
  want = ref[f'y_{mode}']
  diff = np.abs(y.astype(int) - want)
  assert diff.max() <= 1 and (diff > 0).mean() < 0.01
  # The two modes differ, so each comparison tells which statistics were used.
  assert np.abs(ref['y_eval'].astype(int) - ref['y_batch']).mean() > 10


def test_running_statistics_after_a_batch_forward(ref, ported):
  """Ported stats feed torch's update rule (momentum 0.1, unbiased variance) as torch's do."""
  variables, cfg = ported
  _, stats = _translate(cfg, variables, ref['x'], train=True)
  names = unet256.torch_names(8)
  n = 0
  for name, s in stats.items():
    for leaf, key in (('mean', 'running_mean'), ('var', 'running_var')):
      # float32 statistics of ~1e5 values vs torch's float64: ~1e-6 relative, 1e-4 is ample.
      np.testing.assert_allclose(s[leaf], ref[f'{names[name]}.{key}'], rtol=1e-4, atol=1e-5)
      n += 1
  assert n == 2 * 13


def test_full_size_layout_and_counts(ref):
  """The published files' (ngf 64) keys and shapes map onto UnetGenerator() exactly."""
  full = json.loads(str(ref['full']))
  keys = {k: tuple(v) for k, v in full['keys'].items() if not k.endswith('num_batches_tracked')}
  assert pix2pix._layout(8, 64, 3, 3) == keys
  shapes = jax.eval_shape(
    lambda: unet256.UnetGenerator().init(
      {'params': jax.random.key(0), 'dropout': jax.random.key(1)},
      jnp.zeros((1, 256, 256, 3)),
      train=True,
      dropout=True,
    )
  )
  for name, prefix in unet256.torch_names(8).items():
    leaves = shapes['params'][name]
    if 'norm' in name:
      assert leaves['scale'].shape == keys[prefix + '.weight']
      assert shapes['batch_stats'][name]['var'].shape == keys[prefix + '.running_var']
    else:
      assert leaves['kernel'].shape == tuple(np.array(keys[prefix + '.weight'])[[2, 3, 1, 0]])
  count = sum(x.size for x in jax.tree.leaves(shapes['params']))
  stats = sum(x.size for x in jax.tree.leaves(shapes['batch_stats']))
  assert (count, stats) == (full['params'], full['buffers'])
  # The size check of a published pix2pix download is these tensors' float32 bytes.
  low, _ = pretrained.Published('pix2pix', 'facades_label2photo').size_range()
  assert low == 4 * (count + stats)


def test_key_variants_and_wrong_networks(ported):
  sd = torch_pth.load_state_dict(PTH)
  variants = {'module.' + k: v for k, v in sd.items()}
  variants['module.model.model.1.model.2.num_batches_tracked'] = np.array(3)
  got, _ = pix2pix.generator_from_state_dict(variants)
  jax.tree.map(np.testing.assert_array_equal, got, ported[0])
  missing = {k: v for k, v in sd.items() if k != 'model.model.1.model.2.running_var'}
  with pytest.raises(ValueError, match=r'missing keys \(1\): model.model.1.model.2.running_var'):
    pix2pix.generator_from_state_dict(missing)
  with pytest.raises(CheckpointFormatError, match='not a junyanz UnetGenerator'):
    pix2pix.generator_from_pth(os.path.join(FIX, 'pth', 'G.pth'))


def test_port_weights_cli(tmp_path, capsys, ported):
  assert cli.main(['port-weights', PTH, '-o', str(tmp_path / 'p')]) == 0  # kind guessed
  assert 'pix2pix-G' in capsys.readouterr().out
  variables, meta = checkpoint.load_params(str(tmp_path / 'p'))
  jax.tree.map(np.testing.assert_array_equal, variables, ported[0])
  assert meta['kind'] == 'pix2pix-G' and meta['model_cfg']['gen_filters'] == 4
  assert cli.main(['port-weights', os.path.join(FIX, 'pth', 'G.pth'), '-o', str(tmp_path / 'q'),
                   '--kind', 'pix2pix-G']) == 2  # fmt: skip
  assert 'not a junyanz UnetGenerator' in capsys.readouterr().err


def test_translate_weights_folder_of_a_port(tmp_path, capsys, ref):
  """`translate --weights DIR` of a pix2pix port runs the pix2pix task's translate (--eval)."""
  from PIL import Image

  assert cli.main(['port-weights', PTH, '-o', str(tmp_path / 'p')]) == 0
  Image.fromarray(ref['x'][0]).save(tmp_path / 'x.png')
  args = ['translate', '--weights', str(tmp_path / 'p'), str(tmp_path / 'x.png')]
  assert cli.main([*args, '-o', str(tmp_path / 'o'), '--eval']) == 0
  assert '(p, --eval: running statistics)' in capsys.readouterr().out
  got = np.asarray(Image.open(tmp_path / 'o' / 'x.png')).astype(int)
  assert np.abs(got - ref['y_eval'][0]).max() <= 1  # the error model above
