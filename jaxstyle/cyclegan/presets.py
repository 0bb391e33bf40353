"""CycleGAN presets: every field defined once; the files in configs/ state only what they change.

Like config_lib, this imports only ml_collections, so configs stay cheap to load (no jax).
The base values are the book's Example 5-1 settings. Code that needs one section (a model for a
benchmark, a test) takes it from here too (`data_config`; the `model` section's `model_config` and
`reference_model` are jaxstyle/networks.py's, re-exported), so a default never has a second copy.
"""

from __future__ import annotations

import os
from typing import Any

import ml_collections

from jaxstyle import config_lib
from jaxstyle.networks import GENERATOR_MULTIPLE as GENERATOR_MULTIPLE
from jaxstyle.networks import REFERENCE_MODEL as REFERENCE_MODEL
from jaxstyle.networks import model_config as model_config
from jaxstyle.networks import reference_model as reference_model

# What `validate` accepts (kept equal to the runtime registries by tests/test_config_validation.py).
# The model section and GENERATOR_MULTIPLE live in jaxstyle/networks.py (models/ and ports/ use them).
DISCRIMINATORS = ('patchgan', 'patchgan_book')
SCHEDULES = ('constant', 'junyanz', 'paper', 'linear')
CONV_IMPLS = ('auto', 'xla', 'subpixel', 'cpu_fast', 'cpu_winograd')
INITS = ('normal', 'keras', 'xavier')  # models.layers.kernel_init ('xavier': CUT's default)


def cyclegan_base() -> ml_collections.ConfigDict:
  """Every CycleGAN field, at the book's Example 5-1 values (apple2orange, U-Net g32, book D)."""
  c = ml_collections.ConfigDict()
  c.task = 'cyclegan'
  c.seed = 0
  c.data = ml_collections.ConfigDict(
    dict(
      source='tfds',
      name='apple2orange',
      root='',
      data_dir='',
      tfds_download=False,
      image_size=128,
      load_size=0,
      augment='book',
      book_exact_flip=False,
      epoch_rule='min',
      serial_batches=False,
      on_bad_file='skip',
      seed=0,
      synthetic_size=1000,
      synthetic_resolution=0,
      prefetch=2,
      num_workers=2,
    )
  )
  c.model = model_config()
  c.loss = ml_collections.ConfigDict(dict(lambda_gan=1.0, lambda_cycle=10.0, lambda_id=2.0))
  c.optim = ml_collections.ConfigDict(
    dict(
      lr=2e-4,
      b1=0.5,
      b2=0.999,
      eps=1e-8,
      schedule='constant',
      n_epochs=100,
      n_epochs_decay=100,
      epoch_count=1,
    )
  )
  c.pool_size = 50
  c.book_exact_d = False
  c.per_device_batch = 1
  c.total_steps = 0  # > 0 overrides num_epochs
  c.num_epochs = 200.0
  c.log_every = 100
  c.sample_every = 1000
  c.num_samples = 1
  c.progress = True
  c.ckpt = ml_collections.ConfigDict(dict(every_steps=5000, keep=3))
  c.resume = ''
  c.init = ''
  c.eval_at_end = False
  c.eval_max_images = 0  # 0 = the whole test split
  # FID during training (jaxstyle.fid.tracking; docs/fid.md): every `fid_every_steps` steps (0 =
  # off) on a seeded subset of `fid_images` test images per domain; the best step's checkpoint is
  # kept whatever ckpt.keep says. `inception`: weights path ('' = the mode's file in the cache).
  c.eval = ml_collections.ConfigDict(
    dict(fid_every_steps=0, fid_images=100, fid_seed=0, fid_mode='pytorch-fid', inception='')
  )
  return c


def cyclegan_runlocal(c: ml_collections.ConfigDict, image_size: int = 16) -> None:
  """Shrinks a full-size preset to a ~1-minute CPU smoke run of the same pipeline (synthetic data)."""
  c.data.source = 'synthetic'
  c.data.image_size = image_size
  c.data.load_size = 0
  c.data.synthetic_size = 64
  c.model.gen_filters = 4
  c.model.disc_filters = 4
  c.model.n_blocks = 1 if c.model.generator != 'unet_book' else c.model.n_blocks
  c.model.n_layers = 2
  c.per_device_batch = 1
  c.total_steps = 0
  c.num_epochs = 0.5
  c.pool_size = 4
  c.log_every = 4
  c.sample_every = 8
  c.ckpt.every_steps = 8
  c.eval_at_end = False


def synthetic_job(c: ml_collections.ConfigDict) -> None:
  """The offline main job's data, schedule and loop (configs/cyclegan_synthetic.py): 32 px synthetic
  images, batch 4, lr 5e-4 on the linear schedule, 3 epochs = 750 steps, evaluated at the end. CUT's
  synthetic config runs at the same shapes and step count (configs/cut_synthetic.py)."""
  c.data.update(dict(source='synthetic', image_size=32, epoch_rule='max'))
  c.optim.update(dict(lr=5e-4, schedule='linear', n_epochs=1, n_epochs_decay=1))
  c.per_device_batch = 4
  c.num_epochs = 3.0
  c.log_every = 50
  c.sample_every = 250
  c.num_samples = 2
  c.ckpt.update(dict(every_steps=250, keep=2))
  c.eval_at_end = True


def _section(name: str, overrides: dict[str, Any]) -> ml_collections.ConfigDict:
  """`cyclegan_base()[name]` with `overrides`; an unknown key is an error, never a new field."""
  section = cyclegan_base()[name]
  config_lib.apply_overrides(section, overrides)
  return section


def data_config(**overrides: Any) -> ml_collections.ConfigDict:
  """The book's `data` section (apple2orange from TFDS at 128 px) with `overrides`."""
  return _section('data', overrides)


def validate(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks every field a CycleGAN run reads, before any model is built; returns `c`.

  Raises one ConfigError naming each bad field, its value and the allowed range, so a typo such
  as `per_device_batch=0` fails in a second instead of deep in a data worker.
  """
  ck = config_lib.Checks(c)
  check_shared(ck, c)
  ck.choice('model.generator', tuple(GENERATOR_MULTIPLE))
  ck.choice('model.discriminator', DISCRIMINATORS)
  for key in ('lambda_gan', 'lambda_cycle', 'lambda_id'):
    ck.number('loss.' + key)
  ck.integer('pool_size', 0)
  ck.raise_if_any()
  return c


def check_shared(ck: config_lib.Checks, c: ml_collections.ConfigDict) -> None:
  """The checks of the fields CycleGAN shares with CUT (data, model widths, optim, loop, eval);
  each task adds its own generator/discriminator choices and losses."""
  d, m = 'data.', 'model.'
  ck.choice(d + 'source', ('synthetic', 'tfds', 'folder'))
  ck.require(
    c.data.source != 'folder' or bool(c.data.root),
    "data.source='folder' needs data.root (a folder with trainA/trainB/testA/testB)",
  )
  ck.choice(d + 'augment', ('book', 'reference', 'none'))
  ck.choice(d + 'epoch_rule', ('max', 'min'))
  ck.choice(d + 'on_bad_file', ('skip', 'error'))
  for key in ('image_size', 'synthetic_size', 'prefetch'):
    ck.integer(d + key, 1)
  for key in ('load_size', 'synthetic_resolution', 'num_workers', 'seed'):
    ck.integer(d + key, 0)
  ck.choice(m + 'eps_mode', ('var', 'std'))
  ck.choice(m + 'init', INITS)
  ck.choice(m + 'upsample', ('deconv', 'resize_conv'))
  ck.choice(m + 'dtype', ('float32', 'bfloat16'))
  ck.choice(m + 'conv_impl', CONV_IMPLS)
  for key in ('gen_filters', 'disc_filters', 'n_layers', 'in_channels', 'out_channels'):
    ck.integer(m + key, 1)
  ck.integer(m + 'n_blocks', 0)
  ck.number(m + 'norm_eps', strict=True)
  ck.number(m + 'init_gain', strict=True)
  ck.number('optim.lr', strict=True)
  ck.number('optim.b1', high=1.0)
  ck.number('optim.b2', high=1.0)
  ck.number('optim.eps', strict=True)
  ck.choice('optim.schedule', SCHEDULES)
  for key in ('n_epochs', 'n_epochs_decay'):
    ck.integer('optim.' + key, 0)
  ck.integer('optim.epoch_count', 1)
  for key in ('per_device_batch', 'log_every', 'sample_every', 'ckpt.every_steps'):
    ck.integer(key, 1)
  for key in ('seed', 'total_steps', 'num_samples', 'eval_max_images'):
    ck.integer(key, 0)
  for key in ('eval.fid_every_steps', 'eval.fid_seed'):
    ck.integer(key, 0)
  ck.integer('eval.fid_images', 2)
  ck.choice('eval.fid_mode', ('pytorch-fid', 'clean'))
  ck.require(
    c.ckpt.keep is None or (isinstance(c.ckpt.keep, int) and c.ckpt.keep >= 1),
    f'ckpt.keep={c.ckpt.keep!r} must be None (keep all) or an integer ≥ 1',
  )
  if c.total_steps == 0:
    ck.number('num_epochs', strict=True)
  _check_image_size(ck, c)


def check_inputs(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks the files and folders a run names (init weights, resume run, data root) exist and
  have the right kind, when the run starts: a bad path fails before the state is built. Remote
  paths (gs://...) are left to the readers."""
  ck = config_lib.Checks(c)
  local = lambda path: bool(path) and '://' not in path
  if local(c.init):
    is_file = os.path.isfile(c.init)
    ck.require(
      not is_file,
      f'init={c.init!r} is a file; init takes a weight directory: convert it first with '
      f'`jaxstyle port-weights {c.init} -o DIR` and pass DIR',
    )
    ck.require(
      is_file or os.path.isfile(os.path.join(c.init, 'jaxstyle.json')),
      f'init={c.init!r} is not a weight directory made by `jaxstyle port-weights` '
      '(no jaxstyle.json in it)',
    )
  ck.require(
    not local(c.resume) or os.path.isdir(c.resume),
    f'resume={c.resume!r} is not a folder (the --workdir of the run to start from)',
  )
  if c.data.source == 'folder' and local(c.data.root):
    ck.require(
      os.path.isdir(c.data.root),
      f'data.root={c.data.root!r} is not a folder (one with trainA/trainB/testA/testB)',
    )
  ck.raise_if_any()
  return c


def _check_image_size(ck: config_lib.Checks, c: ml_collections.ConfigDict) -> None:
  """The networks' size rules: the generator's multiple, and the reference PatchGAN's minimum
  (each of its `n_layers` stride-2 convs halves the side, its two last 4x4 convs take 1 pixel)."""
  size, multiple = c.data.image_size, GENERATOR_MULTIPLE.get(c.model.generator)
  if not isinstance(size, int) or size < 1 or multiple is None:
    return  # reported by the field checks
  ck.require(
    size % multiple == 0,
    f'data.image_size={size} must be a multiple of {multiple} for '
    f'model.generator={c.model.generator!r}',
  )
  if c.model.discriminator == 'patchgan' and isinstance(c.model.n_layers, int):
    low = 3 * 2**c.model.n_layers
    ck.require(
      size >= low,
      f'data.image_size={size} is too small for the PatchGAN with '
      f'model.n_layers={c.model.n_layers} (needs ≥ {low}; lower n_layers or raise the size)',
    )
  load = c.data.load_size
  ck.require(
    not isinstance(load, int) or load == 0 or load >= size,
    f'data.load_size={load} must be 0 (no resize) or ≥ data.image_size={size}',
  )
