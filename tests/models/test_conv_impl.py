"""model_cfg.conv_impl: every implementation builds the same variables and computes the same nets.

Checkpoints, weight ports and the PyTorch parity tests rely on the variables; the outputs and
gradients may differ by float rounding only (Winograd ~1e-5 relative).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle import models
from jaxstyle.cyclegan import presets
from jaxstyle.models import layers

pytestmark = (
  pytest.mark.slow
)  # every net under every conv_impl (~55 s); test_layers covers each layer fast

NETS = {  # tiny shapes: compile time dominates
  'resnet': (dict(generator='resnet', gen_filters=4, n_blocks=1), (2, 16, 16, 3)),
  'resnet_book': (
    dict(generator='resnet_book', gen_filters=4, n_blocks=1, norm_eps=1e-3, eps_mode='std'),
    (1, 16, 20, 3),
  ),
  'unet_book': (
    dict(generator='unet_book', gen_filters=4, init='keras', norm_eps=1e-3, eps_mode='std'),
    (1, 32, 32, 3),
  ),  # 2x2 bottleneck: IN needs > 1 px
  'patchgan': (dict(discriminator='patchgan', disc_filters=4, n_layers=2), (2, 16, 16, 3)),
  'patchgan_book': (
    dict(discriminator='patchgan_book', disc_filters=4, n_layers=2),
    (1, 16, 16, 3),
  ),
}


def _net(name, impl):
  cfg = presets.reference_model(**NETS[name][0], conv_impl=impl)
  return (
    models.make_generator(cfg) if 'generator' in NETS[name][0] else models.make_discriminator(cfg)
  )


def _outputs_and_grads(net, params, x):
  def loss(p, x):
    y = net.apply({'params': p}, x)
    return jnp.sum(jnp.sin(3 * y)), y

  (_, y), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, x)
  return y, grads


@pytest.fixture(scope='module', params=list(NETS))
def results(request):
  """{impl: (variables' abstract tree, output, (param grads, input grad))} for one net."""
  name, shape = request.param, NETS[request.param][1]
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, shape), jnp.float32)
  rng = np.random.default_rng(1)
  params = jax.tree.map(
    lambda a: (0.3 * rng.standard_normal(a.shape)).astype(np.float32),
    jax.eval_shape(_net(name, 'xla').init, jax.random.key(0), x)['params'],
  )
  out = {}
  for impl in ('auto', *layers.CONV_IMPLS):
    net = _net(name, impl)
    assert net.conv_impl == impl
    abstract = jax.eval_shape(net.init, jax.random.key(0), x)
    out[impl] = (abstract, *_outputs_and_grads(net, params, x))
  return out


def test_same_variables_for_every_impl(results):
  trees = {impl: jax.tree.map(lambda a: (a.shape, a.dtype), r[0]) for impl, r in results.items()}
  for impl, tree in trees.items():
    assert tree == trees['xla'], impl


def test_same_outputs_and_grads_as_xla(results):
  _, y_ref, g_ref = results['xla']
  # Error model: the impls sum the same products in other orders (no layer is wide enough for
  # Winograd here). ≤ 8 convs deep, fan-in ≤ 7·7·4: 8·sqrt(196)·u ≈ 7e-6 of the output scale, ~3×
  # that where the terms cancel; the gradients pass the convs 3× (forward, two transposes) and
  # their kernel sums run over ≤ 2·16·16 pixels: 24·sqrt(512)·u·3 ≈ 1e-4 of the largest. A wrong
  # tap, pad or phase is off by O(1). (No max pooling; a ReLU/LeakyReLU input within rounding of 0
  # would move one term of one sum: rare at ~1e4 pre-activations.)
  for impl, (_, y, grads) in results.items():
    np.testing.assert_allclose(
      y, y_ref, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(y_ref))), err_msg=impl
    )
    # One scale per tree: the biases before an instance norm have exact gradient 0 (rounding noise).
    scale = max(float(jnp.max(jnp.abs(leaf))) for leaf in jax.tree.leaves(g_ref))
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(g_ref)):
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale, err_msg=impl)


def test_auto_is_the_backend_default(results):
  """'auto' traces exactly what its resolved impl traces: bitwise equal results."""
  default = 'cpu_winograd' if jax.default_backend() == 'cpu' else 'subpixel'
  for a, b in zip(jax.tree.leaves(results['auto'][1:]), jax.tree.leaves(results[default][1:])):
    np.testing.assert_array_equal(a, b)


def test_config_reaches_every_conv():
  """`model_cfg.conv_impl` reaches the layers (a config without the field means 'auto')."""
  net = _net('resnet', 'cpu_fast')
  assert net.conv_impl == 'cpu_fast'
  x = jnp.zeros((1, 16, 16, 3))
  params = jax.eval_shape(net.init, jax.random.key(0), x)['params']
  bad = _net('resnet', 'cpu_fast').clone(conv_impl='fast')
  with pytest.raises(ValueError, match='cpu_winograd'):
    jax.eval_shape(bad.apply, {'params': params}, x)
  legacy = presets.reference_model(generator='unet_book')
  del legacy['conv_impl']
  assert models.make_generator(legacy).conv_impl == 'auto'


def test_winograd_layers_differ_only_by_rounding():
  """A wide ResNet block (256 channels at 8²: F(2×2)) really runs Winograd under cpu_winograd."""
  from jaxstyle.models.resnet_gen import ResBlock

  x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 8, 8, 256)), jnp.float32)
  abstract = jax.eval_shape(ResBlock().init, jax.random.key(0), x)['params']
  rng = np.random.default_rng(3)
  params = jax.tree.map(
    lambda a: (0.02 * rng.standard_normal(a.shape)).astype(np.float32), abstract
  )
  ys = {
    impl: jax.jit(ResBlock(conv_impl=impl).apply)({'params': params}, x)
    for impl in ('cpu_fast', 'cpu_winograd')
  }
  assert not np.array_equal(ys['cpu_fast'], ys['cpu_winograd'])
  np.testing.assert_allclose(ys['cpu_winograd'], ys['cpu_fast'], rtol=1e-4, atol=1e-4)
