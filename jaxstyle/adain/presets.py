"""AdaIN training presets: every field defined once; configs/adain.py states only what it changes.

Imports only ml_collections (configs stay cheap to load). The base values are the reference
trainer's (naoto0804/pytorch-AdaIN `train.py`, after Huang & Belongie 2017): Adam 1e-4 with the
decay lr / (1 + 5e-5 · iteration), content weight 1, style weight 10, batch 8, images squashed to
512² and randomly cropped to 256², 160,000 iterations, a checkpoint every 10,000. Content comes
from the embedded synthetic scenes (offline), a folder or TFDS `coco/2017` (the reference trained
on MS-COCO); styles from the embedded patterns or a folder (the reference: WikiArt).
"""

from __future__ import annotations

import os

import ml_collections

from jaxstyle import config_lib
from jaxstyle.fast_style import presets as fs_presets
from jaxstyle.fast_style.presets import CONV_IMPLS as CONV_IMPLS
from jaxstyle.fast_style.presets import SOURCES as SOURCES

STYLE_SOURCES = ('synthetic', 'folder')
# The encoder's depth: relu4_1 is pooled three times, so crops are multiples of 8.
SIZE_MULTIPLE = 8


def adain_base() -> ml_collections.ConfigDict:
  """Every AdaIN training field, at the reference trainer's values, on embedded data."""
  c = ml_collections.ConfigDict()
  c.task = 'adain'
  c.seed = 0
  # Content: the fast-style `data` section (synthetic | folder | tfds coco/2017), plus load_size:
  # every image (content and style) is squashed to load_size², then randomly cropped to
  # image_size² (the reference's transform).
  c.data = fs_presets.fast_style_base().data
  c.data.load_size = 512
  c.style = ml_collections.ConfigDict(
    dict(
      source='synthetic',  # synthetic (embedded patterns, recoloured and zoomed) | folder
      root='',  # folder: training style images (recursive: the WikiArt layout works as it is)
      test_root='',  # folder: held-out styles for samples and eval ('' = the first of root)
      synthetic_size=400,  # embedded pattern variants to train on (held-out ones are others)
    )
  )
  c.vgg = ml_collections.ConfigDict(
    dict(
      source='keras',  # keras | torchvision | random (seeded He init: smoke tests only)
      path='',
      pool='max',
      dtype='float32',
      conv_impl='auto',
    )
  )
  # The decoder's compute dtype and conv implementation (kernels/dispatch.py).
  c.model = ml_collections.ConfigDict(dict(dtype='float32', conv_impl='auto'))
  c.loss = ml_collections.ConfigDict(dict(content_weight=1.0, style_weight=10.0, eps=1e-5))
  c.optim = ml_collections.ConfigDict(dict(lr=1e-4, lr_decay=5e-5, b1=0.9, b2=0.999, eps=1e-8))
  c.per_device_batch = 8
  c.total_steps = 160_000
  c.log_every = 100
  c.sample_every = 5000
  c.num_samples = 4  # held-out content images in the sample grid and the eval ...
  c.num_sample_styles = 4  # ... each in this many held-out styles
  c.progress = True
  c.ckpt = ml_collections.ConfigDict(dict(every_steps=10_000, keep=3))
  c.resume = ''
  return c


def runlocal(c: ml_collections.ConfigDict) -> None:
  """Shrinks the preset to an offline CPU run of a few minutes: 32² crops of 48² images."""
  c.data.source = 'synthetic'
  c.style.source = 'synthetic'
  c.data.load_size = 48
  c.data.image_size = 32
  c.data.synthetic_size = 128
  c.style.synthetic_size = 32
  c.per_device_batch = 2
  c.total_steps = 60
  c.log_every = 10
  c.sample_every = 30
  c.num_samples = 2
  c.num_sample_styles = 2
  c.ckpt.every_steps = 30


def validate(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks every field an AdaIN run reads, before anything is built; returns `c`."""
  ck = config_lib.Checks(c)
  ck.integer('seed', 0)
  fs_presets.check_content(ck, c, sizes=('load_size', 'image_size'))
  size, load = c.data.image_size, c.data.load_size
  ck.require(
    not isinstance(size, int) or (size % SIZE_MULTIPLE == 0 and size >= 16),
    f'data.image_size={size} must be a multiple of {SIZE_MULTIPLE} and ≥ 16 (the encoder pools '
    'three times and the decoder upsamples back)',
  )
  ck.require(
    not isinstance(size, int) or not isinstance(load, int) or load >= size,
    f'data.load_size={load} must be ≥ data.image_size={size} (crops are cut from it)',
  )
  ck.choice('style.source', STYLE_SOURCES)
  ck.require(
    c.style.source != 'folder' or bool(c.style.root),
    "style.source='folder' needs style.root (a folder of style images, e.g. WikiArt)",
  )
  ck.integer('style.synthetic_size', 1)
  fs_presets.check_vgg(ck)
  ck.choice('model.dtype', ('float32', 'bfloat16'))
  ck.choice('model.conv_impl', CONV_IMPLS)
  ck.number('loss.content_weight')
  ck.number('loss.style_weight')
  ck.number('loss.eps', strict=True)
  ck.number('optim.lr_decay')
  fs_presets.check_training(ck, c)
  ck.integer('num_sample_styles', 1)
  ck.raise_if_any()
  return c


def check_inputs(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks that every folder and file the run names exists (content, styles, the VGG19 file)."""
  ck = config_lib.Checks(c)
  for section, what in (('data', 'content'), ('style', 'style')):
    if c[section].source != 'folder':
      continue
    for key in ('root', 'test_root'):
      folder = c[section][key]
      ck.require(
        not folder or os.path.isdir(folder),
        f'{section}.{key} {folder!r} is not a folder (of {what} images)',
      )
  ck.require(
    not c.vgg.path or os.path.isfile(c.vgg.path),
    f'vgg.path {c.vgg.path!r} does not exist (a Keras .h5 or torchvision .pth VGG19 file)',
  )
  ck.raise_if_any()
  return c
