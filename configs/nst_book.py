"""NST, book Figure 5-18 settings: the Keras example (GDL 1st ed., ch. 5) with targets computed once.

Content 1 / style 100 / TV 20, height 400 with nearest resize (the style image is stretched to the
content's size), Keras VGG19 weights (BGR caffe preprocessing), content block5_conv2, style
block1..5_conv1 with the book normalisers (nst.md §1.3). 10 outer iterations of 20 L-BFGS
iterations each, the L-BFGS state rebuilt every outer iteration like the book's `fmin_l_bfgs_b(maxfun=20)`
restarts; `optim.name='lbfgs_scipy'` runs scipy's L-BFGS-B itself for a trajectory-exact comparison.

Command:
  jaxstyle stylize content.jpg style.jpg -o out/book.png --config configs/nst_book.py
  jaxstyle train --config configs/nst_book.py:content=content.jpg,style=style.jpg --workdir out/book
Hardware: not yet measured on an accelerator; on 2 shared CPU cores one 400x533 evaluation takes
  seconds (nst.md §7.2: ~314 GFLOP per evaluation), so the full run is for a GPU/TPU.
Wall time: <to be measured>; expected ~1-3 s of device time on an H100 (nst.md §7.3).
Expected: <prefix>_at_iteration_{0..9}.png and <prefix>_progress.png (content | style | snapshots);
  the loss falls monotonically across segments; the image matches the book's Figure 5-18 look.
"""
import ml_collections

from jaxstyle import config_lib
from jaxstyle.nst import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, content="", style="", runlocal=False)
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
  return [{"loss.style_weight": w} for w in (10.0, 100.0, 1000.0)]
