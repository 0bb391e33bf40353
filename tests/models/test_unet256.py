"""pix2pix's networks: parameter counts as the reference's, pinned names, batch norm as torch."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxstyle.models import batchnorm, patchgan_bn, unet256

# The reference's counts (torch `sum(p.numel() for p in net.parameters())` of `define_G(3, 3, 64,
# 'unet_256', 'batch')` and `define_D(6, 64, 'basic', norm='batch')`, built from the reference's
# classes in peer-venv; the reference's training log prints them rounded: 54.414 M and 2.769 M).
# The D count has no bias on the three batch-normed convs (torch `use_bias` is False for batch
# norm); with those biases it would be 2,769,601.
UNET256_PARAMS = 54_413_955
PATCHGAN6_PARAMS = 2_768_705


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _shapes(module, x, **kw):
  rngs = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}
  return jax.eval_shape(lambda: module.init(rngs, x, **kw))


def test_unet256_count_and_names():
  v = _shapes(unet256.UnetGenerator(), jnp.zeros((1, 256, 256, 3)), train=True, dropout=True)
  assert _count(v['params']) == UNET256_PARAMS
  # Every parameterised module maps onto one reference prefix, and nothing else exists.
  assert set(v['params']) == set(unet256.torch_names(8))
  assert 'bias' not in v['params']['down_0'] and v['params']['up_0']['bias'].shape == (3,)
  assert v['params']['up_7']['kernel'].shape == (4, 4, 512, 512)
  assert v['params']['up_1']['kernel'].shape == (4, 4, 64, 256)  # (kH, kW, out, in)
  # Running statistics: one (mean, var) per batch norm, 2 per channel (buffers, not params).
  stats = v['batch_stats']
  assert set(stats) == {k for k in v['params'] if 'norm' in k}
  assert _count(stats) == 2 * sum(
    p['scale'].shape[0] for k, p in v['params'].items() if 'norm' in k
  )


def test_unet_torch_names_nesting():
  names = unet256.torch_names(8)
  assert names['down_1'] == 'model.model.1.model.1'
  assert names['up_norm_2'] == 'model.model.1.model.3.model.6'
  assert names['up_norm_7'] == 'model.model.1.model' + '.3.model' * 6 + '.4'


def test_patchgan_bn_count_and_names():
  v = _shapes(patchgan_bn.PatchDiscriminatorBN(), jnp.zeros((1, 256, 256, 6)), train=True)
  assert _count(v['params']) == PATCHGAN6_PARAMS
  assert set(v['params']) == set(patchgan_bn.torch_names(3))
  assert patchgan_bn.torch_names(3)['head'] == 'model.11'
  out = jax.eval_shape(
    lambda: patchgan_bn.PatchDiscriminatorBN().apply(
      flax.core.unfreeze(jax.tree.map(jnp.zeros_like, v)), jnp.zeros((1, 256, 256, 6)), train=False
    )
  )
  assert out.shape == (1, 30, 30, 1)  # the 70x70 PatchGAN's 30x30 logits at 256²


def test_batchnorm_matches_numpy():
  """Training mode: biased variance to normalise, unbiased (n/(n-1)) into the running variance,
  torch momentum 0.1; eval mode normalises with the running statistics."""
  rng = np.random.default_rng(0)
  x = rng.normal(2.0, 3.0, (2, 3, 5, 4)).astype(np.float32)
  bn = batchnorm.BatchNorm()
  v = bn.init(jax.random.key(0), x, use_running_average=False)
  y, upd = bn.apply(v, x, use_running_average=False, mutable=['batch_stats'])
  x64 = x.astype(np.float64)
  mean, var = x64.mean((0, 1, 2)), x64.var((0, 1, 2))
  scale = np.asarray(v['params']['scale'], np.float64)
  want = (x64 - mean) / np.sqrt(var + 1e-5) * scale
  # float32 statistics over 30 values of size ~10: errors ~1e-6 relative; outputs are O(3).
  np.testing.assert_allclose(y, want, atol=1e-5)
  n = 30
  np.testing.assert_allclose(upd['batch_stats']['mean'], 0.1 * mean, rtol=1e-5)
  np.testing.assert_allclose(upd['batch_stats']['var'], 0.9 + 0.1 * var * n / (n - 1), rtol=1e-5)
  y_eval = bn.apply({**v, **upd}, x, use_running_average=True)
  rm, rv = 0.1 * mean, 0.9 + 0.1 * var * n / (n - 1)
  np.testing.assert_allclose(y_eval, (x64 - rm) / np.sqrt(rv + 1e-5) * scale, atol=1e-5)


@pytest.fixture(scope='module')
def small_unet():
  """num_downs 6 (one dropout block, depth 4), ngf 4, at 64²: the same code paths, cheap."""
  net = unet256.UnetGenerator(num_downs=6, filters=4)
  x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 3)), jnp.float32)
  v = net.init(
    {'params': jax.random.key(0), 'dropout': jax.random.key(1)}, x, train=True, dropout=True
  )
  return net, v, x


def test_unet_modes(small_unet):
  net, v, x = small_unet
  run = lambda key, train, dropout: net.apply(
    v,
    x,
    train=train,
    dropout=dropout,
    rngs={'dropout': jax.random.key(key)},
    mutable=['batch_stats'],
  )
  (a, stats), (b, _) = run(1, True, True), run(2, True, True)
  assert a.shape == x.shape and np.all(np.abs(np.asarray(a)) <= 1)
  assert not np.allclose(a, b)  # dropout on: the key matters (the paper's stochastic G)
  (c, _), (d, _) = run(1, True, False), run(2, True, False)
  np.testing.assert_array_equal(c, d)  # dropout off: deterministic
  # Batch statistics vs running ones give different outputs; eval mode needs no mutable stats.
  e = net.apply(v, x, train=False, dropout=False)
  assert not np.allclose(c, e, atol=1e-3)
  changed = jax.tree.map(lambda p, q: bool(np.any(p != q)), stats['batch_stats'], v['batch_stats'])
  assert all(jax.tree.leaves(changed))  # training updated every running statistic
  with pytest.raises(ValueError, match='multiples of 64'):
    net.apply(v, x[:, :32, :32], train=False, dropout=False)
