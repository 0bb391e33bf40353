"""Network shapes, exact parameter counts (docs/design/), pinned names, init, bf16 and the registry."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import config_lib, models
from jaxstyle.cyclegan import presets


def gen(**kw):
  cfg = presets.reference_model(**kw)
  net = models.make_generator(cfg)
  return net, cfg


def disc(**kw):
  cfg = presets.reference_model(**kw)
  return models.make_discriminator(cfg), cfg


def count(params) -> int:
  return sum(math.prod(p.shape) for p in jax.tree.leaves(params))


def init_shapes(net, size=(128, 128), channels=3):
  x = jax.ShapeDtypeStruct((1, *size, channels), jnp.float32)
  params = jax.eval_shape(net.init, jax.random.key(0), x)['params']
  out = jax.eval_shape(net.apply, {'params': params}, x)
  return params, out


@pytest.mark.parametrize(
  'kw,expected',
  [
    (dict(generator='resnet'), 11_378_179),
    (dict(generator='resnet', n_blocks=6), 7_837_699),
    (dict(generator='resnet_book', gen_filters=32), 2_850_563),
    (dict(generator='unet_book', gen_filters=32), 1_545_411),
    (dict(generator='resnet', upsample='resize_conv'), 11_378_179),
  ],
)
def test_generator_param_counts(kw, expected):
  params, out = init_shapes(gen(**kw)[0])
  assert count(params) == expected
  assert out.shape == (1, 128, 128, 3) and out.dtype == jnp.float32


@pytest.mark.parametrize(
  'kw,expected,out128,out256',
  [
    (dict(discriminator='patchgan'), 2_764_737, 14, 30),
    (dict(discriminator='patchgan_book', disc_filters=32), 694_241, 16, 32),
    (dict(discriminator='patchgan_book', disc_filters=64), 2_764_737, 16, 32),
  ],
)
def test_discriminator_param_counts_and_patch(kw, expected, out128, out256):
  net = disc(**kw)[0]
  params, out = init_shapes(net)
  assert count(params) == expected
  assert out.shape == (1, out128, out128, 1)
  assert init_shapes(net, (256, 256))[1].shape == (1, out256, out256, 1)


@pytest.mark.parametrize('n_layers,out', [(2, 30), (4, 6)])
def test_patchgan_depth(n_layers, out):
  params, y = init_shapes(disc(n_layers=n_layers)[0])
  assert sorted(params) == sorted([f'conv_{i}' for i in range(n_layers + 1)] + ['head'])
  assert y.shape == (1, out, out, 1)
  assert params[f'conv_{n_layers}']['kernel'].shape[-1] == 64 * min(2**n_layers, 8)


def test_pinned_names():
  resnet, _ = init_shapes(gen(n_blocks=6)[0])
  assert sorted(resnet) == sorted(
    ['stem', 'down_0', 'down_1', 'up_0', 'up_1', 'head'] + [f'block_{i}' for i in range(6)]
  )
  assert all(sorted(resnet[f'block_{i}']) == ['conv_0', 'conv_1'] for i in range(6))
  for layer in jax.tree.leaves(resnet, is_leaf=lambda n: 'kernel' in n):
    assert sorted(layer) == ['bias', 'kernel']
  assert resnet['stem']['kernel'].shape == (7, 7, 3, 64)  # HWIO
  assert resnet['up_0']['kernel'].shape == (3, 3, 128, 256)  # ConvT: (kH, kW, Cout, Cin)
  book, _ = init_shapes(gen(generator='resnet_book', gen_filters=32)[0])
  assert sorted(book) == sorted(
    ['stem', 'down_0', 'down_1', 'up_0', 'up_1', 'head'] + [f'block_{i}' for i in range(9)]
  )
  unet, _ = init_shapes(gen(generator='unet_book', gen_filters=32)[0])
  assert sorted(unet) == sorted(
    [f'down_{i}' for i in range(4)] + [f'up_{i}' for i in range(3)] + ['head']
  )
  assert unet['head']['kernel'].shape == (4, 4, 64, 3)
  patch, _ = init_shapes(disc()[0])
  assert sorted(patch) == ['conv_0', 'conv_1', 'conv_2', 'conv_3', 'head']


def test_resize_conv_uses_plain_conv():
  params, _ = init_shapes(gen(upsample='resize_conv')[0])
  assert params['up_0']['kernel'].shape == (3, 3, 256, 128)  # HWIO, not the ConvT layout
  with pytest.raises(ValueError, match='upsample'):
    init_shapes(gen(upsample='bilinear')[0])


def test_channels_configurable():
  params, out = init_shapes(gen(out_channels=1, gen_filters=8)[0], channels=1)
  assert params['stem']['kernel'].shape[2] == 1 and out.shape == (1, 128, 128, 1)
  _, out = init_shapes(gen(generator='unet_book', gen_filters=8, out_channels=4)[0], channels=2)
  assert out.shape == (1, 128, 128, 4)


def test_generator_multiple_and_config():
  assert models.generator_multiple(presets.reference_model()) == 4
  assert models.generator_multiple(presets.reference_model(generator='resnet_book')) == 4
  assert models.generator_multiple(presets.reference_model(generator='unet_book')) == 16
  cfg = presets.reference_model()
  assert cfg.norm_eps == 1e-5 and cfg.eps_mode == 'var' and cfg.init == 'normal'
  assert cfg.init_gain == 0.02 and cfg.n_blocks == 9 and cfg.dtype == 'float32'
  with pytest.raises(config_lib.OverrideError, match="'ngf'"):
    presets.reference_model(ngf=64)
  with pytest.raises(ValueError, match='generator'):
    models.make_generator(presets.reference_model(generator='unet_256'))
  with pytest.raises(ValueError, match='discriminator'):
    models.make_discriminator(presets.reference_model(discriminator='pixel'))


# ------------------------------------------------------------------ real forwards (small nets)
# Params come from NumPy, not `net.init`: on CPU, compiling the per-parameter threefry draws of a
# whole net's init takes over a minute, while the forward compiles in seconds.
SMALL = {
  'resnet': dict(generator='resnet', gen_filters=4, n_blocks=2),
  'resnet_resize': dict(generator='resnet', gen_filters=4, n_blocks=2, upsample='resize_conv'),
  'resnet_book': dict(
    generator='resnet_book', gen_filters=4, n_blocks=2, norm_eps=1e-3, eps_mode='std'
  ),
  'unet_book': dict(
    generator='unet_book', gen_filters=4, init='keras', norm_eps=1e-3, eps_mode='std'
  ),
}


def numpy_params(net, shape, seed=0):
  abstract = jax.eval_shape(net.init, jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.float32))
  rng = np.random.default_rng(seed)
  return jax.tree.map(
    lambda a: (0.2 * rng.standard_normal(a.shape)).astype(np.float32), abstract['params']
  )


@pytest.fixture(scope='module')
def small_params():
  return {
    name: numpy_params(models.make_generator(presets.reference_model(**kw)), (1, 32, 32, 3))
    for name, kw in SMALL.items()
  }


@pytest.fixture(scope='module')
def inputs():
  return jax.random.uniform(jax.random.key(2), (2, 32, 48, 3), minval=-1, maxval=1)


@pytest.fixture(scope='module')
def f32_outputs(small_params, inputs):
  return {
    name: jax.jit(models.make_generator(presets.reference_model(**kw)).apply)(
      {'params': small_params[name]}, inputs
    )
    for name, kw in SMALL.items()
  }


@pytest.mark.parametrize('name', list(SMALL))
def test_generators_fully_convolutional(f32_outputs, name):
  y = f32_outputs[name]  # a 32×48 input, params initialised for 32×32
  assert y.shape == (2, 32, 48, 3)
  assert bool(jnp.all(jnp.abs(y) <= 1)) and float(y.std()) > 1e-3
  assert float(jnp.abs(y[0] - y[1]).max()) > 1e-4  # depends on the input


@pytest.mark.parametrize('name', ['resnet', 'resnet_book', 'unet_book'])
def test_bf16_forward(small_params, inputs, f32_outputs, name):
  net = models.make_generator(presets.reference_model(**SMALL[name], dtype='bfloat16'))
  y = jax.jit(net.apply)({'params': small_params[name]}, inputs)
  assert y.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(y)))
  err = float(jnp.abs(y - f32_outputs[name]).max())
  assert 0 < err < 0.15  # really ran in bf16, and tracks the float32 forward


@pytest.mark.parametrize('name', ['patchgan', 'patchgan_book'])
def test_discriminator_bf16_forward(name):
  cfg = presets.reference_model(discriminator=name, disc_filters=4, dtype='bfloat16')
  net = models.make_discriminator(cfg)
  x = jax.random.uniform(jax.random.key(4), (2, 32, 48, 3), minval=-1, maxval=1)
  abstract = jax.eval_shape(net.init, jax.random.key(0), x)['params']
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(abstract))  # params stay float32
  y = jax.jit(net.apply)({'params': numpy_params(net, x.shape)}, x)
  assert y.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(y)))
  assert y.shape == ((2, 2, 4, 1) if name == 'patchgan' else (2, 4, 6, 1))
  assert float(y.std()) > 1e-3


def test_init_from_config():
  """The config's init reaches the layers (the distributions are tested in test_layers.py)."""
  net = models.make_generator(presets.reference_model(generator='unet_book', init='keras'))
  assert net.init_scheme == 'keras'
  net = models.make_discriminator(presets.reference_model(init_gain=0.05))
  assert net.init_scheme == 'normal' and net.init_gain == 0.05
  # One real init of a tiny D: N(0, gain) kernels, zero biases.
  tiny = models.make_discriminator(
    presets.reference_model(disc_filters=8, n_layers=1, init_gain=0.05)
  )
  # An 'rbg' key: the default threefry draws take ~30 s to compile on a CPU runner.
  params = jax.jit(tiny.init)(jax.random.key(0, impl='rbg'), jnp.zeros((1, 16, 16, 3)))['params']
  assert all(float(jnp.abs(layer['bias']).max()) == 0 for layer in params.values())
  k = np.asarray(params['conv_1']['kernel'])  # (4, 4, 8, 16): 2,048 draws
  assert abs(k.std() - 0.05) < 5e-3 and abs(k.mean()) < 5e-3


def test_demo_command(capsys):
  from jaxstyle import cli

  assert (
    cli.main(
      ['demo', '--only', 'patchgan_book f32', '--size', '32', '--fast-init', '--repeats', '1']
    )
    == 0
  )
  out = capsys.readouterr().out
  assert '694,241' in out and '(1, 4, 4, 1)' in out
