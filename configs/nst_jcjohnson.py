"""NST, jcjohnson-like preset: the one `jaxstyle stylize` uses when no --config is given.

jcjohnson/neural-style's sizing and layers: longest side 512 with bilinear resizing, the style
image kept at its aspect, content on block4_conv2 (relu4_2), style on block1..5_conv1, Gatys
normalisation; content 1 / style 1e3 / no TV (jaxstyle's weights, not jcjohnson's 5 / 100 / 1e-3).
10 segments of 20 L-BFGS iterations with the curvature history kept across segments.
The fields live in `jaxstyle.nst.presets.jcjohnson`; this file only adds `runlocal`.

Command:
  jaxstyle stylize content.jpg style.jpg -o out/stylized.png          # this preset
  jaxstyle train --config configs/nst_jcjohnson.py:content=content.jpg,style=style.jpg --workdir out/j
Hardware: <to be measured on a GPU/TPU>.
Wall time: <to be measured>; 200 L-BFGS iterations at 512 px.
Expected: stylized.png (512 px longest side), snapshots and stylized_progress.png; <result to record>.
"""
import ml_collections

from jaxstyle import config_lib
from jaxstyle.nst import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, content="", style="", runlocal=False)
  c = presets.jcjohnson(arg.content, arg.style)
  if arg.runlocal:  # a CPU smoke run of the same pipeline in about a minute
    c.image.max_side = 64
    c.optim.segments = 3
    c.optim.segment_iters = 4
  return c


def get_sweep():
  """Style-weight ablation around the default 1e3 (all in one process via --style-weights)."""
  return [{"loss.style_weight": w} for w in (1e2, 1e3, 1e4)]
