"""NST quality preset: Gatys normalisation, relu4_2 content, coarse-to-fine 128 -> 256 -> 512 px.

Gatys et al. losses (content ½Σ on relu4_2; style Σ(G−A)²/(4N²M²) on relu1_1..relu5_1 with
shallow-favouring layer weights 256:64:16:4:1 as in crowsonkb/style-transfer-pytorch), a light
book-style TV term, Keras weights, longest side 512 with bilinear resizing and the style image kept
at its aspect (jcjohnson -style_scale). Three scales, each 10 segments x 20 L-BFGS iterations; every
scale starts from the upsampled result of the previous one and recomputes its targets.
The weights are the Gatys paper's alpha/beta ~1e-4 starting point; they have not yet been tuned on
real images (no accelerator run so far).

Command:
  jaxstyle stylize content.jpg style.jpg -o out/quality.png --config configs/nst_quality.py
  jaxstyle train --config configs/nst_quality.py:content=content.jpg,style=style.jpg --workdir out/q
Hardware: <to be measured on a GPU/TPU>.
Wall time: <to be measured>; ~600 L-BFGS iterations, most of them at 512 px.
Expected: quality.png (512 px longest side), snapshots and quality_progress.png; <result to record>.
"""
import ml_collections

from jaxstyle import config_lib


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, content="", style="", runlocal=False)
  c = ml_collections.ConfigDict()
  c.task = "nst"
  c.content = arg.content
  c.styles = tuple(s for s in arg.style.split("+") if s)
  c.style_blend = ()
  c.output = "quality.png"
  c.seed = 0
  c.init = "content"
  c.init_image = ""
  c.noise_scale = 1.0
  c.colors = "transfer"
  c.scales = 3

  c.image = ml_collections.ConfigDict()
  c.image.height = 0
  c.image.max_side = 512
  c.image.resize = "bilinear"
  c.image.style_mode = "scale"
  c.image.style_scale = 1.0

  c.vgg = ml_collections.ConfigDict()
  c.vgg.source = "keras"
  c.vgg.path = ""
  c.vgg.pool = "max"
  c.vgg.remat = "auto"
  c.vgg.dtype = "float32"

  c.loss = ml_collections.ConfigDict()
  c.loss.normalisation = "gatys"
  c.loss.content_layers = ("block4_conv2",)
  c.loss.style_layers = tuple(f"block{b}_conv1" for b in range(1, 6))
  c.loss.layer_weights = tuple(w / 341.0 for w in (256.0, 64.0, 16.0, 4.0, 1.0))
  c.loss.content_weight = 1.0
  c.loss.style_weight = 1e4
  c.loss.tv_weight = 1e-3
  c.loss.style_weights = ()

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "lbfgs"
  c.optim.segments = 10
  c.optim.segment_iters = 20
  c.optim.restart = False        # keep the curvature history across segments of one scale
  c.optim.lr = 10.0              # used when optim.name='adam'
  c.optim.memory_size = 10
  c.optim.linesearch_steps = 20

  c.snapshots = True
  c.strip_iters = ()
  c.progress = True

  if arg.runlocal:
    c.image.max_side = 64
    c.scales = 2
    c.optim.segments = 2
    c.optim.segment_iters = 3
  return c


def get_sweep():
  """Style-weight ablation (one vmapped program via `--style-weights 1e3,1e4,1e5`)."""
  return [{"loss.style_weight": w} for w in (1e3, 1e4, 1e5)]
