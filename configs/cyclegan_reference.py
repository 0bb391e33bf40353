"""CycleGAN, junyanz reference defaults (= the paper): ResNet-9 ngf 64, 70x70 PatchGAN ndf 64.

Spec §1 `reference`: bicubic resize 286 -> random crop 256 -> h-flip, lambda 1 / 10 / 5,
pool 50, Adam 2e-4 (0.5, 0.999), 100 + 100 epochs with the code's `linear` policy
(`schedule='junyanz'`, exact incl. the LR-0 last epoch; 'paper' is the paper's), epoch =
max(#A, #B) steps at batch 1 per device, IN eps 1e-5 on the variance. Default data: horse2zebra.

Command:
  jaxstyle train --config configs/cyclegan_reference.py --workdir runs/reference \
    --config.data.tfds_download=True
Hardware: not yet measured
Wall time: not yet measured, 200 epochs (266,800 steps on horse2zebra at batch 1)
Expected: not yet measured
"""
import ml_collections

from jaxstyle import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = ml_collections.ConfigDict()
  c.task = 'cyclegan'
  c.seed = 0

  c.data = ml_collections.ConfigDict(dict(
      source='tfds', name='horse2zebra', root='', data_dir='', tfds_download=False,
      image_size=256, load_size=286, augment='reference', book_exact_flip=False,
      epoch_rule='max', serial_batches=False, on_bad_file='skip', seed=0, synthetic_size=1000,
      synthetic_resolution=0, prefetch=2, num_workers=2))
  c.model = ml_collections.ConfigDict(dict(
      generator='resnet', discriminator='patchgan', gen_filters=64, disc_filters=64,
      n_blocks=9, n_layers=3, norm_eps=1e-5, eps_mode='var', init='normal', init_gain=0.02,
      upsample='deconv', dtype='float32', in_channels=3, out_channels=3))
  c.loss = ml_collections.ConfigDict(dict(lambda_gan=1.0, lambda_cycle=10.0, lambda_id=5.0))
  c.optim = ml_collections.ConfigDict(dict(
      lr=2e-4, b1=0.5, b2=0.999, eps=1e-8, schedule='junyanz', n_epochs=100,
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
    c.data.image_size = 16
    c.data.load_size = 0
    c.data.augment = 'book'
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
  """Identity-loss ablation, as MMGen ran it: identity 0.5 (lambda_id 5) and 0."""
  return [{'loss.lambda_id': w} for w in (0.0, 5.0)]
