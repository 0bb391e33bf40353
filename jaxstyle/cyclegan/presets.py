"""CycleGAN presets: every field defined once; the files in configs/ state only what they change.

Like config_lib, this imports only ml_collections, so configs stay cheap to load (no jax).
The base values are the book's Example 5-1 settings. Code that needs one section (a model for a
benchmark, a weight port, a test) takes it from here too (`model_config`, `reference_model`,
`data_config`), so a default never has a second, drifting copy.
"""
from __future__ import annotations

from typing import Any

import ml_collections

from jaxstyle import config_lib

# junyanz/pytorch-CycleGAN-and-pix2pix's networks (= the paper): what the reference preset
# changes in the book's model section. ResNet-9 ngf 64, 70x70 PatchGAN ndf 64, instance norm
# eps 1e-5 on the variance, N(0, 0.02) init.
REFERENCE_MODEL = dict(generator='resnet', discriminator='patchgan', gen_filters=64,
                       disc_filters=64, norm_eps=1e-5, eps_mode='var', init='normal')


def cyclegan_base() -> ml_collections.ConfigDict:
  """Every CycleGAN field, at the book's Example 5-1 values (apple2orange, U-Net g32, book D)."""
  c = ml_collections.ConfigDict()
  c.task = 'cyclegan'
  c.seed = 0
  c.data = ml_collections.ConfigDict(dict(
      source='tfds', name='apple2orange', root='', data_dir='', tfds_download=False,
      image_size=128, load_size=0, augment='book', book_exact_flip=False, epoch_rule='min',
      serial_batches=False, on_bad_file='skip', seed=0, synthetic_size=1000,
      synthetic_resolution=0, prefetch=2, num_workers=2))
  c.model = ml_collections.ConfigDict(dict(
      generator='unet_book', discriminator='patchgan_book', gen_filters=32, disc_filters=32,
      n_blocks=9, n_layers=3, norm_eps=1e-3, eps_mode='std', init='keras', init_gain=0.02,
      upsample='deconv', dtype='float32', in_channels=3, out_channels=3,
      conv_impl='auto'))      # auto | xla | subpixel | cpu_fast | cpu_winograd (kernels/dispatch.py)
  c.loss = ml_collections.ConfigDict(dict(lambda_gan=1.0, lambda_cycle=10.0, lambda_id=2.0))
  c.optim = ml_collections.ConfigDict(dict(
      lr=2e-4, b1=0.5, b2=0.999, eps=1e-8, schedule='constant', n_epochs=100,
      n_epochs_decay=100, epoch_count=1))
  c.pool_size = 50
  c.book_exact_d = False
  c.per_device_batch = 1
  c.total_steps = 0          # > 0 overrides num_epochs
  c.num_epochs = 200.0
  c.log_every = 100
  c.sample_every = 1000
  c.num_samples = 1
  c.progress = True
  c.ckpt = ml_collections.ConfigDict(dict(every_steps=5000, keep=3))
  c.resume = ''
  c.init = ''
  c.eval_at_end = False
  c.eval_max_images = 0      # 0 = the whole test split
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


def _section(name: str, overrides: dict[str, Any]) -> ml_collections.ConfigDict:
  """`cyclegan_base()[name]` with `overrides`; an unknown key is an error, never a new field."""
  section = cyclegan_base()[name]
  config_lib.apply_overrides(section, overrides)
  return section


def model_config(**overrides: Any) -> ml_collections.ConfigDict:
  """The book's `model` section (Example 5-1) with `overrides`."""
  return _section('model', overrides)


def reference_model(**overrides: Any) -> ml_collections.ConfigDict:
  """junyanz's networks (`REFERENCE_MODEL` over the book's section) with `overrides`."""
  return model_config(**{**REFERENCE_MODEL, **overrides})


def data_config(**overrides: Any) -> ml_collections.ConfigDict:
  """The book's `data` section (apple2orange from TFDS at 128 px) with `overrides`."""
  return _section('data', overrides)
