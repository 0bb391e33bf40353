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
  jaxstyle bench preset --config configs/nst_quality.py  # s per evaluation
Hardware: one loss + gradient evaluation measured at each scale (96x128, 192x256, 384x512 for a 4:3
  content image) with random-initialised VGG19 and random stand-in images (the ImageNet weights are
  not on the development machines), 2-core AMD EPYC CPU (AVX2), jaxlib 0.10.2: 0.76 / 2.8 / 8.5 s
  with other jobs on the cores (2.84 s at 512² on the quiet machine), compile 40 s for the three,
  peak RSS 1.8 GiB; 2.9 ms at 512² on one H100 (docs/performance.md: "Presets at their real shapes",
  the CPU and GPU tables).
Wall time: projected, not run: 3 scales x 10 segments x 20 iterations, at least 600 evaluations:
  about 9 min (quiet, the 512² figure scaled by pixels) to 40 min on that CPU, about 1 s of device
  time on one H100. Published: crowsonkb/style-transfer-pytorch's README gives about fifteen minutes
  for a multi-scale run at 2896x2172 on an RTX 3090.
Expected: quality.png (longest side 512), snapshots and quality_progress.png in the look of Gatys et
  al.'s examples (CVPR 2016); the weights are untuned, so no published image is matched.
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.nst import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, content='', style='', runlocal=False)
  c = presets.nst_base(arg.content, arg.style)
  c.output = 'quality.png'
  c.scales = 3
  c.image.update(dict(height=0, max_side=512, resize='bilinear', style_mode='scale'))
  c.loss.update(
    dict(
      normalisation='gatys',
      content_layers=('block4_conv2',),
      layer_weights=tuple(w / 341.0 for w in (256.0, 64.0, 16.0, 4.0, 1.0)),
      style_weight=1e4,
      tv_weight=1e-3,
    )
  )
  c.optim.restart = False  # keep the curvature history across segments of one scale
  c.strip_iters = ()
  if arg.runlocal:
    c.image.max_side = 64
    c.scales = 2
    c.optim.segments = 2
    c.optim.segment_iters = 3
  return c


def get_sweep():
  """Style-weight ablation (all in one process via `--style-weights 1e3,1e4,1e5`)."""
  return [{'loss.style_weight': w} for w in (1e3, 1e4, 1e5)]
