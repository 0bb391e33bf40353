"""NST quality preset: Gatys normalisation, relu4_2 content, coarse-to-fine 128 -> 256 -> 512 px.

Gatys et al. losses (content ½Σ on relu4_2; style Σ(G−A)²/(4N²M²) on relu1_1..relu5_1 with
shallow-favouring layer weights 256:64:16:4:1 as in crowsonkb/style-transfer-pytorch), a light
book-style TV term, Keras weights, longest side 512 with bilinear resizing and the style image kept
at its aspect (jcjohnson -style_scale). Three scales, each 10 segments x 20 L-BFGS iterations; every
scale starts from the upsampled result of the previous one and recomputes its targets.
The weights are the Gatys paper's alpha/beta ~1e-4 starting point. Not tuned: tuning needs the real
ImageNet VGG19 weights, which never reached the development machines (offline); see README "Weights".

Command:
  jaxstyle stylize content.jpg style.jpg -o out/quality.png --config configs/nst_quality.py
  jaxstyle train --config configs/nst_quality.py:content=content.jpg,style=style.jpg --workdir out/q
Hardware: <to be measured on a GPU/TPU>.
Wall time: <to be measured>; ~600 L-BFGS iterations, most of them at 512 px.
Expected: quality.png (512 px longest side), snapshots and quality_progress.png; <result to record>.
"""
import ml_collections

from jaxstyle import config_lib
from jaxstyle.nst import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, content="", style="", runlocal=False)
  c = presets.nst_base(arg.content, arg.style)
  c.output = "quality.png"
  c.scales = 3
  c.image.update(dict(height=0, max_side=512, resize="bilinear", style_mode="scale"))
  c.loss.update(dict(normalisation="gatys", content_layers=("block4_conv2",),
                     layer_weights=tuple(w / 341.0 for w in (256.0, 64.0, 16.0, 4.0, 1.0)),
                     style_weight=1e4, tv_weight=1e-3))
  c.optim.restart = False        # keep the curvature history across segments of one scale
  c.strip_iters = ()
  if arg.runlocal:
    c.image.max_side = 64
    c.scales = 2
    c.optim.segments = 2
    c.optim.segment_iters = 3
  return c


def get_sweep():
  """Style-weight ablation (all in one process via `--style-weights 1e3,1e4,1e5`)."""
  return [{"loss.style_weight": w} for w in (1e3, 1e4, 1e5)]
