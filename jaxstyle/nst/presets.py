"""NST presets: every field defined once; the files in configs/ state only what they change.

Like config_lib, this imports only ml_collections, so configs stay cheap to load (no jax).
The base values are the book's Figure 5-18 settings; `jcjohnson` is the `jaxstyle stylize`
default when no --config is given.
"""
from __future__ import annotations

import ml_collections


def nst_base(content: str, style: str) -> ml_collections.ConfigDict:
  """Every NST field, at the book's Figure 5-18 values (`style` may join several with '+')."""
  c = ml_collections.ConfigDict()
  c.task = 'nst'
  c.content = content
  c.styles = tuple(s for s in style.split('+') if s)  # several styles: a.jpg+b.jpg
  c.style_blend = ()             # blend weights of several style images (normalised); () = equal
  c.output = 'book.png'
  c.seed = 0
  c.init = 'content'             # content | noise | image
  c.init_image = ''
  c.noise_scale = 1.0            # noise init: uniform 0-255 image mixed with mid-grey by this much
  c.colors = 'transfer'          # transfer | preserve (luminance-only: content chroma kept)
  c.scales = 1                   # coarse-to-fine levels, each halving the side (3 = 1/4, 1/2, 1)
  c.image = ml_collections.ConfigDict(dict(
      height=400,             # fixed output height, width from the content's aspect
      max_side=0,             # > 0: longest output side instead (jcjohnson -image_size)
      resize='nearest',       # Keras load_img default; bilinear | bicubic | lanczos
      style_mode='match',     # match: style stretched to the output's (400, W); scale: keep aspect
      style_scale=1.0))       # scale mode: style longest side relative to the output's
  c.vgg = ml_collections.ConfigDict(dict(
      source='keras',         # keras | torchvision
      path='',                # local weight file; empty = cached download
      pool='max', remat='auto',  # remat: auto | on | off
      dtype='float32',
      conv_impl='auto'))      # auto | xla | subpixel | cpu_fast | cpu_winograd (kernels/dispatch.py)
  c.loss = ml_collections.ConfigDict(dict(
      normalisation='book',   # book | gatys
      content_layers=('block5_conv2',),
      style_layers=tuple(f'block{b}_conv1' for b in range(1, 6)),
      layer_weights=(),       # per style layer; () = the normalisation's (book: style_weight / 5)
      content_weight=1.0, style_weight=100.0, tv_weight=20.0,
      style_weights=()))      # sweep: one output per style weight, one vmapped program
  c.optim = ml_collections.ConfigDict(dict(
      name='lbfgs',           # lbfgs | adam | lbfgs_scipy
      segments=10,            # outer iterations (snapshots between them)
      segment_iters=20,       # iterations per jitted segment; mirrors maxfun=20 per outer iteration
      restart=True,           # rebuild the L-BFGS state every segment (the book's restarts)
      lr=10.0,                # Adam, in preprocessed units (0-255 for Keras weights)
      memory_size=10,         # scipy's m
      linesearch_steps=20))   # scipy's maxls
  c.snapshots = True             # <prefix>_at_iteration_<i>.png after every segment
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
  c.loss.update(dict(normalisation='gatys', content_layers=('block4_conv2',), style_weight=1e3,
                     tv_weight=0.0))
  c.optim.restart = False
  c.strip_iters = ()
  return c
