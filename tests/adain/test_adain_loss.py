"""The AdaIN training loss against an independent float64 torch rendering.

tests/fixtures/make_adain_loss_fixture.py (torch, float64) stores the reference loss terms (max and
average pooling) and two decoder gradients (average pooling) of seeded random weights on seeded
[0, 255) images; both sides rebuild the weights with random_weights.py, the decoder through the
AdaIN port (`models.adain.params_from_state_dict`), and the trainer's own loss (`adain.step`) runs
here. Error model (docs/development.md, "Tolerances"): float32 against the exact answer; the loss
passes ≤ 19 convs (encoder to relu4_1, decoder, encoder again) of fan-in ≤ 4,608, so ≤
19·sqrt(4608)·u ≈ 8e-5 of the terms' magnitudes, plus Winograd's ~2e-5 per frozen conv on CPU
(9 to relu4_1); gradients pass the layers twice more (backward): 3× that.
"""

import json

import jax
import numpy as np
import pytest
from helpers import FIXTURES
from random_weights import random_images, random_state_dict

from jaxstyle.adain import presets
from jaxstyle.adain import step as adain_step
from jaxstyle.models import adain as adain_model
from jaxstyle.models.vgg import LAYER_NAMES, frozen_kernels
from jaxstyle.nst.weights import PREPROCESSING

pytestmark = pytest.mark.slow  # two compiles of encoder + decoder + encoder: CI only
LOSS_TOL = 3e-4  # 8e-5 + 9 · 2e-5 (Winograd), rounded up; measured ≤ 6e-7 (AVX2 EPYC)
GRAD_TOL = 1e-3  # 3× LOSS_TOL; measured ≤ 6e-7


def rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope='module')
def case():
  ref = np.load(FIXTURES / 'adain_loss_ref.npz')
  meta = json.loads(str(ref['meta']))
  dec_sd = random_state_dict(
    [(k, tuple(s)) for k, s in meta['decoder_layout']], meta['decoder_seed']
  )
  vgg_sd = random_state_dict([(k, tuple(s)) for k, s in meta['vgg_layout']], meta['vgg_seed'])
  decoder = adain_model.params_from_state_dict(dec_sd, 'decoder')
  trunk = {
    name: {
      'kernel': vgg_sd[f'convs.{i}.weight'].transpose(2, 3, 1, 0),
      'bias': vgg_sd[f'convs.{i}.bias'],
    }
    for i, name in enumerate(LAYER_NAMES[:9])  # block1_conv1 .. block4_conv1
  }
  p = PREPROCESSING['keras']
  vgg = {'input_conv': adain_model.input_conv_params(p.channel_order, p.scale, p.mean, p.std)}
  content = random_images(tuple(meta['content'][0]), meta['content'][1], high=255.0)
  style = random_images(tuple(meta['style'][0]), meta['style'][1], high=255.0)
  return dict(
    ref=ref, meta=meta, decoder=decoder, vgg={**vgg, **trunk}, trunk=trunk, x=(content, style)
  )


def _config(meta, pool):
  c = presets.adain_base()
  c.vgg.pool = pool
  c.loss.update(meta['weights'])
  c.data.load_size = c.data.image_size = meta['content'][0][1]
  return presets.validate(c)


@pytest.mark.parametrize('pool', ['max', 'avg'])
def test_loss_matches_torch_float64(case, pool):
  config = _config(case['meta'], pool)
  hw = case['x'][0].shape[1:3]
  frozen = {'vgg': case['vgg'], 'kernels_t': frozen_kernels(case['trunk'], hw, 'auto')}
  loss_fn = adain_step.make_loss(config)
  ref = case['ref']

  def total_fn(params, frozen, content, style):  # arguments, not constants to fold
    total, (aux, _) = loss_fn(params, content, style, frozen)
    return total, aux

  args = (case['decoder'], frozen, *case['x'])
  if pool == 'max':
    total, aux = jax.jit(total_fn)(*args)
  else:
    (total, aux), grads = jax.jit(jax.value_and_grad(total_fn, has_aux=True))(*args)
    # The port maps torch '1.weight' to conv_0 and '28.weight' to conv_8 (kernel HWIO).
    first = np.asarray(grads['conv_0']['kernel']).transpose(3, 2, 0, 1)[:1]
    last = np.asarray(grads['conv_8']['kernel']).transpose(3, 2, 0, 1)
    assert rel(first, ref['avg_grad_first']) < GRAD_TOL
    assert rel(last, ref['avg_grad_last']) < GRAD_TOL
  assert float(aux['loss_content']) == pytest.approx(float(ref[f'{pool}_content']), rel=LOSS_TOL)
  assert float(aux['loss_style']) == pytest.approx(float(ref[f'{pool}_style']), rel=LOSS_TOL)
  assert float(total) == pytest.approx(float(ref[f'{pool}_total']), rel=LOSS_TOL)
