"""AdaIN ports and stylisation vs pytorch-AdaIN (issue #27): tests/fixtures/adain_ref.npz.

The fixture (make_adain_fixture.py, torch in peer-venv) holds float64 torch outputs of the
reference's decoder and VGG on seeded random weights; here the same weights are regenerated,
written as `.pth` files (torch_save_writer: the bytes torch.save writes) and converted by
`jaxstyle port-weights`, so the reader, the renaming and the network are checked together.

Error model: ours computes in float32 (u = 6e-8). A conv of fan-in n sums n products, whose float32
error grows like sqrt(n)·u of the terms' magnitude; through L layers the relative error of the
output (to its largest value, activations O(1) here) is about L·sqrt(n)·u: the decoder alone
9·sqrt(4608)·u ≈ 4e-5, the encoder to relu4_1 10·sqrt(2304)·u ≈ 3e-5, a full stylisation (encoder,
AdaIN, decoder) ≈ 8e-5. AdaIN divides by a std of O(1) (well-conditioned). Bounds are 4x those.
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import FIXTURES
from random_weights import random_images, random_state_dict
from torch_save_writer import write_state_dict

from jaxstyle import cli
from jaxstyle.adain.inference import AdainModel, coral
from jaxstyle.models import adain as A

REF = np.load(FIXTURES / 'adain_ref.npz')
META = json.loads(str(REF['meta']))


def rel_err(ours, ref):
  ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
  assert ours.shape == ref.shape
  return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


def image(name):
  shape, seed = META['images'][name]
  return random_images(tuple(shape), seed)


@pytest.fixture(scope='module')
def model(tmp_path_factory):
  """The fixture's weights as .pth files, ported by the CLI, loaded as for `stylize --model`."""
  tmp = tmp_path_factory.mktemp('adain')
  out = {}
  for net, fmt in (('decoder', 'zip'), ('vgg', 'legacy')):
    layout = [(k, tuple(s)) for k, s in META[f'{net}_layout']]
    pth = write_state_dict(tmp / f'{net}.pth', random_state_dict(layout, META['seeds'][net]), fmt)
    out[net] = str(tmp / f'{net}_port')
    assert cli.main(['port-weights', pth, '-o', out[net]]) == 0  # the kind is guessed from keys
  return AdainModel.load(out['decoder'], encoder=out['vgg'])


def test_fixture_layout_is_ours():
  """The reference's keys, in order, with the shapes our renaming expects; the count is torch's."""
  assert [(k, tuple(s)) for k, s in META['decoder_layout']] == list(
    A.decoder_torch_shapes().items()
  )
  assert [(k, tuple(s)) for k, s in META['vgg_layout']] == list(A.vgg_torch_shapes().items())
  assert META['decoder_parameters'] == A.NUM_DECODER_PARAMS


def test_decoder_matches_torch(model):
  shape, seed = META['images']['decoder_in']
  x = random_images(tuple(shape), seed)
  ours = model.decoder.apply({'params': model.decoder_params}, jnp.asarray(x))
  assert rel_err(ours, REF['decoder']) < 2e-4


def test_encoder_matches_torch_on_odd_sizes(model):
  """relu1_1..relu4_1 of a 27x21 image: reflection padding and ceil-mode pools as the reference."""
  feats = A.encode(model.encoder_params, jnp.asarray(image('odd')), 'normalised')
  for i in range(1, 5):
    assert rel_err(feats[f'relu{i}_1'], REF[f'encoder_odd_relu{i}_1']) < 1.5e-4, i


@pytest.mark.slow
def test_stylisation_with_alpha_and_interpolation_match_torch(model):
  enc = lambda name: model._encode(model.encoder_params, jnp.asarray(image(name)))
  run = lambda feats, w, alpha: model._transfer(
    model.decoder_params, model.encoder_params, jnp.asarray(image('content')), tuple(feats),
    jnp.asarray(w, jnp.float32), jnp.float32(alpha), None,
  )  # fmt: skip
  assert rel_err(run([enc('style_a')], [1.0], META['alpha']), REF['alpha']) < 3e-4
  w = np.asarray(META['interp_weights']) / sum(META['interp_weights'])
  mixed = run([enc('style_a'), enc('style_b')], w, META['interp_alpha'])
  assert rel_err(mixed, REF['interpolation']) < 3e-4


def test_coral_matches_torch():
  """float64 both sides: the only difference is the order of operations (1e-12 of values O(1))."""
  ours = coral(image('style_a')[0], image('content')[0])
  assert rel_err(ours, REF['coral']) < 1e-6  # the fixture is stored as float32 (u = 6e-8)
