"""CycleGAN on the embedded synthetic dataset (red-orange shaded shapes <-> blue striped shapes).

The README's offline main job: no download, and success is measurable (`jaxstyle evaluate`
reports transfer and content IoU from the ground-truth masks).

Command:
  jaxstyle train --config configs/cyclegan_synthetic.py --workdir runs/synthetic
  jaxstyle evaluate --workdir runs/synthetic
Hardware: 2 shared CPU cores (1 JAX CPU device), measured while ~3 other CPU jobs ran (load avg ~8).
Wall time: 21 min 06 s for 500 steps (2 epochs, batch 4, 32 px) incl. compile and the final
  evaluation, at 0.35-0.66 steps/s under that load. Not yet measured on 2 idle cores (the
  15-minute budget is unverified).
Expected (measured 2026-11-25, seed 0, full 1000-image test split, `evaluate.evaluate`):
  transfer A2B 1.000, B2A 1.000; content IoU A2B 0.777, B2A 0.765; cycle L1 0.152 / 0.152.
  IoU is just under the 0.8 goal: a longer run (num_epochs 3) is the next thing to measure.
"""
import ml_collections

from jaxstyle import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = ml_collections.ConfigDict()
  c.task = 'cyclegan'
  c.seed = 0

  c.data = ml_collections.ConfigDict(dict(
      source='synthetic', name='apple2orange', root='', data_dir='', tfds_download=False,
      image_size=32, load_size=0, augment='book', book_exact_flip=False, epoch_rule='max',
      serial_batches=False, on_bad_file='skip', seed=0, synthetic_size=1000,
      synthetic_resolution=0, prefetch=2, num_workers=2))
  c.model = ml_collections.ConfigDict(dict(
      generator='unet_book', discriminator='patchgan', gen_filters=32, disc_filters=16, n_blocks=3,
      n_layers=2, norm_eps=1e-5, eps_mode='var', init='normal', init_gain=0.02,
      upsample='deconv', dtype='float32', in_channels=3, out_channels=3))
  c.loss = ml_collections.ConfigDict(dict(lambda_gan=1.0, lambda_cycle=10.0, lambda_id=5.0))
  c.optim = ml_collections.ConfigDict(dict(
      lr=5e-4, b1=0.5, b2=0.999, eps=1e-8, schedule='linear', n_epochs=1, n_epochs_decay=1,
      epoch_count=1))
  c.pool_size = 50
  c.book_exact_d = False
  c.per_device_batch = 4
  c.total_steps = 0          # > 0 overrides num_epochs
  c.num_epochs = 3.0
  c.log_every = 50
  c.sample_every = 250
  c.num_samples = 2
  c.progress = True
  c.ckpt = ml_collections.ConfigDict(dict(every_steps=250, keep=2))
  c.resume = ''
  c.init = ''
  c.eval_at_end = True
  c.eval_max_images = 0      # 0 = the whole test split

  if arg.runlocal:
    c.data.image_size = 16
    c.data.synthetic_size = 64
    c.model.gen_filters = 4
    c.model.disc_filters = 4
    c.model.n_blocks = 1
    c.per_device_batch = 1
    c.num_epochs = 0.5
    c.log_every = 4
    c.sample_every = 8
    c.ckpt.every_steps = 8
    c.eval_max_images = 16
  return c


def get_sweep():
  """Identity-loss ablation: off, the book's 5-1 weight, the reference weight (0.5 * 10)."""
  return [{'loss.lambda_id': w} for w in (0.0, 2.0, 5.0)]
