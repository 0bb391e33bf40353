"""Fast-style presets: every field defined once; configs/fast_style_*.py state only what they change.

Like the other presets modules this imports only ml_collections (configs stay cheap to load).
The base values are Johnson et al. 2016 as jcjohnson/fast-neural-style trains it: VGG content at
relu3_3 (`block3_conv3`), Gram style at relu1_2, relu2_2, relu3_3, relu4_3 (here VGG19's layers of
those names), content 1, style 5, TV 1e-6, MSE normalisation (`nst.losses`' 'johnson'), Adam 1e-3,
batch 4 of 256² crops, 40,000 steps (two epochs of COCO's 80k images).
"""

from __future__ import annotations

import os

import ml_collections

from jaxstyle import config_lib
from jaxstyle.nst.presets import CONV_IMPLS as CONV_IMPLS  # one list each for both tasks
from jaxstyle.nst.presets import NORMALISATIONS as NORMALISATIONS
from jaxstyle.nst.presets import VGG_SOURCES as VGG_SOURCES
from jaxstyle.nst.presets import vgg_layer_ok, why_not_a_file

# What `validate` accepts (kept equal to the runtime code by tests/test_config_validation.py).
SOURCES = ('synthetic', 'folder', 'tfds')
UPSAMPLES = ('resize', 'transpose')
OUTPUTS = ('tanh', 'linear')
SYNTHETIC_STYLES = ('stripes', 'checks', 'dots', 'waves')
SYNTHETIC_PREFIX = 'synthetic:'


def fast_style_base() -> ml_collections.ConfigDict:
  """Every fast-style field, at Johnson et al.'s values, on the embedded synthetic content."""
  c = ml_collections.ConfigDict()
  c.task = 'fast_style'
  c.seed = 0
  # Style images: paths, or `synthetic:NAME` (an embedded pattern: stripes, checks, dots, waves),
  # so an offline run needs no file. Several styles need model.conditional=True.
  c.styles = ('synthetic:stripes',)
  c.style_size = 256  # longest side each style image is resized to (0 = as it is)
  c.data = ml_collections.ConfigDict(
    dict(
      source='synthetic',  # synthetic (offline default) | folder | tfds
      root='',  # folder: training content images (recursive)
      test_root='',  # folder: held-out images for samples/eval ('' = the first of root)
      name='coco/2017',  # tfds: any dataset with an 'image' feature, read via data_source
      split='train',
      test_split='validation',
      data_dir='',
      tfds_download=False,
      image_size=256,  # content crops: shorter side resized to this, centre crop
      synthetic_size=4000,
      on_bad_file='skip',
      seed=0,
      prefetch=2,
      num_workers=2,
    )
  )
  c.model = ml_collections.ConfigDict(
    dict(
      conditional=False,  # True: conditional instance norm, one γ/β row per style
      upsample='resize',
      output='tanh',
      filters=32,
      n_blocks=5,
      init_scheme='normal',
      init_gain=0.02,
      dtype='float32',
      conv_impl='auto',
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
  c.loss = ml_collections.ConfigDict(
    dict(
      normalisation='johnson',
      content_layers=('block3_conv3',),
      style_layers=('block1_conv2', 'block2_conv2', 'block3_conv3', 'block4_conv3'),
      layer_weights=(1.0, 1.0, 1.0, 1.0),
      content_weight=1.0,
      style_weight=5.0,
      tv_weight=1e-6,
      tv_exponent=1.0,
    )
  )
  c.optim = ml_collections.ConfigDict(dict(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8))
  c.per_device_batch = 4
  c.total_steps = 40_000
  c.log_every = 100
  c.sample_every = 2000
  c.num_samples = 4  # held-out content images in the sample grid and the eval
  c.progress = True
  c.ckpt = ml_collections.ConfigDict(dict(every_steps=2000, keep=3))
  c.resume = ''
  return c


def runlocal(c: ml_collections.ConfigDict) -> None:
  """Shrinks a preset to a CPU run of a few minutes: 64² crops, 60 steps, small style images."""
  c.data.source = 'synthetic'
  c.data.image_size = 64
  c.data.synthetic_size = 256
  c.style_size = 64
  c.per_device_batch = 2
  c.total_steps = 60
  c.log_every = 10
  c.sample_every = 30
  c.num_samples = 2
  c.ckpt.every_steps = 30


def n_styles(c: ml_collections.ConfigDict) -> int:
  """Styles the network holds: all of `styles` for a conditional net, else 1."""
  return len(c.styles) if c.model.conditional else 1


def validate(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks every field a fast-style run reads, before anything is built; returns `c`."""
  ck = config_lib.Checks(c)
  ck.require(
    len(c.styles) >= 1,
    'styles is empty: give style images (--config.styles=a.jpg,b.jpg) '
    f'or embedded patterns ({", ".join(SYNTHETIC_PREFIX + s for s in SYNTHETIC_STYLES)})',
  )
  ck.require(
    len(c.styles) == 1 or c.model.conditional,
    f'{len(c.styles)} styles need a conditional network: set model.conditional=True '
    '(or use configs/fast_style_multi.py)',
  )
  bad = [
    s
    for s in c.styles
    if str(s).startswith(SYNTHETIC_PREFIX)
    and str(s)[len(SYNTHETIC_PREFIX) :] not in SYNTHETIC_STYLES
  ]
  ck.require(
    not bad,
    f'unknown embedded styles {bad}; choose from '
    f'{", ".join(SYNTHETIC_PREFIX + s for s in SYNTHETIC_STYLES)}',
  )
  ck.integer('style_size', 0)
  ck.integer('seed', 0)
  m = 'model.'
  check_content(ck, c)
  size = c.data.image_size
  ck.require(
    not isinstance(size, int) or (size % 4 == 0 and size >= 16),
    f'data.image_size={size} must be a multiple of 4 and ≥ 16 (two stride-2 downs)',
  )
  ck.choice(m + 'upsample', UPSAMPLES)
  ck.choice(m + 'output', OUTPUTS)
  ck.choice(m + 'init_scheme', ('normal', 'keras'))
  ck.choice(m + 'dtype', ('float32', 'bfloat16'))
  ck.choice(m + 'conv_impl', CONV_IMPLS)
  ck.integer(m + 'filters', 1)
  ck.integer(m + 'n_blocks', 0)
  ck.number(m + 'init_gain', strict=True)
  check_vgg(ck)
  _check_loss(ck, c)
  check_training(ck, c)
  ck.raise_if_any()
  return c


def check_content(
  ck: config_lib.Checks, c: ml_collections.ConfigDict, sizes: tuple[str, ...] = ('image_size',)
) -> None:
  """The `data` section (content images) as fast style and AdaIN share it; `sizes`: its
  positive integer image sides."""
  d = 'data.'
  ck.choice(d + 'source', SOURCES)
  ck.require(
    c.data.source != 'folder' or bool(c.data.root),
    "data.source='folder' needs data.root (a folder of content images)",
  )
  ck.choice(d + 'on_bad_file', ('skip', 'error'))
  for key in (*sizes, 'synthetic_size', 'prefetch'):
    ck.integer(d + key, 1)
  for key in ('num_workers', 'seed'):
    ck.integer(d + key, 0)


def check_vgg(ck: config_lib.Checks) -> None:
  """The frozen VGG19's `vgg` section."""
  ck.choice('vgg.source', VGG_SOURCES)
  ck.choice('vgg.pool', ('max', 'avg'))
  ck.choice('vgg.dtype', ('float32', 'bfloat16'))
  ck.choice('vgg.conv_impl', CONV_IMPLS)


def check_training(ck: config_lib.Checks, c: ml_collections.ConfigDict) -> None:
  """Adam's `optim` fields, the loop's batch, lengths and intervals, the samples, `ckpt.keep`."""
  ck.number('optim.lr', strict=True)
  ck.number('optim.b1', high=1.0)
  ck.number('optim.b2', high=1.0)
  ck.number('optim.eps', strict=True)
  for key in ('per_device_batch', 'total_steps', 'log_every', 'sample_every', 'ckpt.every_steps'):
    ck.integer(key, 1)
  ck.integer('num_samples', 0)
  ck.require(
    c.ckpt.keep is None or (isinstance(c.ckpt.keep, int) and c.ckpt.keep >= 1),
    f'ckpt.keep={c.ckpt.keep!r} must be None (keep all) or an integer ≥ 1',
  )


def _check_loss(ck: config_lib.Checks, c: ml_collections.ConfigDict) -> None:
  lc = c.loss
  ck.choice('loss.normalisation', NORMALISATIONS)
  ck.require(len(lc.content_layers) > 0, 'loss.content_layers is empty; name at least one layer')
  ck.require(len(lc.style_layers) > 0, 'loss.style_layers is empty; name at least one layer')
  bad = [n for n in (*lc.content_layers, *lc.style_layers) if not vgg_layer_ok(n)]
  ck.require(not bad, f'unknown VGG19 layers {bad}; use blockB_convI, convB_I or reluB_I')
  ck.require(
    not lc.layer_weights or len(lc.layer_weights) == len(lc.style_layers),
    f'loss.layer_weights has {len(lc.layer_weights)} weights for '
    f'{len(lc.style_layers)} style layers',
  )
  for key in ('content_weight', 'style_weight', 'tv_weight'):
    ck.number('loss.' + key)
  ck.number('loss.tv_exponent', strict=True)


def check_inputs(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks that every file the run names exists (style images, folders, the VGG19 file) and
  that the style images decode."""
  ck = config_lib.Checks(c)
  for path in c.styles:
    ck.require(
      str(path).startswith(SYNTHETIC_PREFIX) or os.path.isfile(path),
      f'style image {path!r} {why_not_a_file(path)}',
    )
  if c.data.source == 'folder':
    for key in ('root', 'test_root'):
      folder = c.data[key]
      ck.require(not folder or os.path.isdir(folder), f'data.{key} {folder!r} is not a folder')
  ck.require(
    not c.vgg.path or os.path.isfile(c.vgg.path),
    f'vgg.path {c.vgg.path!r} does not exist (a Keras .h5 or torchvision .pth VGG19 file)',
  )
  ck.raise_if_any()
  from jaxstyle import image_io  # PIL: only when a run starts, not when a config file loads

  for path in c.styles:
    if not str(path).startswith(SYNTHETIC_PREFIX):
      image_io.load_rgb(path)  # decoded now: a bad image is one line before VGG19 or a workdir
  return c
