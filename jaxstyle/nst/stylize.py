"""Neural style transfer driver: `stylize(config)` (one image or a style-weight sweep), `run_config`.

Gatys-style optimisation over pixels against a frozen VGG19 (docs/design/nst.md). The book preset is the
Keras example with its targets computed once and the L-BFGS loop on device. Configs come from
`jaxstyle/nst/presets.py`; the `jaxstyle stylize` command is `jaxstyle/nst/cli.py`, which imports
this module (never the reverse).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxstyle import metrics, preemption
from jaxstyle.kernels import dispatch
from jaxstyle.metrics import MetricWriter
from jaxstyle.models.vgg import VGG19
from jaxstyle.nst import image as nst_image
from jaxstyle.nst import optim as nst_optim
from jaxstyle.nst import outputs as nst_outputs
from jaxstyle.nst import presets
from jaxstyle.nst.losses import make_objective
from jaxstyle.nst.weights import get_vgg19

# Above this many output pixels the objective recomputes each VGG block in the backward pass with
# its losses inside it (vgg.block_losses). XLA:CPU plan for one Adam step (python -m
# jaxstyle.nst.memory --compiled): 1.5 vs 2.4 GiB at 1024^2, 11.8 vs 18.5 GiB at 3840x2160.
REMAT_AUTO_PIXELS = 1024 * 1024


def _vgg_setup(config: ml_collections.ConfigDict):
  params, prep = get_vgg19(config.vgg.source, path=config.vgg.path or None, seed=config.seed)
  return jax.device_put(params), prep


def _cores() -> int:
  """Cores this process may run on (a `taskset` or `sweep --parallel` pinning counts)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # macOS
    return os.cpu_count() or 1


def sweep_plan(config: ml_collections.ConfigDict) -> tuple[str, str]:
  """(strategy, why) for a style-weight sweep: how its members share the machine.

  Every strategy but 'batched' runs each member through the single-image executable, compiled once,
  so each image is bit-identical to a separate run's and the sweep pays imports, weights, targets
  and the compile once. 'sequential' runs the members one after another; 'concurrent' runs up to
  one member per core at once, in threads. 'batched' vmaps the members into one program: its L-BFGS
  zoom line search then runs until the slowest member is done and vmap turns its branches into
  selects that evaluate both sides (several times slower than sequential on CPU). 'auto' is
  'concurrent' on a CPU with >= 2 cores: one member's evaluation does not scale linearly with the
  cores, so members side by side use them better (docs/performance.md, "Style-weight sweeps").
  Elsewhere 'auto' is 'sequential': one accelerator runs one program at a time anyway.
  """
  chosen = str(config.optim.sweep)
  if chosen != 'auto':
    return chosen, 'set by optim.sweep'
  backend, cores = jax.default_backend(), _cores()
  if backend == 'cpu' and cores >= 2:
    return 'concurrent', f'auto on cpu with {cores} cores: members side by side, one executable'
  return 'sequential', f'auto on {backend}: one compiled single-image program reused'


def _remat(config: ml_collections.ConfigDict, size: tuple[int, int]) -> bool:
  mode = str(config.vgg.remat)
  if mode not in ('auto', 'on', 'off', 'True', 'False'):
    raise ValueError(f'vgg.remat must be auto, on or off, got {mode!r}')
  if mode == 'auto':
    return size[0] * size[1] > REMAT_AUTO_PIXELS
  return mode in ('on', 'True')


def make_loss(
  config: ml_collections.ConfigDict,
  vgg_params: Any,
  prep: Any,
  content_rgb: np.ndarray,
  style_rgbs: list[np.ndarray],
  size: tuple[int, int],
):
  """Builds `(targets, loss_fn, content_x)` at one output size.

  The core objective is built with unit weights and its terms are recombined with the traced
  `weights` pytree, so a weight sweep is data (vmap), not a recompile.
  """
  lc = config.loss
  layers = tuple(lc.content_layers) + tuple(lc.style_layers)
  vgg = VGG19(pool=config.vgg.pool, outputs=layers, dtype=jnp.dtype(config.vgg.dtype))
  method = config.image.resize
  content = nst_image.resize(content_rgb, size, method)
  styles = [
    nst_image.resize(
      s,
      nst_image.style_size(s.shape, size, config.image.style_mode, config.image.style_scale),
      method,
    )
    for s in style_rgbs
  ]
  content_x = jnp.asarray(prep.preprocess(content[None]))
  style_x = [jnp.asarray(prep.preprocess(s[None])) for s in styles]
  blend = tuple(config.style_blend) or (1.0,) * len(styles)
  if len(blend) != len(styles):
    raise ValueError(f'style_blend has {len(blend)} weights for {len(styles)} style images')
  targets, base_fn = make_objective(
    vgg,
    vgg_params,
    content_x,
    style_x,
    blend,
    content_layers=tuple(lc.content_layers),
    style_layers=tuple(lc.style_layers),
    layer_weights=tuple(lc.layer_weights) or None,
    content_weight=1.0,
    style_weight=1.0,
    tv_weight=1.0,
    normalisation=lc.normalisation,
    remat=_remat(config, size),
    conv_impl=config.vgg.get('conv_impl', 'auto'),
  )

  def loss_fn(x, targets, vgg_params, weights):
    _, aux = base_fn(x, targets, vgg_params)
    terms = {k: weights[k] * aux[f'loss_{k}'] for k in ('content', 'style', 'tv')}
    return terms['content'] + terms['style'] + terms['tv'], terms

  return targets, loss_fn, content_x


def weights_of(config: ml_collections.ConfigDict, style_weight: float | None = None):
  lc = config.loss
  sw = lc.style_weight if style_weight is None else style_weight
  return {
    'content': jnp.float32(lc.content_weight),
    'style': jnp.float32(sw),
    'tv': jnp.float32(lc.tv_weight),
  }


def _init_image(config, content_x: jax.Array, prep: Any, size: tuple[int, int]) -> jax.Array:
  if config.init == 'content':
    return content_x
  if config.init == 'noise':
    rng = np.random.default_rng(config.seed)
    noise = rng.uniform(0, 255, (1, *size, 3)).astype(np.float32)
    img = 127.5 + config.noise_scale * (noise - 127.5)
    return jnp.asarray(prep.preprocess(img))
  if config.init == 'image':
    if not config.init_image:
      raise ValueError("init='image' needs init_image (--init-image PATH)")
    img = nst_image.resize(nst_image.load_image(config.init_image), size, config.image.resize)
    return jnp.asarray(prep.preprocess(img[None]))
  raise ValueError(f'unknown init {config.init!r}; choose content, noise or image')


def _runner(config: ml_collections.ConfigDict, loss_fn: Any, batched: bool) -> Any:
  o = config.optim
  return nst_optim.SegmentRunner(
    loss_fn,
    o.name,
    o.segment_iters,
    lr=o.lr,
    memory_size=o.memory_size,
    linesearch_steps=o.linesearch_steps,
    restart=o.restart,
    batched=batched,
  )


def _members(runners: list[Any], workers: int = 1) -> Any:
  """A sweep segment over stacked members, each through its own single-image runner.

  The runners share one compiled executable (SegmentRunner caches it per problem) and keep their
  own optimiser state, so member k follows exactly the trajectory of a separate run with its weight.
  With `workers` > 1 that many members run at once, in threads (XLA releases the GIL).
  """

  def segment(xs, targets, vgg_params, weights):
    def one(k):
      return runners[k](xs[k], targets, vgg_params, jax.tree.map(lambda w: w[k], weights))

    if workers > 1:
      with ThreadPoolExecutor(workers) as pool:
        outs = list(pool.map(one, range(len(runners))))
    else:
      outs = [one(k) for k in range(len(runners))]
    return (
      jnp.stack([x for x, _ in outs]),
      jax.tree.map(lambda *v: np.stack(v), *[stats for _, stats in outs]),
    )

  return segment


def _segment_fn(
  config: ml_collections.ConfigDict, loss_fn: Any, batch: int, strategy: str = 'sequential'
) -> Any:
  """One outer iteration `(x, targets, vgg_params, weights) -> (x, stats)` of `optim.name`.

  With a sweep (`batch` members) x and weights are stacked along a leading axis either way.
  """
  o = config.optim
  if o.name != 'lbfgs_scipy':
    if batch and strategy in ('sequential', 'concurrent'):
      workers = min(batch, _cores()) if strategy == 'concurrent' else 1
      return _members([_runner(config, loss_fn, False) for _ in range(batch)], workers)
    return _runner(config, loss_fn, bool(batch))
  if batch:
    raise ValueError("optim.name='lbfgs_scipy' runs one image at a time; drop style_weights")
  vg = nst_optim.make_value_and_grad(loss_fn)
  evaluate = jax.jit(loss_fn)

  def segment(x, targets, vgg_params, weights):
    x, stats = nst_optim.scipy_segment(vg, x, targets, vgg_params, weights, maxfun=o.segment_iters)
    total, aux = jax.device_get(evaluate(x, targets, vgg_params, weights))
    stats.update(total=total, **aux)
    return x, stats

  return segment


def _record(stats: dict[str, Any], wall: float, iters: int, batch: int) -> dict[str, float]:
  """The `nst/*` metrics of one segment (docs/design/house_style.md), averaged over a sweep's images."""
  rec = {
    'nst/loss': np.mean(stats['total']),
    'nst/loss_content': np.mean(stats['content']),
    'nst/loss_style': np.mean(stats['style']),
    'nst/loss_tv': np.mean(stats['tv']),
    'nst/sec_per_iter': wall / iters,
    'nst/evals': np.sum(stats['evals']) / max(batch, 1),
    'nst/segment_sec': wall,
  }
  return {k: float(v) for k, v in rec.items()}


def stylize(
  config: ml_collections.ConfigDict, workdir: str | None = None, vgg: tuple[Any, Any] | None = None
) -> dict[str, Any]:
  """Runs one (or, with `loss.style_weights`, a sweep of) stylisation(s); `sweep_plan` says how.

  Returns `{'images': [RGB float arrays], 'snapshots': {segment: [images]}, 'history': [...]}`
  and writes the output PNG(s), snapshots and progress strip as configured. `config.output` is
  the result's path; a relative one is taken inside `workdir` when one is given (a run's files
  live in its workdir; the CLI passes `-o` as an absolute path, so it is used exactly). With a
  `workdir`, the snapshots and strip go there and the metrics to metrics.jsonl and TensorBoard,
  with each segment's image; without one they go next to the output.
  """
  from tqdm import tqdm

  presets.check_inputs(presets.validate(config))  # the CLI's checks, for library callers too
  content_rgb = nst_image.load_image(config.content).astype(np.float32)
  style_rgbs = [nst_image.load_image(p).astype(np.float32) for p in config.styles]
  vgg_params, prep = vgg if vgg is not None else _vgg_setup(config)
  out_size = nst_image.output_size(content_rgb.shape, config.image.height, config.image.max_side)
  sweep = tuple(config.loss.style_weights)
  batch = len(sweep)
  weights = (
    jax.tree.map(lambda *w: jnp.stack(w), *[weights_of(config, s) for s in sweep])
    if batch
    else weights_of(config)
  )
  output = nst_outputs.output_path(config.output, workdir)
  prefix = os.path.splitext(output)[0]
  if workdir:
    prefix = os.path.join(workdir, os.path.basename(prefix))
  iters = config.optim.segment_iters
  history: list[dict[str, float]] = []
  snapshots: dict[int, list[np.ndarray]] = {}
  sizes = nst_image.scale_sizes(out_size, config.scales)
  writer = MetricWriter(workdir or '.', enabled=bool(workdir))
  bar = tqdm(
    total=config.optim.segments * len(sizes),
    desc='stylize',
    unit='seg',
    disable=not config.progress,
  )
  strategy, why = sweep_plan(config) if batch else ('single', '')
  if batch:
    bar.write(
      f'sweep of {batch} style weights {", ".join(f"{w:g}" for w in sweep)}: {strategy} ({why})'
    )
  x = None
  stop = preemption.install()  # SIGTERM / Ctrl-C: finish the segment, save its image, exit
  try:
    for size in sizes:
      ################ Objective at this scale (targets computed once here) ################
      targets, loss_fn, content_x = make_loss(
        config, vgg_params, prep, content_rgb, style_rgbs, size
      )
      if x is None:
        x = _init_image(config, content_x, prep, size)
        if batch:
          x = jnp.repeat(x[None], batch, axis=0)
      else:  # preprocessing is per-channel affine, so resizing in its space equals resizing RGB
        x = jax.image.resize(x, (*x.shape[:-3], *size, 3), 'bilinear')
      segment = _segment_fn(config, loss_fn, batch, strategy)
      ################ Segments: jitted K-iteration loops, snapshots in between ################
      for _ in range(config.optim.segments):
        start = time.perf_counter()
        x, stats = segment(x, targets, vgg_params, weights)
        rec = _record(stats, time.perf_counter() - start, iters, batch)
        seg, iteration = len(snapshots), (len(snapshots) + 1) * iters
        history.append(rec)
        writer.write(iteration, rec)
        bar.write(
          f'segment {seg} {size[0]}x{size[1]}: loss {rec["nst/loss"]:.4g} '
          f'({rec["nst/segment_sec"]:.2f} s, {rec["nst/sec_per_iter"]:.3f} s/iter, '
          f'{rec["nst/evals"]:g} evals)'
        )
        bar.update(1)
        snapshots[seg] = nst_outputs.to_rgb(x, prep, batch, config, content_rgb, size)
        nst_outputs.write_snapshot(writer, config, snapshots[seg], sweep, prefix, seg, iteration)
        if stop.requested(seg):
          paths = nst_outputs.write_outputs(
            f'{prefix}_at_iteration_{seg}.png', snapshots[seg], sweep
          )
          raise stop.exit(
            f'saved the image after segment {seg} (iteration {iteration}) to {paths[0]}',
            're-run the same command to start again (the optimisation keeps no checkpoint)',
          )
  finally:
    stop.uninstall()
    bar.close()
    writer.close()
  images = snapshots[len(snapshots) - 1]
  outputs = nst_outputs.write_outputs(output, images, sweep)
  strip = nst_outputs.write_strip(config, content_rgb, style_rgbs, snapshots, prefix)
  return {
    'images': images,
    'snapshots': snapshots,
    'history': history,
    'outputs': outputs,
    'strip': strip,
    'sweep_strategy': strategy,
  }


def run_config(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """`jaxstyle train --config configs/nst_book.py` entry: stylise and record config.json.

  config.json also gets a "runtime" section: the conv implementation 'auto' resolved to, the
  backend and the JAX versions, which change the numbers and the speed.
  """
  runtime = dispatch.runtime_record(config.vgg.get('conv_impl', 'auto'))
  if config.loss.style_weights:
    runtime['sweep_strategy'] = sweep_plan(config)[0]
  metrics.write_config(workdir, config, runtime)
  result = stylize(config, workdir=workdir)
  return result['history'][-1] if result['history'] else {}
