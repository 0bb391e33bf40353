"""The CycleGAN networks the benches time (`--arch`): shared by `bench cyclegan|translate` and the
data bench's training steps (`bench_data_train.py`), which must not import bench.py (it imports them).
"""

from __future__ import annotations

from typing import Any

import ml_collections

from jaxstyle.cyclegan import presets

BOOK = dict(norm_eps=1e-3, eps_mode='std')
# name -> (image side, overrides of presets.reference_model)
ARCHS: dict[str, tuple[int, dict[str, Any]]] = {
  'unet128': (
    128,
    dict(
      generator='unet_book',
      gen_filters=32,
      discriminator='patchgan_book',
      disc_filters=32,
      init='keras',
      **BOOK,
    ),
  ),  # book Example 5-1
  'resnet256': (256, dict(generator='resnet', n_blocks=9, discriminator='patchgan')),  # reference
}


def bench_config(
  arch: str, dtype: str, lambda_id: float, conv_impl: str = 'auto'
) -> ml_collections.ConfigDict:
  """The book's CycleGAN config (the fields `train_state` reads) with the arch's networks."""
  _, overrides = ARCHS[arch]
  config = presets.cyclegan_base()
  config.model = presets.reference_model(**overrides, dtype=dtype, conv_impl=conv_impl)
  config.loss.lambda_id = lambda_id
  return config
