"""NST, jcjohnson-like preset: the one `jaxstyle stylize` uses when no --config is given.

jcjohnson/neural-style's sizing and layers: longest side 512 with bilinear resizing, the style
image kept at its aspect, content on block4_conv2 (relu4_2), style on block1..5_conv1, Gatys
normalisation; content 1 / style 1e3 / no TV (jaxstyle's weights, not jcjohnson's 5 / 100 / 1e-3).
10 segments of 20 L-BFGS iterations with the curvature history kept across segments.
The fields live in `jaxstyle.nst.presets.jcjohnson`; this file only adds `runlocal`.

Command:
  jaxstyle stylize content.jpg style.jpg -o out/stylized.png          # this preset
  jaxstyle train --config configs/nst_jcjohnson.py:content=content.jpg,style=style.jpg --workdir out/j
  jaxstyle bench preset --config configs/nst_jcjohnson.py  # s per evaluation
Hardware: one loss + gradient evaluation measured at the preset's shape (384x512 for a 4:3 content
  image) with random-initialised VGG19 and random stand-in images (the ImageNet weights are not on
  the development machines), 2-core AMD EPYC CPU (AVX2), jaxlib 0.10.2: 10.2 s with other jobs on
  the cores (2.84 s at 512² on the quiet machine), compile 22 s, peak RSS 1.5 GiB; on one H100, 500
  L-BFGS iterations at 512² ran in 2.00 s (docs/performance.md: "Presets at their real shapes", the
  CPU and GPU tables).
Wall time: measured on the quiet machine with random VGG19 weights: 439 s for the whole command on a
  512x512 content image (docs/fast_style.md "Speed"); projected at 384x512 from the evaluation time
  (at least 200 evaluations): about 7 min (quiet) to 34 min (loaded) on that CPU, under 1 s on one
  H100. Published: jcjohnson/neural-style's README ("Speed") gives 30-45 s for 500 L-BFGS iterations
  at 512 px on a Pascal Titan X.
Expected: stylized.png (longest side 512), per-segment snapshots and stylized_progress.png, in the
  look of jcjohnson/neural-style's README examples (Gatys et al. 2016); not pixel-comparable, since
  the loss weights are jaxstyle's.
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.nst import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, content='', style='', runlocal=False)
  c = presets.jcjohnson(arg.content, arg.style)
  if arg.runlocal:  # a CPU smoke run of the same pipeline in about a minute
    c.image.max_side = 64
    c.optim.segments = 3
    c.optim.segment_iters = 4
  return c


def get_sweep():
  """Style-weight ablation around the default 1e3 (all in one process via --style-weights)."""
  return [{'loss.style_weight': w} for w in (1e2, 1e3, 1e4)]
