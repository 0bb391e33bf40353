"""NST presets: every field defined once; the files in configs/ state only what they change.

Like config_lib, this imports only ml_collections, so configs stay cheap to load (no jax).
The base values are the book's Figure 5-18 settings; `jcjohnson` is the `jaxstyle stylize`
default when no --config is given.
"""

from __future__ import annotations

import os
import re

import ml_collections

from jaxstyle import config_lib

# What `validate` accepts (kept equal to the runtime code by tests/test_config_validation.py).
OPTIMIZERS = ('lbfgs', 'adam', 'lbfgs_scipy')
RESIZE = ('nearest', 'bilinear', 'bicubic', 'lanczos')
CONV_IMPLS = ('auto', 'xla', 'subpixel', 'cpu_fast', 'cpu_winograd')
NORMALISATIONS = ('book', 'gatys', 'johnson')
VGG_SOURCES = ('keras', 'torchvision', 'random')
# How a style-weight sweep runs its members (nst/stylize.py, sweep_plan): 'sequential' reuses one
# single-image executable member after member, 'concurrent' runs up to one member per core at once
# through it, 'batched' vmaps them into one program.
SWEEP_STRATEGIES = ('auto', 'sequential', 'concurrent', 'batched')
VGG19_CONVS_PER_BLOCK = (2, 2, 4, 4, 4)
_LAYER = re.compile(r'^(?:block(\d)_conv(\d)|(?:conv|relu)(\d)_(\d))$')


def nst_base(content: str, style: str) -> ml_collections.ConfigDict:
  """Every NST field, at the book's Figure 5-18 values (`style` may join several with '+')."""
  c = ml_collections.ConfigDict()
  c.task = 'nst'
  c.content = content
  c.styles = tuple(s for s in style.split('+') if s)  # several styles: a.jpg+b.jpg
  c.style_blend = ()  # blend weights of several style images (normalised); () = equal
  c.output = 'book.png'
  c.seed = 0
  c.init = 'content'  # content | noise | image
  c.init_image = ''
  c.noise_scale = 1.0  # noise init: uniform 0-255 image mixed with mid-grey by this much
  c.colors = 'transfer'  # transfer | preserve (luminance-only: content chroma kept)
  c.scales = 1  # coarse-to-fine levels, each halving the side (3 = 1/4, 1/2, 1)
  c.image = ml_collections.ConfigDict(
    dict(
      height=400,  # fixed output height, width from the content's aspect
      max_side=0,  # > 0: longest output side instead (jcjohnson -image_size)
      resize='nearest',  # Keras load_img default; bilinear | bicubic | lanczos
      style_mode='match',  # match: style stretched to the output's (400, W); scale: keep aspect
      style_scale=1.0,
    )
  )  # style size relative to the output's (both modes)
  c.vgg = ml_collections.ConfigDict(
    dict(
      source='keras',  # keras | torchvision | random (seeded He init: benches, smoke runs)
      path='',  # local weight file; empty = cached download
      pool='max',
      remat='auto',  # remat: auto | on | off
      dtype='float32',
      conv_impl='auto',
    )
  )  # auto | xla | subpixel | cpu_fast | cpu_winograd (kernels/dispatch.py)
  c.loss = ml_collections.ConfigDict(
    dict(
      normalisation='book',  # book | gatys | johnson (nst.losses.NORMALISATIONS)
      content_layers=('block5_conv2',),
      style_layers=tuple(f'block{b}_conv1' for b in range(1, 6)),
      layer_weights=(),  # per style layer; () = the normalisation's (book: style_weight / 5)
      content_weight=1.0,
      style_weight=100.0,
      tv_weight=20.0,
      style_weights=(),
    )
  )  # sweep: one output per style weight (optim.sweep says how)
  c.optim = ml_collections.ConfigDict(
    dict(
      name='lbfgs',  # lbfgs | adam | lbfgs_scipy
      segments=10,  # outer iterations (snapshots between them)
      segment_iters=20,  # iterations per jitted segment; mirrors maxfun=20 per outer iteration
      restart=True,  # rebuild the L-BFGS state every segment (the book's restarts)
      lr=10.0,  # Adam, in preprocessed units (0-255 for Keras weights)
      memory_size=10,  # scipy's m
      linesearch_steps=20,  # scipy's maxls
      sweep='auto',
    )
  )  # style-weight sweeps: auto | sequential | concurrent | batched
  c.snapshots = True  # <prefix>_at_iteration_<i>.png after every segment
  c.strip_iters = (0, 1, 2, 4, 9)  # segments shown in the progress strip; () = about 4, evenly
  c.progress = True
  return c


def jcjohnson(content: str, style: str) -> ml_collections.ConfigDict:
  """`jaxstyle stylize`'s default (no --config): jcjohnson/neural-style's sizing and layers.

  Longest side 512 with bilinear resizing, the style image kept at its aspect, content on
  block4_conv2 (relu4_2) with the Gatys normalisation; L-BFGS keeps its history across segments.
  The weights (content 1, style 1e3, no TV) are jaxstyle's, not jcjohnson's 5 / 100 / 1e-3.
  """
  c = nst_base(content, style)
  c.output = 'stylized.png'
  c.image.update(dict(height=0, max_side=512, resize='bilinear', style_mode='scale'))
  c.loss.update(
    dict(normalisation='gatys', content_layers=('block4_conv2',), style_weight=1e3, tv_weight=0.0)
  )
  c.optim.restart = False
  c.strip_iters = ()
  return c


def vgg_layer_ok(name: str) -> bool:
  """Whether `name` is a VGG19 conv (`block4_conv2`, `conv4_2` or `relu4_2`)."""
  m = _LAYER.match(str(name))
  if not m:
    return False
  block, conv = (int(g) for g in (m.group(1, 2) if m.group(1) else m.group(3, 4)))
  return 1 <= block <= 5 and 1 <= conv <= VGG19_CONVS_PER_BLOCK[block - 1]


def validate(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks every field an NST run reads, before VGG19 is loaded; returns `c`.

  Raises one ConfigError naming each bad field, its value and the allowed range. The files it
  names are checked by `check_inputs`, when the run starts (a sweep expands without them).
  """
  ck = config_lib.Checks(c)
  ck.choice('init', ('content', 'noise', 'image'))
  ck.require(
    c.init != 'image' or bool(c.init_image), "init='image' needs init_image (--init-image PATH)"
  )
  ck.choice('colors', ('transfer', 'preserve'))
  ck.integer('scales', 1)
  ck.integer('seed', 0)
  ck.number('noise_scale')
  ck.integer('image.height', 0)
  ck.integer('image.max_side', 0)
  ck.require(
    not (c.image.height and c.image.max_side),
    f'give either image.height ({c.image.height}) or image.max_side ({c.image.max_side}), '
    'not both (set the other to 0)',
  )
  ck.choice('image.resize', RESIZE)
  ck.choice('image.style_mode', ('match', 'scale'))
  ck.number('image.style_scale', strict=True)
  ck.choice('vgg.source', VGG_SOURCES)
  ck.choice('vgg.pool', ('max', 'avg'))
  ck.choice('vgg.remat', ('auto', 'on', 'off'))
  ck.choice('vgg.dtype', ('float32', 'bfloat16'))
  ck.choice('vgg.conv_impl', CONV_IMPLS)
  lc = c.loss
  ck.choice('loss.normalisation', NORMALISATIONS)
  ck.require(len(lc.content_layers) > 0, 'loss.content_layers is empty; name at least one layer')
  bad = [n for n in (*lc.content_layers, *lc.style_layers) if not vgg_layer_ok(n)]
  ck.require(
    not bad,
    f'unknown VGG19 layers {bad}; use blockB_convI, convB_I or reluB_I '
    '(B 1-5; I 1-2 in blocks 1-2, 1-4 in blocks 3-5)',
  )
  ck.require(
    not lc.layer_weights or len(lc.layer_weights) == len(lc.style_layers),
    f'loss.layer_weights has {len(lc.layer_weights)} weights for '
    f'{len(lc.style_layers)} style layers',
  )
  for key in ('content_weight', 'style_weight', 'tv_weight'):
    ck.number('loss.' + key)
  ck.require(
    all(w > 0 for w in lc.style_weights),
    f'loss.style_weights {tuple(lc.style_weights)} must all be > 0',
  )
  ck.require(
    not c.style_blend
    or (len(c.style_blend) == len(c.styles) and all(w > 0 for w in c.style_blend)),
    f'style_blend {tuple(c.style_blend)} must give one positive weight per style image '
    f'({len(c.styles)})',
  )
  o = 'optim.'
  ck.choice(o + 'name', OPTIMIZERS)
  ck.choice(o + 'sweep', SWEEP_STRATEGIES)
  ck.require(
    c.optim.name != 'lbfgs_scipy' or not lc.style_weights,
    "optim.name='lbfgs_scipy' runs one image at a time; drop loss.style_weights",
  )
  for key in ('segments', 'segment_iters', 'memory_size', 'linesearch_steps'):
    ck.integer(o + key, 1)
  ck.number(o + 'lr', strict=True)
  ck.raise_if_any()
  return c


def why_not_a_file(path: str) -> str:
  """Why an input path is not a file, for its error line."""
  if os.path.isdir(path):
    return 'is a directory, not a file'
  return 'is a symbolic link to a missing file' if os.path.islink(path) else 'does not exist'


def check_inputs(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks the run has a content and a style image and that every file it names exists and
  every image decodes."""
  ck = config_lib.Checks(c)
  ck.require(
    bool(c.content) and bool(c.styles),
    'NST needs a content image and at least one style image (jaxstyle stylize CONTENT '
    'STYLE, or --config configs/nst_book.py:content=a.jpg,style=b.jpg)',
  )
  for what, path in [
    ('content image', c.content),
    *[('style image', s) for s in c.styles],
    *([('init_image', c.init_image)] if c.init == 'image' else []),
  ]:
    ck.require(not path or os.path.isfile(path), f'{what} {path!r} {why_not_a_file(path)}')
  ck.require(
    not c.vgg.path or os.path.isfile(c.vgg.path),
    f'vgg.path {c.vgg.path!r} {why_not_a_file(c.vgg.path)} (a Keras .h5 or torchvision .pth '
    'VGG19 file)',
  )
  ck.raise_if_any()
  from jaxstyle import image_io  # PIL: only when a run starts, not when a config file loads

  init = [c.init_image] if c.init == 'image' and c.init_image else []
  for path in (c.content, *c.styles, *init):
    image_io.load_rgb(path)  # decoded now: a bad image is one line before VGG19 or a workdir
  return c
