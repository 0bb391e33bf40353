"""pix2pix presets: every field defined once; the files in configs/ state only what they change.

Isola, Zhu, Zhou & Efros 2017, as junyanz/pytorch-CycleGAN-and-pix2pix trains it (`--model
pix2pix`: `--netG unet_256 --norm batch --dataset_mode aligned --gan_mode vanilla --pool_size 0
--lambda_L1 100`, batch 1, Adam 2e-4 β1 0.5, 100 + 100 epochs with linear decay, load 286 and
random 256 crops with the same crop and flip for both halves). The optimizer fields and the LR
schedules are CycleGAN's (`cyclegan.presets`), taken from there rather than copied. Imports no jax.

`DATASETS` are the reference's `datasets/download_pix2pix_dataset.sh` names: the URL, the
direction its scripts train, and a sanity range for the archive's size (the reference publishes no
sizes or hashes; the range refuses an HTML error page or a cut-off file).
"""

from __future__ import annotations

import os
from typing import Any

import ml_collections

from jaxstyle import config_lib
from jaxstyle.cyclegan import presets as cyclegan_presets

DATASET_URL = 'http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz'
MB = 1 << 20
# name -> (direction the reference trains, archive size range in bytes, what A / B are).
DATASETS: dict[str, tuple[str, tuple[int, int], str]] = {
  'facades': ('BtoA', (10 * MB, 200 * MB), 'A photo, B labels: BtoA is labels -> photo'),
  'maps': ('AtoB', (100 * MB, 1000 * MB), 'A aerial, B map: AtoB is sat2map'),
  'edges2shoes': ('AtoB', (1000 * MB, 5000 * MB), 'A edges, B photo'),
  'edges2handbags': ('AtoB', (4000 * MB, 16000 * MB), 'A edges, B photo'),
  'night2day': ('AtoB', (500 * MB, 5000 * MB), 'A night, B day'),
  # Not downloadable (license): prepared from cityscapes-dataset.com with the reference's
  # datasets/prepare_cityscapes_dataset.py, then `data.root`. A photo, B labels.
  'cityscapes': ('BtoA', (0, 0), 'A photo, B labels: BtoA is labels -> photo (FCN-score)'),
}
SOURCES = ('synthetic', 'aligned', 'folders')
GAN_MODES = ('lsgan', 'vanilla', 'wgangp')  # jaxstyle/gan_losses.py
BATCH_STATS = ('per_device', 'synced')
CONV_IMPLS = cyclegan_presets.CONV_IMPLS
INITS = cyclegan_presets.INITS


def pix2pix_base() -> ml_collections.ConfigDict:
  """Every pix2pix field, at the reference's facades labels -> photo settings."""
  base = cyclegan_presets.cyclegan_base()
  c = ml_collections.ConfigDict()
  c.task = 'pix2pix'
  c.seed = 0
  # source: 'aligned' = AB side-by-side images in root/{train,val,test}/ (the reference's
  # `aligned` mode); 'folders' = root/{split}A/ and root/{split}B/ with matching file names;
  # 'synthetic' = the embedded labels <-> photo pairs (pix2pix/synthetic.py: A labels, B photo).
  # direction: AtoB translates the A half into the B half. `name` picks DATASETS' download.
  c.data = ml_collections.ConfigDict(
    dict(
      source='aligned',
      name='facades',
      root='',
      download=False,
      direction='BtoA',
      image_size=256,
      load_size=286,
      preprocess='resize_and_crop',  # | 'resize' (load_size = image_size, no crop) | 'none'
      no_flip=False,
      serial_batches=False,
      seed=0,
      synthetic_size=400,
      synthetic_resolution=0,
      prefetch=2,
      num_workers=2,
    )
  )
  # num_downs 8 = unet_256, 7 = unet_128. batch_stats: 'per_device' (each device normalises its
  # own batch, as torch DDP; with batch 1 per device each image is normalised alone, as the
  # reference's batch 1) or 'synced' (pmean of the batch moments across devices, as
  # `torch.nn.SyncBatchNorm`); the running statistics are averaged over devices either way.
  c.model = ml_collections.ConfigDict(
    dict(
      num_downs=8,
      gen_filters=64,
      disc_filters=64,
      n_layers=3,
      use_dropout=True,
      batch_stats='per_device',
      init='normal',
      init_gain=0.02,
      dtype='float32',
      conv_impl='auto',
      in_channels=3,
      out_channels=3,
    )
  )
  # gan_mode: the reference's --gan_mode; lambda_gp: the WGAN-GP penalty's weight (wgangp only).
  c.loss = ml_collections.ConfigDict(dict(gan_mode='vanilla', lambda_l1=100.0, lambda_gp=10.0))
  c.optim = base.optim
  c.optim.update(dict(schedule='junyanz', n_epochs=100, n_epochs_decay=100))
  c.per_device_batch = 1
  c.total_steps = 0  # > 0 overrides num_epochs
  c.num_epochs = 200.0
  c.log_every = 100
  c.sample_every = 1000
  c.num_samples = 4
  c.progress = True
  c.ckpt = ml_collections.ConfigDict(dict(every_steps=5000, keep=3))
  c.resume = ''
  c.eval_at_end = False
  c.eval_max_images = 0  # 0 = the whole test split
  return c


def pix2pix_runlocal(c: ml_collections.ConfigDict, image_size: int = 32) -> None:
  """Shrinks a preset to a ~1-minute CPU smoke run of the same pipeline (synthetic pairs):
  a 5-down U-Net (32 px is its smallest input), 2-layer PatchGAN, 4 filters."""
  c.data.update(dict(source='synthetic', direction='AtoB', image_size=image_size))
  c.data.update(dict(load_size=image_size + image_size // 8, synthetic_size=32))
  c.model.update(dict(num_downs=5, gen_filters=4, disc_filters=4, n_layers=2))
  c.per_device_batch = 1
  c.total_steps = 0
  # 192 steps of ~20 ms after a ~30 s compile (24 on 8 devices). Adam moves a weight by about
  # the LR per step, so 10x the reference's LR lets the smoke run's L1 fall visibly.
  c.num_epochs = 6.0
  c.optim.lr = 2e-3
  c.log_every = 16
  c.sample_every = 96
  c.ckpt.every_steps = 96
  c.eval_max_images = 16


def validate(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks every field a pix2pix run reads, before any model is built; returns `c`."""
  ck = config_lib.Checks(c)
  d, m = 'data.', 'model.'
  ck.choice(d + 'source', SOURCES)
  ck.choice(d + 'direction', ('AtoB', 'BtoA'))
  ck.choice(d + 'preprocess', ('resize_and_crop', 'resize', 'none'))
  # No root and no download is not an error here: the dataset may be in the cache already
  # (`data.dataset_root` says what to do when it is not).
  ck.require(
    not c.data.download or c.data.name in DATASETS,
    f'data.name={c.data.name!r} is not a published pix2pix dataset; choose from {list(DATASETS)}',
  )
  for key in ('image_size', 'load_size', 'synthetic_size', 'prefetch'):
    ck.integer(d + key, 1)
  for key in ('synthetic_resolution', 'num_workers', 'seed'):
    ck.integer(d + key, 0)
  ck.integer(m + 'num_downs', 5)
  for key in ('gen_filters', 'disc_filters', 'n_layers', 'in_channels', 'out_channels'):
    ck.integer(m + key, 1)
  ck.choice(m + 'batch_stats', BATCH_STATS)
  ck.choice(m + 'init', INITS)
  ck.choice(m + 'dtype', ('float32', 'bfloat16'))
  ck.choice(m + 'conv_impl', CONV_IMPLS)
  ck.number(m + 'init_gain', strict=True)
  ck.choice('loss.gan_mode', GAN_MODES)
  ck.number('loss.lambda_l1')
  ck.number('loss.lambda_gp')
  ck.number('optim.lr', strict=True)
  ck.number('optim.b1', high=1.0)
  ck.number('optim.b2', high=1.0)
  ck.number('optim.eps', strict=True)
  ck.choice('optim.schedule', cyclegan_presets.SCHEDULES)
  for key in ('n_epochs', 'n_epochs_decay'):
    ck.integer('optim.' + key, 0)
  ck.integer('optim.epoch_count', 1)
  for key in ('per_device_batch', 'log_every', 'sample_every', 'ckpt.every_steps'):
    ck.integer(key, 1)
  for key in ('seed', 'total_steps', 'num_samples', 'eval_max_images'):
    ck.integer(key, 0)
  ck.require(
    c.ckpt.keep is None or (isinstance(c.ckpt.keep, int) and c.ckpt.keep >= 1),
    f'ckpt.keep={c.ckpt.keep!r} must be None (keep all) or an integer ≥ 1',
  )
  if c.total_steps == 0:
    ck.number('num_epochs', strict=True)
  size, n = c.data.image_size, c.model.num_downs
  if isinstance(size, int) and isinstance(n, int) and size > 0 and n >= 5:
    ck.require(
      size % 2**n == 0,
      f'data.image_size={size} must be a multiple of {2**n} for the U-Net with '
      f'model.num_downs={n} (unet_256: 8 downs, 256 px; unet_128: 7, 128 px)',
    )
  load = c.data.load_size
  ck.require(
    not isinstance(load, int) or not isinstance(size, int) or load >= size,
    f'data.load_size={load} must be ≥ data.image_size={size} (the random crop comes from it)',
  )
  ck.raise_if_any()
  return c


def check_inputs(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The folders a run names exist, at start (remote gs:// paths are left to the readers)."""
  ck = config_lib.Checks(c)
  local = lambda path: bool(path) and '://' not in path
  ck.require(
    not local(c.resume) or os.path.isdir(c.resume),
    f'resume={c.resume!r} is not a folder (the --workdir of the run to start from)',
  )
  if c.data.source != 'synthetic' and local(c.data.root):
    ck.require(os.path.isdir(c.data.root), f'data.root={c.data.root!r} is not a folder')
  ck.raise_if_any()
  return c


def dataset_config(name: str, **overrides: Any) -> ml_collections.ConfigDict:
  """The base preset for a published dataset: its name and the direction its scripts train."""
  if name not in DATASETS:
    raise KeyError(f'unknown pix2pix dataset {name!r}; choose from {list(DATASETS)}')
  c = pix2pix_base()
  c.data.update(dict(name=name, direction=DATASETS[name][0]))
  config_lib.apply_overrides(c, overrides)
  return c
