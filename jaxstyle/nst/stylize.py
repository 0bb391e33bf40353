"""Neural style transfer driver: `stylize(config)`, `stylize_batch` sweeps and `run_config`.

Gatys-style optimisation over pixels against a frozen VGG19 (spec nst.md). The book preset is the
Keras example with its targets computed once and the L-BFGS loop on device; the CLI lives in
`jaxstyle/nst/cli.py` and is re-exported here as the `jaxstyle stylize` sub-command.
"""
from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxstyle.nst import image as nst_image
from jaxstyle.nst import optim as nst_optim

# Above this many output pixels the objective recomputes each VGG block in the backward pass with
# its losses inside it (vgg.block_losses). XLA:CPU plan for one Adam step (python -m
# jaxstyle.nst.memory --compiled): 1.5 vs 2.4 GiB at 1024^2, 11.8 vs 18.5 GiB at 3840x2160.
REMAT_AUTO_PIXELS = 1024 * 1024


def default_config() -> ml_collections.ConfigDict:
  """Every NST field with jcjohnson-like defaults; presets in configs/nst_*.py override them."""
  c = ml_collections.ConfigDict()
  c.task = "nst"
  c.content = ""
  c.styles = ()
  c.style_blend = ()             # blend weights of several style images (normalised); () = equal
  c.output = "stylized.png"
  c.seed = 0
  c.init = "content"             # content | noise | image
  c.init_image = ""
  c.noise_scale = 1.0            # noise init: uniform 0-255 image mixed with mid-grey by this much
  c.colors = "transfer"          # transfer | preserve (luminance-only: content chroma kept)
  c.scales = 1                   # coarse-to-fine levels, each halving the side (3 = 1/4, 1/2, 1)

  c.image = ml_collections.ConfigDict()
  c.image.height = 0             # book: fixed height, width from the content's aspect
  c.image.max_side = 512         # jcjohnson: longest side
  c.image.resize = "bilinear"    # book: nearest (Keras load_img)
  c.image.style_mode = "scale"   # match (book: stretched to the output) | scale (keep aspect)
  c.image.style_scale = 1.0

  c.vgg = ml_collections.ConfigDict()
  c.vgg.source = "keras"         # keras | torchvision
  c.vgg.path = ""                # local weight file; empty = cached download
  c.vgg.pool = "max"
  c.vgg.remat = "auto"           # auto | on | off
  c.vgg.dtype = "float32"

  c.loss = ml_collections.ConfigDict()
  c.loss.normalisation = "gatys"  # book | gatys
  c.loss.content_layers = ("block4_conv2",)
  c.loss.style_layers = tuple(f"block{b}_conv1" for b in range(1, 6))
  c.loss.layer_weights = ()      # per style layer; () = the normalisation's default
  c.loss.content_weight = 1.0
  c.loss.style_weight = 1e3
  c.loss.tv_weight = 0.0
  c.loss.style_weights = ()      # sweep: one output per style weight, one vmapped program

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "lbfgs"         # lbfgs | adam | lbfgs_scipy
  c.optim.segments = 10          # outer iterations (snapshots between them)
  c.optim.segment_iters = 20     # K iterations per jitted segment
  c.optim.restart = False        # rebuild L-BFGS state every segment (book's maxfun=20 restarts)
  c.optim.lr = 10.0              # Adam, in preprocessed units (0-255 for Keras weights)
  c.optim.memory_size = 10
  c.optim.linesearch_steps = 20

  c.snapshots = True             # <prefix>_at_iteration_<i>.png after every segment
  c.strip_iters = ()             # segments shown in the progress strip; () = about 4, evenly
  c.progress = True
  return c


def _vgg_setup(config: ml_collections.ConfigDict):
  from jaxstyle.nst.weights import get_vgg19
  params, prep = get_vgg19(config.vgg.source, path=config.vgg.path or None)
  return jax.device_put(params), prep


def _remat(config: ml_collections.ConfigDict, size: tuple[int, int]) -> bool:
  mode = str(config.vgg.remat)
  if mode not in ("auto", "on", "off", "True", "False"):
    raise ValueError(f"vgg.remat must be auto, on or off, got {mode!r}")
  if mode == "auto":
    return size[0] * size[1] > REMAT_AUTO_PIXELS
  return mode in ("on", "True")


def make_loss(config: ml_collections.ConfigDict, vgg_params: Any, prep: Any,
              content_rgb: np.ndarray, style_rgbs: list[np.ndarray], size: tuple[int, int]):
  """Builds `(targets, loss_fn, content_x)` at one output size.

  The core objective is built with unit weights and its terms are recombined with the traced
  `weights` pytree, so a weight sweep is data (vmap), not a recompile.
  """
  from jaxstyle.models.vgg import VGG19
  from jaxstyle.nst.losses import make_objective

  lc = config.loss
  layers = tuple(lc.content_layers) + tuple(lc.style_layers)
  vgg = VGG19(pool=config.vgg.pool, outputs=layers, remat=_remat(config, size),
              dtype=jnp.dtype(config.vgg.dtype))
  method = config.image.resize
  content = nst_image.resize(content_rgb, size, method)
  styles = [nst_image.resize(s, nst_image.style_size(s.shape, size, config.image.style_mode,
                                                     config.image.style_scale), method)
            for s in style_rgbs]
  content_x = jnp.asarray(prep.preprocess(content[None]))
  style_x = [jnp.asarray(prep.preprocess(s[None])) for s in styles]
  blend = tuple(config.style_blend) or (1.0,) * len(styles)
  if len(blend) != len(styles):
    raise ValueError(f"style_blend has {len(blend)} weights for {len(styles)} style images")
  targets, base_fn = make_objective(
      vgg, vgg_params, content_x, style_x, blend,
      content_layers=tuple(lc.content_layers), style_layers=tuple(lc.style_layers),
      layer_weights=tuple(lc.layer_weights) or None, content_weight=1.0, style_weight=1.0,
      tv_weight=1.0, normalisation=lc.normalisation)

  def loss_fn(x, targets, vgg_params, weights):
    _, aux = base_fn(x, targets, vgg_params)
    terms = {k: weights[k] * aux[f"loss_{k}"] for k in ("content", "style", "tv")}
    return terms["content"] + terms["style"] + terms["tv"], terms

  return targets, loss_fn, content_x


def weights_of(config: ml_collections.ConfigDict, style_weight: float | None = None):
  lc = config.loss
  sw = lc.style_weight if style_weight is None else style_weight
  return {"content": jnp.float32(lc.content_weight), "style": jnp.float32(sw),
          "tv": jnp.float32(lc.tv_weight)}


def _init_image(config, content_x: jax.Array, prep: Any, size: tuple[int, int]) -> jax.Array:
  if config.init == "content":
    return content_x
  if config.init == "noise":
    rng = np.random.default_rng(config.seed)
    noise = rng.uniform(0, 255, (1, *size, 3)).astype(np.float32)
    img = 127.5 + config.noise_scale * (noise - 127.5)
    return jnp.asarray(prep.preprocess(img))
  if config.init == "image":
    if not config.init_image:
      raise ValueError("init='image' needs init_image (--init-image PATH)")
    img = nst_image.resize(nst_image.load_image(config.init_image), size, config.image.resize)
    return jnp.asarray(prep.preprocess(img[None]))
  raise ValueError(f"unknown init {config.init!r}; choose content, noise or image")


def _check_config(config: ml_collections.ConfigDict) -> None:
  if config.optim.name not in nst_optim.OPTIMIZERS:
    raise ValueError(f"unknown optim.name {config.optim.name!r}; choose from {nst_optim.OPTIMIZERS}")
  if config.colors not in ("transfer", "preserve"):
    raise ValueError(f"colors must be 'transfer' or 'preserve', got {config.colors!r}")
  if not config.content or not config.styles:
    raise ValueError("NST needs a content image and at least one style image")


def stylize(config: ml_collections.ConfigDict, workdir: str | None = None,
            vgg: tuple[Any, Any] | None = None) -> dict[str, Any]:
  """Runs one (or, with `loss.style_weights`, a vmapped sweep of) stylisation(s).

  Returns `{'images': [RGB float arrays], 'snapshots': {segment: [images]}, 'history': [...]}`
  and writes the output PNG(s), snapshots, progress strip and metrics as configured.
  """
  from tqdm import tqdm

  _check_config(config)
  content_rgb = nst_image.load_image(config.content).astype(np.float32)
  style_rgbs = [nst_image.load_image(p).astype(np.float32) for p in config.styles]
  vgg_params, prep = vgg if vgg is not None else _vgg_setup(config)
  out_size = nst_image.output_size(content_rgb.shape, config.image.height, config.image.max_side)
  sweep = tuple(config.loss.style_weights)
  batch = len(sweep) if sweep else 0
  weights = (jax.tree.map(lambda *w: jnp.stack(w), *[weights_of(config, s) for s in sweep])
             if batch else weights_of(config))
  from jaxstyle.metrics import MetricWriter
  metrics = MetricWriter(workdir or ".", enabled=bool(workdir), tensorboard=False)
  prefix = os.path.splitext(config.output)[0]
  if workdir:
    prefix = os.path.join(workdir, os.path.basename(prefix))
  o = config.optim
  history: list[dict[str, float]] = []
  snapshots: dict[int, list[np.ndarray]] = {}
  sizes = nst_image.scale_sizes(out_size, config.scales)
  total_segments = o.segments * len(sizes)
  bar = tqdm(total=total_segments, desc="stylize", unit="seg", disable=not config.progress)
  x, seg_index, iteration = None, 0, 0
  for size in sizes:
    ################ Objective at this scale (targets computed once here) ################
    targets, loss_fn, content_x = make_loss(config, vgg_params, prep, content_rgb, style_rgbs, size)
    if x is None:
      x = _init_image(config, content_x, prep, size)
      if batch:
        x = jnp.repeat(x[None], batch, axis=0)
    else:  # preprocessing is per-channel affine, so resizing in its space equals resizing RGB
      x = jax.image.resize(x, (*x.shape[:-3], *size, 3), "bilinear")
    if o.name == "lbfgs_scipy":
      if batch:
        raise ValueError("optim.name='lbfgs_scipy' runs one image at a time; drop style_weights")
      vg = nst_optim.make_value_and_grad(loss_fn)
      evaluate = jax.jit(loss_fn)
    else:
      runner = nst_optim.SegmentRunner(
          loss_fn, o.name, o.segment_iters, lr=o.lr, memory_size=o.memory_size,
          linesearch_steps=o.linesearch_steps, restart=o.restart, batched=bool(batch))
    ################ Segments: jitted K-iteration loops, snapshots in between ################
    for _ in range(o.segments):
      start = time.perf_counter()
      if o.name == "lbfgs_scipy":
        x, stats = nst_optim.scipy_segment(vg, x, targets, vgg_params, weights,
                                           maxfun=o.segment_iters)
        total, aux = jax.device_get(evaluate(x, targets, vgg_params, weights))
        stats.update(total=total, **aux)
      else:
        x, stats = runner(x, targets, vgg_params, weights)
      wall = time.perf_counter() - start
      evals = int(np.sum(stats["evals"]))
      iters = o.segment_iters
      iteration += iters
      rec = {"nst/loss": np.mean(stats["total"]), "nst/loss_content": np.mean(stats["content"]),
             "nst/loss_style": np.mean(stats["style"]), "nst/loss_tv": np.mean(stats["tv"]),
             "nst/sec_per_iter": wall / iters, "nst/evals": evals / max(batch, 1),
             "nst/segment_sec": wall}
      history.append({k: float(v) for k, v in rec.items()})
      metrics.write(iteration, rec)
      bar.write(f"segment {seg_index} {size[0]}x{size[1]}: loss {rec['nst/loss']:.4g} "
                f"({wall:.2f} s, {wall / iters:.3f} s/iter, {evals} evals)")
      bar.update(1)
      imgs = _to_rgb(x, prep, batch, config, content_rgb, size)
      snapshots[seg_index] = imgs
      if config.snapshots:
        for j, img in enumerate(imgs):
          tag = f"_sw{sweep[j]:g}" if batch else ""
          nst_image.save_image(f"{prefix}{tag}_at_iteration_{seg_index}.png", img)
      seg_index += 1
  bar.close()
  metrics.close()
  images = snapshots[seg_index - 1]
  outputs = _write_outputs(config, images, sweep, prefix, workdir)
  strip = _write_strip(config, content_rgb, style_rgbs, snapshots, prefix)
  return {"images": images, "snapshots": snapshots, "history": history,
          "outputs": outputs, "strip": strip}


def _to_rgb(x, prep, batch, config, content_rgb, size) -> list[np.ndarray]:
  xs = np.asarray(jax.device_get(x))
  xs = xs if batch else xs[None]
  out = []
  for xi in xs:
    img = np.clip(np.asarray(prep.deprocess(xi), np.float32).reshape(*size, 3), 0, 255)
    if config.colors == "preserve":
      img = nst_image.original_colors(img, nst_image.resize(content_rgb, size, "bilinear"))
    out.append(img.astype(np.float32))
  return out


def _write_outputs(config, images, sweep, prefix, workdir) -> list[str]:
  base, ext = os.path.splitext(config.output)
  if workdir:
    base = os.path.join(workdir, os.path.basename(base))
  paths = [f"{base}_sw{s:g}{ext or '.png'}" for s in sweep] if sweep else [base + (ext or ".png")]
  for path, img in zip(paths, images):
    nst_image.save_image(path, img)
  return paths


def _write_strip(config, content_rgb, style_rgbs, snapshots, prefix) -> str:
  """Book Figure 5-18 layout: content | style | result at a few iterations (first sweep member)."""
  n = len(snapshots)
  chosen = [i for i in config.strip_iters if i < n] or sorted(
      {int(round(v)) for v in np.linspace(0, n - 1, min(4, n))})
  images = [content_rgb, style_rgbs[0]] + [snapshots[i][0] for i in chosen]
  labels = ["content", "style"] + [f"iteration {i}" for i in chosen]
  path = f"{prefix}_progress.png"
  nst_image.save_image(path, nst_image.progress_strip(images, labels, height=160))
  return path


def stylize_batch(config: ml_collections.ConfigDict, style_weights: list[float],
                  workdir: str | None = None, vgg: tuple[Any, Any] | None = None):
  """A style-weight sweep in one compiled, vmapped program: one image per weight."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.loss.style_weights = tuple(float(s) for s in style_weights)
  return stylize(config, workdir=workdir, vgg=vgg)


def run_config(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """`jaxstyle train --config configs/nst_book.py` entry: stylise and record config.json."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json(indent=2))
  result = stylize(config, workdir=workdir)
  return result["history"][-1] if result["history"] else {}


def add_arguments(parser) -> None:
  from jaxstyle.nst.cli import add_arguments as add
  add(parser)


def run(args) -> int:
  from jaxstyle.nst.cli import run as run_cli
  return run_cli(args)
