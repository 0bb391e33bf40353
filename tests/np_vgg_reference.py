"""Independent float64 NumPy VGG19 shared by the VGG and NST-loss tests (im2col conv, ReLU, floor pool).

Written from the VGG19 "E" layout, not from jaxstyle code, so the networks are checked against a
separate implementation.
"""

import numpy as np

CONVS_PER_BLOCK = {1: 2, 2: 2, 3: 4, 4: 4, 5: 4}


def np_vgg(x, params, pool='max', upto='block5_conv2'):
  """Every post-ReLU conv output up to `upto`, keyed `blockB_convI`."""
  out, h = {}, np.asarray(x, np.float64)
  for b in range(1, 6):
    for i in range(1, CONVS_PER_BLOCK[b] + 1):
      name = f'block{b}_conv{i}'
      k = np.asarray(params[name]['kernel'], np.float64)
      p = np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
      n, hh, ww, _ = h.shape
      cols = np.stack(
        [p[:, dy : dy + hh, dx : dx + ww, :] for dy in range(3) for dx in range(3)], axis=3
      )
      h = np.maximum(
        cols.reshape(n, hh, ww, -1) @ k.reshape(-1, k.shape[-1]) + params[name]['bias'], 0
      )
      out[name] = h
      if name == upto:
        return out
    n, hh, ww, c = h.shape
    win = h[:, : hh // 2 * 2, : ww // 2 * 2].reshape(n, hh // 2, 2, ww // 2, 2, c)
    h = win.max(axis=(2, 4)) if pool == 'max' else win.mean(axis=(2, 4))
  return out


def random_vgg_params(shapes, seed=0):
  """He-initialised kernels with non-zero biases for `{layer: {'kernel': shape, 'bias': shape}}`,
  so a bias mix-up cannot hide."""
  rng = np.random.default_rng(seed)
  out = {}
  for name, leaf_shapes in shapes.items():
    fan_in = 9 * leaf_shapes['kernel'][2]
    out[name] = {
      'kernel': rng.normal(0, np.sqrt(2 / fan_in), leaf_shapes['kernel']).astype(np.float32),
      'bias': rng.normal(0, 0.1, leaf_shapes['bias']).astype(np.float32),
    }
  return out
