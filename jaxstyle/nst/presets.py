"""NST presets: every field defined once; the files in configs/ state only what they change.

Like config_lib, this imports only ml_collections, so configs stay cheap to load (no jax).
The base values are the book's Figure 5-18 settings.
"""
from __future__ import annotations

import ml_collections


def nst_base(content: str, style: str) -> ml_collections.ConfigDict:
  """Every NST field, at the book's Figure 5-18 values (`style` may join several with '+')."""
  c = ml_collections.ConfigDict()
  c.task = 'nst'
  c.content = content
  c.styles = tuple(s for s in style.split('+') if s)  # several styles: a.jpg+b.jpg
  c.style_blend = ()
  c.output = 'book.png'
  c.seed = 0
  c.init = 'content'
  c.init_image = ''
  c.noise_scale = 1.0
  c.colors = 'transfer'
  c.scales = 1
  c.image = ml_collections.ConfigDict(dict(
      height=400, max_side=0,
      resize='nearest',       # Keras load_img default
      style_mode='match',     # style loaded at the content's (400, W): stretched
      style_scale=1.0))
  c.vgg = ml_collections.ConfigDict(dict(source='keras', path='', pool='max', remat='auto',
                                         dtype='float32'))
  c.loss = ml_collections.ConfigDict(dict(
      normalisation='book', content_layers=('block5_conv2',),
      style_layers=tuple(f'block{b}_conv1' for b in range(1, 6)),
      layer_weights=(),       # book: style_weight / 5 per layer
      content_weight=1.0, style_weight=100.0, tv_weight=20.0, style_weights=()))
  c.optim = ml_collections.ConfigDict(dict(
      name='lbfgs', segments=10,
      segment_iters=20,       # mirrors maxfun=20 per outer iteration
      restart=True, lr=10.0,
      memory_size=10,         # scipy's m
      linesearch_steps=20))   # scipy's maxls
  c.snapshots = True
  c.strip_iters = (0, 1, 2, 4, 9)
  c.progress = True
  return c
