"""CycleGAN, GDL Example 5-1: apple2orange at 128x128, book U-Net (g=32) and book D (d=32).

Spec §1 `book_5_1`: lambda 1 / 10 / 2, constant LR 2e-4 (Adam b1 0.5), pool 50 with the reference
50 % rule, epoch = min(#A, #B) steps at batch 1, resize + independent h-flips, keras-contrib
instance norm (eps 1e-3 added to the std). `--config.book_exact_d=True` restores the book's two
D steps per iteration.

Command:
  jaxstyle train --config configs/cyclegan_book_apple2orange.py --workdir runs/book_5_1 \
    --config.data.tfds_download=True
Hardware: not yet measured
Wall time: not yet measured, 200 epochs
Expected: not yet measured (sample grids as book Figure 5-8 in {workdir}/samples)
"""
import ml_collections

from jaxstyle import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, runlocal=False)
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
      upsample='deconv', dtype='float32', in_channels=3, out_channels=3))
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
  c.eval_max_images = 0

  if arg.runlocal:  # ~1 minute on a laptop CPU: the synthetic data at 16 px, tiny nets
    c.data.source = 'synthetic'
    c.data.image_size = 32  # the U-Net's 4 downs need >= 32 px to avoid IN on a 1x1 map
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
  return c


def get_sweep():
  """Identity-loss ablation: off, the book's weight, the reference weight (0.5 * 10)."""
  return [{'loss.lambda_id': w} for w in (0.0, 2.0, 5.0)]
