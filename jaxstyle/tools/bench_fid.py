"""`jaxstyle bench fid`: Inception pool3 feature extraction speed, images/s (FID/KID's cost).

Times `fid.features.FeatureExtractor` (what `jaxstyle fid` runs: one jitted program per input
size, sharded over the mesh's devices) on one batch of random uint8 images per call, transfer
to the devices and features back to the host included. Weights are random (He-normal kernels,
identity BatchNorm), built with NumPy in the pytorch-fid layout: speed does not depend on them.
The peer (`peers/peer_torch_fid.py`) is pytorch-fid's `get_activations` on one batch of the same
size: float32 [0, 1] NCHW, resize to 299, the net, pool3.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import numpy as np

from jaxstyle import parallel
from jaxstyle.fid import features
from jaxstyle.models import inception
from jaxstyle.tools import bench_peers

DEFAULT_SIZE = 299
DEFAULT_BATCH = features.DEFAULT_BATCH  # pytorch-fid's --batch-size
DEFAULT_STEPS = 3  # batch 50 at 299² is several seconds per call on a small CPU


def random_params(seed: int = 0) -> dict[str, Any]:
  """`FIDInceptionV3` params of the pool3 net from NumPy (no jit of `init`: seconds, not a compile)."""
  rng = np.random.default_rng(seed)
  sd = {}
  for key, shape in inception.torch_shapes().items():
    if key.endswith('conv.weight'):
      sd[key] = rng.standard_normal(shape, np.float32) * np.float32(np.sqrt(2 / np.prod(shape[1:])))
    else:  # BatchNorm as torch initialises it: scale 1, bias 0, mean 0, var 1
      sd[key] = np.full(
        shape, 1.0 if key.endswith(('bn.weight', 'running_var')) else 0.0, np.float32
      )
  return inception.params_from_state_dict(sd)


def bench(args: argparse.Namespace) -> dict[str, Any]:
  """Median seconds of one extractor call on a full batch; images/s over all devices."""
  n_dev = args.devices or jax.device_count()
  mesh = parallel.make_mesh(jax.devices()[:n_dev])
  size = args.size or DEFAULT_SIZE
  extractor = features.FeatureExtractor(random_params(), mesh, args.batch)
  batch = extractor.batch_size  # rounded up to a multiple of the devices
  images = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), np.uint8)
  lowered = extractor._forward.lower(
    extractor.params, jax.ShapeDtypeStruct(images.shape, images.dtype, sharding=extractor._images)
  )
  flops = bench_peers.xla_flops(lowered)  # the per-device program: times the devices for the call
  t0 = time.perf_counter()
  feats = extractor(images)  # compile + first run
  first_s = time.perf_counter() - t0
  assert feats.shape == (batch, inception.FEATURE_DIM) and np.isfinite(feats).all()
  times = bench_peers.time_calls(lambda: extractor(images), args.steps, max(args.warmup - 1, 0))
  compile_s = max(first_s - float(np.median(times)), 0.0)
  out = bench_peers.report(
    args,
    'fid',
    times,
    compile_s,
    flops * n_dev if flops else None,
    ('peer_torch_fid.py', [str(size), str(args.peer_steps or args.steps), str(batch)]),
    devices=n_dev,
    batch=batch,
    size=size,
    conv_impl='kernels/inference_conv.py (--conv-impl does not apply)',
    flops_source='XLA cost analysis of the per-device program x devices',
    unit='seconds per batch',
  )
  out['images_per_s'] = round(batch / out['median_s'], 2)
  if 'peer_s' in out:
    out['peer_images_per_s'] = round(batch / out['peer_s'], 2)
  return out
