"""High-resolution NST memory: the checkpointed per-block objective (vgg.block_losses) gives the same
value and gradient as the plain one, and XLA:CPU's compiled buffer plan really shrinks with it (the
plain `jax.checkpoint` version had an identical plan, which nothing caught)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.models import vgg
from jaxstyle.nst import losses as L

STYLE = ('block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1', 'block5_conv1')


@pytest.fixture(scope='module')
def params():
  return jax.device_get(vgg.init_params(jax.random.key(0)))


def _objective(params, remat, shape, **kwargs):
  rng = np.random.default_rng(1)
  content, style = (rng.uniform(-120, 130, shape).astype(np.float32) for _ in range(2))
  return L.make_objective(
    vgg.VGG19(pool=kwargs.pop('pool', 'max')), params, content, [style], remat=remat, **kwargs
  )


# Both cases pool by averaging: remat and plain are two programs that may round the forward
# differently, and a max pool's gradient is discontinuous at near-ties; on these tiny images the last
# pools see 2×2 windows (docs/development.md, "Tolerances").
@pytest.mark.parametrize(
  'kwargs',
  [
    {'pool': 'avg'},  # the book's layers: content block5_conv2, style block1..5_conv1, TV
    {
      'pool': 'avg',
      'normalisation': 'gatys',
      'content_layers': ('block4_conv2', 'block1_conv1'),
      'style_layers': ('block1_conv1', 'block3_conv2'),
      'layer_weights': (0.3, 0.7),
    },
  ],
  ids=['book', 'gatys_avg_shared_layer'],
)
def test_remat_objective_matches_plain(params, kwargs):
  x = jnp.asarray(np.random.default_rng(2).uniform(-120, 130, (1, 40, 36, 3)), jnp.float32)
  outs = []
  with jax.default_matmul_precision('highest'):
    for remat in (False, True):
      targets, loss_fn = _objective(params, remat, (1, 40, 36, 3), **dict(kwargs))
      f = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
      outs.append(f(x, targets, params))
  ((v0, aux0), g0), ((v1, aux1), g1) = outs
  # Error model: the same convs in two programs (fusions may sum in other orders): block5_conv2 is
  # 14 convs deep (fan-in ≤ 3·3·512), ≤ 14·sqrt(4608)·u ≈ 6e-5 relative for the values; the
  # gradient passes them 3× (forward, recompute, transposes): ≈ 2e-4 of its largest element.
  np.testing.assert_allclose(v1, v0, rtol=1e-4)
  for k in aux0:
    np.testing.assert_allclose(aux1[k], aux0[k], rtol=1e-4, err_msg=k)
  assert float(jnp.max(jnp.abs(g0))) > 0
  np.testing.assert_allclose(g1, g0, rtol=0, atol=2e-4 * float(jnp.max(jnp.abs(g0))))


def test_remat_plan_is_smaller(params):
  """XLA's own plan at 256x256: the remat objective must need materially less scratch memory.

  Measured (jax 0.10.2): 107 vs 202 MiB, ~60 MiB of it reversed VGG kernels. With plain
  jax.checkpoint both plans were identical.
  """
  x = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  net = vgg.VGG19(outputs=('block5_conv2',))
  targets = {
    'content': jax.eval_shape(lambda p, z: net.apply({'params': p}, z), params, x),
    'style': {
      n: jax.ShapeDtypeStruct((1, vgg.CHANNELS[n], vgg.CHANNELS[n]), jnp.float32) for n in STYLE
    },
  }

  def temp_bytes(loss_fn):
    f = jax.jit(jax.value_and_grad(lambda z, t, p: loss_fn(z, t, p)[0]))
    return f.lower(x, targets, params).compile().memory_analysis().temp_size_in_bytes

  temps = [temp_bytes(_objective(params, remat, (1, 16, 16, 3))[1]) for remat in (False, True)]
  plain, remat = temps
  assert remat < 0.75 * plain, (remat / 2**20, plain / 2**20)


def test_checkpoint_recomputes_after_the_cotangent():
  """The recomputation is not merged into the forward pass: the compiled gradient runs the conv
  forward, again in the backward pass (recompute), and transposed; plain autodiff runs it twice."""
  k = jax.random.normal(jax.random.key(0), (3, 3, 3, 8))

  def block(x, k):
    return jax.nn.relu(
      jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    )

  x = jax.random.normal(jax.random.key(1), (1, 8, 8, 3))
  grads = []
  for f, want in ((block, 2), (vgg.checkpoint(block), 3)):
    loss = lambda x, k, f=f: jnp.sum(jnp.sin(f(x, k)))  # the cotangent depends on the forward
    hlo = jax.jit(jax.grad(loss)).lower(x, k).compile().as_text()
    assert hlo.count('convolution(') == want, (f, hlo.count('convolution('))
    grads.append(jax.grad(loss)(x, k))
  # Error model: the recompute may sum in another order; each gradient element is a sum of
  # 9·8 = 72 terms (and the forward's 27), 2·sqrt(72)·u ≈ 1e-6 of the terms' magnitudes, whose sum
  # is up to ~10× the largest gradient: 1e-5 of it.
  np.testing.assert_allclose(
    grads[1], grads[0], rtol=0, atol=1e-5 * float(jnp.max(jnp.abs(grads[0])))
  )
