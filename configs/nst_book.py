"""NST, book Figure 5-18 settings: the Keras example (GDL 1st ed., ch. 5) with targets computed once.

Content 1 / style 100 / TV 20, height 400 with nearest resize (the style image is stretched to the
content's size), Keras VGG19 weights (BGR caffe preprocessing), content block5_conv2, style
block1..5_conv1 with the book normalisers (nst.md §1.3). 10 outer iterations of 20 L-BFGS
iterations each, the L-BFGS state rebuilt every outer iteration like the book's `fmin_l_bfgs_b(maxfun=20)`
restarts; `optim.name='lbfgs_scipy'` runs scipy's L-BFGS-B itself for a trajectory-exact comparison.

Command:
  jaxstyle stylize content.jpg style.jpg -o out/book.png --config configs/nst_book.py
  jaxstyle train --config configs/nst_book.py:content=content.jpg,style=style.jpg --workdir out/book
  jaxstyle bench preset --config configs/nst_book.py  # s per evaluation
Hardware: one loss + gradient evaluation measured at the book's shape (400x533 for a 4:3 content
  image) with random-initialised VGG19 and random stand-in images (the Keras ImageNet weights are
  not on the development machines), 2-core AMD EPYC CPU (AVX2), jaxlib 0.10.2: 11.5 s with other
  jobs on the cores (2.84 s at 512² on the quiet machine), compile 24 s, peak RSS 1.6 GiB; 2.9 ms at
  512² on one H100 (docs/performance.md: "Presets at their real shapes", the CPU and GPU tables).
Wall time: projected, not run: 10 segments x 20 iterations, at least 200 evaluations: about 8 min
  (quiet, the 512² figure scaled by pixels) to 38 min on that CPU, about 1 s of device time on one
  H100. Published: the book's Keras script takes 10-15 min per 20-evaluation pass on a CPU
  (keras-team/keras#12917).
Expected: book_at_iteration_0.png .. book_at_iteration_9.png and book_progress.png (content | style
  | snapshots); the loss falls across the segments and the image takes the look of the book's Figure
  5-18 (Foster, Generative Deep Learning, O'Reilly 2019, ch. 5; Gatys et al. 2016).
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.nst import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, content='', style='', runlocal=False)
  c = presets.nst_base(arg.content, arg.style)  # the base is the book's Figure 5-18
  if arg.runlocal:  # a CPU smoke run of the same pipeline in about a minute
    c.image.height = 64
    c.optim.segments = 3
    c.optim.segment_iters = 4
    c.strip_iters = ()
  return c


def get_sweep():
  """Style-weight ablation around the book's 100 (one run each; `loss.style_weights` runs all three
  in one process instead, `optim.sweep` saying how)."""
  return [{'loss.style_weight': w} for w in (10.0, 100.0, 1000.0)]
