"""`jaxstyle translate`: run a trained or ported CycleGAN generator over image files and folders.

Each output keeps its input's size: the image is reflect-padded up to the generator's multiple
(a ResNet needs sides divisible by 4, the book U-Net by 16), translated, and cropped back. This is
the reference's `--preprocess none` behaviour without its rounding of sizes. Images are batched
by equal padded size, and a short last batch is filled up with copies so each size compiles once.
By default each size's batch follows its image count (up to 8, in equal batches: 1 image runs as
a batch of 1, 9 as two of 5), so a single image is not padded out to eight.

Like training (`data.FolderSource`), the command skips unreadable inputs (not an image, empty,
truncated, a decompression bomb) with one warning each, translates the rest and ends with a
`translated N, skipped M` summary; it fails only when nothing could be translated.

Weights come from a training run (`--workdir`, the latest checkpoint; `--direction` picks G_A or
G_B) or from a single generator (`--weights`: a junyanz `.pth`, read by our torch-free loader, or a
`jaxstyle port-weights` directory), whose model config travels with it.
"""

from __future__ import annotations

import argparse
import collections
import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxstyle import errors, image_io, models, networks
from jaxstyle.cyclegan import presets
from jaxstyle.errors import BadInputError, ConfigError, UserError
from jaxstyle.image_io import collect_inputs, pad_to_multiple
from jaxstyle.ports import cut as cut_port
from jaxstyle.ports import junyanz, torch_pth

log = logging.getLogger(__name__)

DIRECTIONS = {'AtoB': 'G_A', 'BtoA': 'G_B'}
MAX_AUTO_BATCH = 8


def _apply(generator: Any, params: Any, x: jax.Array) -> jax.Array:
  return generator.apply({'params': params}, x)


_apply_jit = jax.jit(_apply, static_argnums=0)


def translate_float(fn: Callable[[np.ndarray], Any], x: np.ndarray, multiple: int) -> np.ndarray:
  """Applies `fn` (float [-1, 1] NHWC -> same) to images of any size via pad / crop."""
  padded, (h, w) = pad_to_multiple(np.asarray(x, np.float32), multiple)
  return np.asarray(fn(padded))[:, :h, :w]


def generator_fn(generator: Any, params: Any) -> Callable[[np.ndarray], np.ndarray]:
  """A host function x -> G(x) that jit-compiles once per input shape."""
  return lambda x: np.asarray(_apply_jit(generator, params, x))


def auto_batch(n: int, cap: int = MAX_AUTO_BATCH) -> int:
  """Batch size for `n` images of one size: at most `cap`, in equal batches (9 -> 5 + 5).

  One batch shape per size means one compile per size, and the padding with copies is at most
  one image per batch instead of up to cap - 1 (each copy costs a full image's compute:
  docs/performance.md, "Notes moved out of the code").
  """
  n_batches = math.ceil(max(1, n) / cap)
  return math.ceil(max(1, n) / n_batches)


def padded_size(hw: tuple[int, int], multiple: int) -> tuple[int, int]:
  h, w = hw
  return h + (-h) % multiple, w + (-w) % multiple


def translate_images(
  generator: Any,
  params: Any,
  images_uint8_list: Sequence[np.ndarray],
  batch_size: int | None = None,
  multiple: int | None = None,
  progress: Callable[[int], Any] | None = None,
) -> list[np.ndarray]:
  """Translates uint8 HxWx3 images of any sizes; returns uint8 images of the same sizes, in order.

  `batch_size` None picks `auto_batch` of each padded size's image count. `multiple` defaults to
  16, safe for every jaxstyle generator; pass `models.generator_multiple` to pad less.
  `progress(n)` is called after each batch with the number of real images done.
  """
  multiple = multiple or 16
  fn = generator_fn(generator, params)
  groups: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
  for i, img in enumerate(images_uint8_list):
    groups[padded_size(img.shape[:2], multiple)].append(i)
  out: list[np.ndarray | None] = [None] * len(images_uint8_list)
  for idx in groups.values():
    size = batch_size or auto_batch(len(idx))
    for start in range(0, len(idx), size):
      chunk = idx[start : start + size]
      padded = []
      for i in chunk:
        x = image_io.to_float(image_io.as_rgb(images_uint8_list[i]))
        padded.append(pad_to_multiple(x[None], multiple)[0][0])
      # Fill a short batch with copies: instance norm is per image, so outputs are unchanged.
      batch = np.stack(padded + [padded[-1]] * (size - len(padded)))
      y = image_io.to_uint8(fn(batch))
      for k, i in enumerate(chunk):
        h, w = images_uint8_list[i].shape[:2]
        out[i] = y[k, :h, :w]
      if progress is not None:
        progress(len(chunk))
  return out  # type: ignore[return-value]


#### Loading weights


def model_config(fields: dict[str, Any]) -> Any:
  """A full model ConfigDict from a (possibly partial or newer) dict; unknown keys are dropped.

  Missing fields take junyanz's reference values (CUT's for its anti-aliased generator): weight
  files without a model config are junyanz generators, and run configs always hold every field
  they were trained with.
  """
  cut = fields.get('generator') == networks.CUT_MODEL['generator']
  build = networks.cut_model if cut else presets.reference_model
  known = build()
  extra = sorted(set(fields) - set(known.keys()))
  if extra:
    log.warning('ignoring unknown model config fields %s', extra)
  return build(**{k: v for k, v in fields.items() if k in known})


def check_params(generator: Any, params: Any, cfg: Any, source: str) -> None:
  """Raises BadInputError when `params` do not fit the generator its model config describes.

  Checked on shapes only (`jax.eval_shape`, nothing compiled), so a weight directory whose
  params and model config disagree fails here with the differences listed, not deep in flax.
  """
  side = 4 * models.generator_multiple(cfg)
  x = jax.ShapeDtypeStruct((1, side, side, int(cfg.get('in_channels', 3))), jnp.float32)
  want = jax.eval_shape(lambda x: generator.init(jax.random.key(0), x), x)['params']

  def shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(k): tuple(np.shape(v)) for k, v in flat}

  want_s, got_s = shapes(want), shapes(params)
  diffs = [f'{k} missing' for k in want_s if k not in got_s]
  diffs += [f'{k} unexpected' for k in got_s if k not in want_s]
  diffs += [
    f'{k} has shape {got_s[k]}, the config needs {v}'
    for k, v in want_s.items()
    if k in got_s and got_s[k] != v
  ]
  if diffs:
    more = f' (and {len(diffs) - 3} more)' if len(diffs) > 3 else ''
    raise BadInputError(
      f'{source}: the weights do not match their model config (generator={cfg.generator}, '
      f'gen_filters={cfg.gen_filters}, n_blocks={cfg.get("n_blocks")}): '
      f'{"; ".join(diffs[:3])}{more}. The params and the model config come from different '
      'runs; re-export the weights with `jaxstyle port-weights` or fix the model section'
    )


def load_generator(
  workdir: str | None = None, weights: str | None = None, direction: str = 'AtoB'
) -> tuple[Any, Any, Any]:
  """(generator module, params, model_cfg) from a run directory or a weights file/directory.

  Raises:
    UserError: a missing or unreadable source, a file that is not a generator (including an
      unsafe `.pth`), or params that do not match their model config.
  """
  if direction not in DIRECTIONS:
    raise ConfigError(f'direction must be one of {list(DIRECTIONS)}, got {direction!r}')
  if (workdir is None) == (weights is None):
    raise ConfigError('give exactly one of --workdir and --weights')
  flag, source = ('--workdir', workdir) if workdir is not None else ('--weights', weights)
  if not os.path.exists(source):
    raise UserError(f'{flag} {source!r} does not exist')
  try:
    params, cfg = _read_generator(workdir, weights, direction)
    generator = models.make_generator(cfg)
  except UserError:
    raise
  except (OSError, ValueError, KeyError, RuntimeError) as e:
    raise BadInputError(f'cannot load a generator from {flag} {source!r}: {e}') from e
  check_params(generator, params, cfg, source)
  return generator, params, cfg


def _read_generator(workdir: str | None, weights: str | None, direction: str) -> tuple[Any, Any]:
  from jaxstyle import checkpoint  # orbax: only for --workdir / port directories

  if workdir is not None:
    config, params = checkpoint.load_run(workdir)
    if 'G' in params and DIRECTIONS['AtoB'] not in params:  # CUT: one generator
      if direction != 'AtoB':
        raise UserError(
          f'--workdir {workdir} is a {config.get("task", "CUT")} run: its one generator '
          'translates A to B only (--direction BtoA needs a CycleGAN run)'
        )
      return params['G'], model_config(config.get('model', {}))
    return params[DIRECTIONS[direction]], model_config(config.get('model', {}))
  if weights.lower().endswith(('.pth', '.pt')):  # CUT's G has blur buffers, junyanz's none
    if cut_port.is_cut_generator(torch_pth.load_state_dict(weights)):
      return cut_port.generator_from_pth(weights)
    return junyanz.generator_from_pth(weights)
  params, meta = checkpoint.load_params(weights)
  if meta.get('kind', 'junyanz-G') not in ('junyanz-G', 'cut-G', 'generator', 'run'):
    raise BadInputError(f'{weights} holds a {meta["kind"]!r}, not a CycleGAN generator')
  cfg = model_config(meta.get('model_cfg', meta.get('model', {})))
  if isinstance(params, dict) and DIRECTIONS[direction] in params:
    params = params[DIRECTIONS[direction]]
  return params, cfg


#### Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the sub-command's flags (called by `jaxstyle.cli`)."""
  src = parser.add_mutually_exclusive_group(required=True)
  src.add_argument('--workdir', help='training run directory (latest checkpoint)')
  src.add_argument('--weights', help='junyanz .pth generator or a `port-weights` directory')
  src.add_argument(
    '--pretrained',
    metavar='NAME',
    help='a published junyanz generator by name (horse2zebra, style_vangogh, ..., '
    'pix2pix/facades_label2photo): downloaded into the cache and ported on first use',
  )
  parser.add_argument(
    '--direction',
    choices=list(DIRECTIONS),
    default='AtoB',
    help='AtoB uses G_A, BtoA uses G_B (ignored for a single-generator --weights)',
  )
  parser.add_argument(
    '-o',
    '--out',
    required=True,
    help="output folder, created if missing: one input folder's images land "
    'in it directly, several inputs each get a sub-folder',
  )
  parser.add_argument(
    '--batch-size',
    type=errors.positive_int,
    default=None,
    help=f'images per generator call (default: per image size, the image count '
    f'up to {MAX_AUTO_BATCH}, in equal batches)',
  )
  parser.add_argument('inputs', nargs='+', metavar='INPUT', help='image files or folders')


def plan_batches(
  sized: Sequence[tuple[str, str, tuple[int, int]]], multiple: int, batch_size: int | None
) -> list[tuple[int, list[tuple[str, str]]]]:
  """(batch size, [(path, name), ...]) chunks: inputs grouped by padded size, then batched."""
  groups: dict[tuple[int, int], list[tuple[str, str]]] = collections.defaultdict(list)
  for path, name, hw in sized:
    groups[padded_size(hw, multiple)].append((path, name))
  plan = []
  for items in groups.values():
    size = batch_size or auto_batch(len(items))
    plan += [(size, items[i : i + size]) for i in range(0, len(items), size)]
  return plan


def run(args: argparse.Namespace) -> int:
  """Translates every readable input image into `<out>/<name>.png`; returns 0.

  Raises:
    UserError: a missing input, an unwritable --out, unusable weights, or no translatable image.
  """
  from tqdm import tqdm

  items = collect_inputs(args.inputs)
  if len(items) == 1:  # one image: its own error line (not a warning, then "nothing"), at once
    image_io.load_rgb(items[0][0])
  errors.writable_dir(args.out, '--out directory')
  skipped: list[str] = []

  def skip(path: str, err: Exception) -> None:
    skipped.append(path)
    log.warning('skipped: %s', str(err).replace('\n', ' '))

  # Headers first (cheap, no decode): batches are planned by size, and files that are not images
  # at all are dropped before the model is loaded.
  sized = []
  for path, name in items:
    try:
      sized.append((path, name, image_io.upright_size(path)))
    except (ValueError, OSError) as e:
      skip(path, e)
  if not sized:
    raise BadInputError(
      f'nothing to translate: none of the {len(items)} input file(s) is a '
      'readable image (see the warnings above)'
    )
  weights = args.weights
  if getattr(args, 'pretrained', None):  # download + port once, then it is a --weights folder
    from jaxstyle.ports import pretrained

    model = pretrained.resolve(args.pretrained)
    if model.family != 'cyclegan':
      raise UserError(
        f'--pretrained {args.pretrained} is a pix2pix generator: `jaxstyle translate` runs it '
        'through the pix2pix task'
      )
    weights, new = pretrained.port(model)
    if new:
      print(f'downloaded and ported {model.qualified} -> {weights} (reused next time)')
  generator, params, cfg = load_generator(args.workdir, weights, args.direction)
  multiple = models.generator_multiple(cfg)
  done = 0
  with tqdm(total=len(sized), unit='img', desc='translate') as bar:
    # Decode one batch at a time, so memory holds a single batch whatever the folder's size.
    for size, chunk in plan_batches(sized, multiple, args.batch_size):
      names, images = [], []
      for path, name in chunk:
        try:
          images.append(image_io.load_rgb(path))
          names.append(name)
        except (ValueError, OSError) as e:  # a good header over bad data: a truncated JPEG
          skip(path, e)
      if images:
        outs = translate_images(generator, params, images, size, multiple)
        for name, y in zip(names, outs):
          image_io.save(os.path.join(args.out, name), y)
      done += len(images)
      bar.update(len(chunk))
  if not done:
    raise BadInputError(
      f'nothing translated: all {len(items)} input file(s) failed to decode '
      '(see the warnings above)'
    )
  print(f'translated {done}, skipped {len(skipped)}; wrote PNGs to {args.out}')
  return 0
