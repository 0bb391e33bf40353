"""Which config fields a resumed run may change: the per-task table behind `jaxstyle train`'s drift check.

A field is STATE (the checkpointed arrays' shapes follow it), STREAM (the data stream or the function
trained follows it) or FREE (optimiser knobs, length, logging, evaluation, speed). `workdir.check_config`
refuses STATE and STREAM changes on an existing run and lists FREE ones in a notice; a new task adds a
`RULES` entry (tests/test_workdir.py checks every entry against the task's presets).

No jax here: it runs before JAX starts.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from typing import Any

# STATE: the checkpointed arrays' shapes follow the field (the checkpoints cannot be restored).
# STREAM: the checkpoints restore, but the data stream or the function trained would be another
# run's (a new run may start from them with `--config.resume=OLD`). FREE: everything else
# (optimiser hyper-parameters, the run's length, logging, evaluation, speed knobs): a notice.
STATE, STREAM, FREE = 'state', 'stream', 'free'


def _rules(state: str = '', stream: str = '') -> dict[str, str]:
  return {**{p: STATE for p in state.split()}, **{p: STREAM for p in stream.split()}}


# Per task: dotted field (or fnmatch pattern, `*` spans dots) -> class. An exact name wins over
# a pattern, the longest pattern over shorter ones; a field nothing matches is FREE. A new task
# adds an entry; until then it gets DEFAULT_RULES (its model, data, seed, batch and styles).
RULES: dict[str, dict[str, str]] = {
  'cyclegan': _rules(
    state='task pool_size model.generator model.discriminator model.gen_filters '
    'model.disc_filters model.n_blocks model.n_layers model.upsample model.in_channels '
    'model.out_channels',
    stream='model.* data.* seed per_device_batch',  # model.*: norm eps, init, dtype
  ),
  'fast_style': _rules(
    state='task model.conditional model.upsample model.filters model.n_blocks',
    # styles: with a conditional net their count also shapes its γ/β rows
    stream='model.* styles style_size vgg.* data.* seed per_device_batch',
  ),
  'adain': _rules(state='task', stream='model.* data.* style.* vgg.* seed per_device_batch'),
  'cut': _rules(  # F's MLPs: one per tap, their widths follow the taps' channels
    state='task model.generator model.discriminator model.gen_filters model.disc_filters '
    'model.n_blocks model.n_layers model.in_channels model.out_channels model.mlp_features '
    'nce.layers',
    stream='model.* nce.* data.* seed per_device_batch',
  ),
  'pix2pix': _rules(  # batch_stats follow the widths; gan_mode: another function trained
    state='task model.num_downs model.gen_filters model.disc_filters model.n_layers '
    'model.in_channels model.out_channels',
    stream='model.* loss.gan_mode data.* seed per_device_batch',
  ),
  'nst': _rules(  # the optimised image is the state: its size, count and optimiser
    state='task content image.* scales loss.style_weights optim.name optim.memory_size',
    stream='styles style_blend seed init init_image noise_scale colors vgg.*',
  ),
}
DEFAULT_RULES = _rules(state='task model.*', stream='data.* seed per_device_batch styles vgg.*')
# Speed and location knobs, for every task: the (seed, step) stream does not depend on them.
ALWAYS_FREE = frozenset(
  'model.conv_impl vgg.conv_impl vgg.remat data.prefetch data.num_workers data.data_dir '
  'data.tfds_download data.download data.on_bad_file data.test_root data.test_split '
  'style.test_root'.split()
)


def field_class(task: str, path: str) -> str:
  """STATE, STREAM or FREE: what changing `path` (dotted) on an existing `task` run means."""
  rules = RULES.get(task, DEFAULT_RULES)
  if path in rules:
    return rules[path]
  if path in ALWAYS_FREE:
    return FREE
  globs = sorted((p for p in rules if '*' in p and fnmatch.fnmatchcase(path, p)), key=len)
  return rules[globs[-1]] if globs else FREE


def flatten(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """{dotted field: leaf value} of a nested config dict (the keys `RULES` classifies)."""
  out = {}
  for key, value in tree.items():
    out.update(
      flatten(value, f'{prefix}{key}.') if isinstance(value, Mapping) else {prefix + key: value}
    )
  return out


def config_changes(recorded: Mapping[str, Any], requested: Mapping[str, Any]) -> dict[str, tuple]:
  """{dotted field: (recorded value, requested value)} of the fields both configs hold.

  Both sides as JSON writes them (tuples are lists). A field only one side has is not compared:
  the record comes from an older or newer jaxstyle, and the trainer fills defaults itself.
  """
  old = flatten({k: v for k, v in recorded.items() if k != 'runtime'})
  new = flatten({k: v for k, v in requested.items() if k != 'runtime'})
  return {k: (old[k], new[k]) for k in sorted(old.keys() & new.keys()) if old[k] != new[k]}


def describe(changes: Mapping[str, tuple]) -> str:
  return ', '.join(
    f'{k} (run: {json.dumps(a)}, requested: {json.dumps(b)})' for k, (a, b) in changes.items()
  )
