"""CUT / FastCUT presets: every field defined once; the files in configs/ state only differences.

Park, Efros, Zhang & Zhu 2020 (taesungp/contrastive-unpaired-translation, `models/cut_model.py`
and `options/`): one generator, one PatchGAN, PatchNCE through `PatchSampleF`'s MLPs on the
generator's encoder taps. The data stream, the LSGAN loss and the run loop are CycleGAN's, so the
`data`, `optim`, loop and eval fields are `cyclegan_base()`'s, taken from there rather than copied.
Imports no jax (configs stay cheap to load).
"""

from __future__ import annotations

from typing import Any

import ml_collections

from jaxstyle import config_lib, networks
from jaxstyle.cyclegan import presets as cyclegan_presets

# What `validate` accepts. The generator must expose feature taps (models/cut.py's CutGenerator);
# 'patchgan' (no blur-pool) is the reference's `--no_antialias` discriminator.
GENERATORS = ('resnet_antialias',)
DISCRIMINATORS = ('patchgan_antialias', 'patchgan')
# The reference generator's nn.Sequential length for `n_blocks` (models.cut.generator_layers):
# pad, stem, norm, relu; 2 x (conv, norm, relu, blur); the blocks; 2 x (blur, conv, norm, relu);
# pad, head, tanh. `nce.layers` index into it.
GENERATOR_LAYERS_BASE = 23
check_inputs = cyclegan_presets.check_inputs  # the same files: init weights, resume run, data root
synthetic_job = cyclegan_presets.synthetic_job  # the CycleGAN main job's shapes, schedule, loop


def cut_base() -> ml_collections.ConfigDict:
  """CUT on horse2zebra as the paper trains it (`--CUT_mode CUT`)."""
  base = cyclegan_presets.cyclegan_base()
  c = ml_collections.ConfigDict()
  c.task = 'cut'
  c.seed = 0
  c.data = base.data
  c.data.update(
    dict(name='horse2zebra', image_size=256, load_size=286, augment='reference', epoch_rule='max')
  )
  c.model = networks.cut_model()
  # lambda_gan: GAN(G(X)); lambda_nce: NCE(G(X), X); nce_idt: also NCE(G(Y), Y), the two averaged.
  c.loss = ml_collections.ConfigDict(dict(lambda_gan=1.0, lambda_nce=1.0, nce_idt=True))
  # PatchNCE (`--nce_layers`, `--num_patches`, `--nce_T`, `--flip_equivariance`): the generator
  # taps, patches per tap (distinct positions, shared by the input and output passes), the
  # temperature, negatives from the same image only (`--nce_includes_all_negatives_from_minibatch`
  # False), and FastCUT's random horizontal flip of the input whose query features are flipped back.
  c.nce = ml_collections.ConfigDict(
    dict(
      layers=(0, 4, 8, 12, 16),
      num_patches=256,
      temperature=0.07,
      all_negatives_from_minibatch=False,
      flip_equivariance=False,
    )
  )
  c.optim = base.optim
  c.optim.update(dict(schedule='junyanz', n_epochs=200, n_epochs_decay=200))
  for key in ('per_device_batch', 'total_steps', 'log_every', 'sample_every', 'num_samples'):
    c[key] = base[key]
  c.num_epochs = 400.0
  for key in ('progress', 'ckpt', 'resume', 'init', 'eval_at_end', 'eval_max_images', 'eval'):
    c[key] = base[key]
  return c


def fastcut(c: ml_collections.ConfigDict) -> None:
  """What `--CUT_mode FastCUT` changes: λ_NCE 10, no identity NCE, flip equivariance, 150 + 50."""
  c.loss.update(dict(lambda_nce=10.0, nce_idt=False))
  c.nce.flip_equivariance = True
  c.optim.update(dict(n_epochs=150, n_epochs_decay=50))
  c.num_epochs = 200.0


def cut_runlocal(c: ml_collections.ConfigDict, image_size: int = 16) -> None:
  """Shrinks a preset to a CPU smoke run of the same pipeline (synthetic data, tiny nets).

  With one residual block the default taps 12 and 16 would fall in the decoder: the taps become
  the input, both downsampling convs and the block.
  """
  cyclegan_presets.cyclegan_runlocal(c, image_size)
  del c.pool_size  # set by the CycleGAN runlocal; CUT keeps no image pool
  c.data.augment = 'book'
  c.nce.layers = (0, 4, 8, 12)
  c.nce.num_patches = 32
  c.model.mlp_features = 16
  c.eval_max_images = 16


def nce_layer_count(c: Any) -> int:
  """How many indices the generator's layer list has (the `nce.layers` range)."""
  return GENERATOR_LAYERS_BASE + int(c.model.n_blocks)


def validate(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks every field a CUT run reads, before any model is built; returns `c`.

  The fields CUT shares with CycleGAN are checked by the same code (`cyclegan_presets
  .check_shared`); raises one ConfigError naming every bad field.
  """
  ck = config_lib.Checks(c)
  cyclegan_presets.check_shared(ck, c)
  m = 'model.'
  ck.choice(m + 'generator', GENERATORS)
  ck.choice(m + 'discriminator', DISCRIMINATORS)
  ck.integer(m + 'mlp_features', 1)
  for key in ('lambda_gan', 'lambda_nce'):
    ck.number('loss.' + key)
  ck.choice('loss.nce_idt', (True, False))
  ck.choice('nce.flip_equivariance', (True, False))
  ck.choice('nce.all_negatives_from_minibatch', (True, False))
  ck.integer('nce.num_patches', 1)
  ck.number('nce.temperature', strict=True)
  layers = c.nce.layers
  ok = isinstance(layers, (tuple, list)) and len(layers) > 0
  ok = ok and all(isinstance(i, int) and not isinstance(i, bool) for i in layers)
  n = nce_layer_count(c) if isinstance(c.model.n_blocks, int) else 0
  ck.require(
    ok and all(0 <= i < n for i in layers) and all(a < b for a, b in zip(layers, layers[1:])),
    f'nce.layers={layers!r} must be strictly increasing generator layer indices in [0, {n}) '
    f'(model.n_blocks={c.model.n_blocks}; docs/cut.md lists what each index is)',
  )
  size, n_layers = c.data.image_size, c.model.n_layers
  if c.model.discriminator == 'patchgan_antialias' and isinstance(size, int) and size > 0:
    ck.require(
      isinstance(n_layers, int) and antialias_d_side(size, n_layers) >= 1,
      f'data.image_size={size} is too small for the anti-aliased PatchGAN with '
      f'model.n_layers={n_layers} (its score map would be empty; lower n_layers or raise the size)',
    )
  ck.raise_if_any()
  return c


def antialias_d_side(size: int, n_layers: int) -> int:
  """The score map's side: each 4x4 stride-1 conv (pad 1) loses a pixel, each blur-pool halves
  (rounding up), and the head is one more 4x4 conv."""
  side = size
  for i in range(n_layers + 1):
    side -= 1
    if i < n_layers:
      side = (side - 1) // 2 + 1
  return side - 1
