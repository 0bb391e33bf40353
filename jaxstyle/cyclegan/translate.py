"""`jaxstyle translate`: run a trained or ported CycleGAN generator over image files and folders.

Each output keeps its input's size: the image is reflect-padded up to the generator's multiple
(a ResNet needs sides divisible by 4, the book U-Net by 16), translated, and cropped back. This is
the reference's `--preprocess none` behaviour without its rounding of sizes. Images are batched
by equal padded size, and a short last batch is filled up with copies so each size compiles once.

Weights come from a training run (`--workdir`, the latest checkpoint; `--direction` picks G_A or
G_B) or from a single generator (`--weights`: a junyanz `.pth`, read by our torch-free loader, or a
`jaxstyle port-weights` directory), whose model config travels with it.
"""
from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from PIL import Image

from jaxstyle import image_io

log = logging.getLogger(__name__)

DIRECTIONS = {"AtoB": "G_A", "BtoA": "G_B"}


def _apply(generator: Any, params: Any, x: jax.Array) -> jax.Array:
  return generator.apply({"params": params}, x)


_apply_jit = jax.jit(_apply, static_argnums=0)


def pad_to_multiple(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
  """Reflect-pads (N, H, W, C) on the bottom/right so H and W divide `multiple`; returns (x, (H, W)).

  Padding only the far sides keeps pixel (0, 0) aligned with the unpadded image, so the crop back
  is a plain slice.
  """
  h, w = x.shape[1:3]
  ph, pw = (-h) % multiple, (-w) % multiple
  if ph or pw:
    x = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
  return x, (h, w)


def translate_float(fn: Callable[[np.ndarray], Any], x: np.ndarray, multiple: int) -> np.ndarray:
  """Applies `fn` (float [-1, 1] NHWC -> same) to images of any size via pad / crop."""
  padded, (h, w) = pad_to_multiple(np.asarray(x, np.float32), multiple)
  return np.asarray(fn(padded))[:, :h, :w]


def generator_fn(generator: Any, params: Any) -> Callable[[np.ndarray], np.ndarray]:
  """A host function x -> G(x) that jit-compiles once per input shape."""
  return lambda x: np.asarray(_apply_jit(generator, params, x))


def translate_images(generator: Any, params: Any, images_uint8_list: Sequence[np.ndarray],
                     batch_size: int = 8, multiple: int | None = None,
                     progress: Callable[[int], Any] | None = None) -> list[np.ndarray]:
  """Translates uint8 HxWx3 images of any sizes; returns uint8 images of the same sizes, in order.

  `multiple` defaults to 16, safe for every jaxstyle generator; pass `models.generator_multiple`
  to pad less. `progress(n)` is called after each batch with the number of real images done.
  """
  multiple = multiple or 16
  fn = generator_fn(generator, params)
  groups: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
  for i, img in enumerate(images_uint8_list):
    h, w = img.shape[:2]
    groups[(h + (-h) % multiple, w + (-w) % multiple)].append(i)
  out: list[np.ndarray | None] = [None] * len(images_uint8_list)
  for idx in groups.values():
    for start in range(0, len(idx), batch_size):
      chunk = idx[start:start + batch_size]
      padded = []
      for i in chunk:
        x = image_io.to_float(image_io.as_rgb(images_uint8_list[i]))
        padded.append(pad_to_multiple(x[None], multiple)[0][0])
      # Fill a short batch with copies: instance norm is per image, so outputs are unchanged.
      batch = np.stack(padded + [padded[-1]] * (batch_size - len(padded)))
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

  Missing fields take junyanz's reference values: weight files without a model config are
  junyanz generators, and run configs always hold every field they were trained with.
  """
  from jaxstyle.cyclegan import presets

  known = presets.reference_model()
  extra = sorted(set(fields) - set(known.keys()))
  if extra:
    log.warning("ignoring unknown model config fields %s", extra)
  return presets.reference_model(**{k: v for k, v in fields.items() if k in known})


def load_generator(workdir: str | None = None, weights: str | None = None,
                   direction: str = "AtoB") -> tuple[Any, Any, Any]:
  """(generator module, params, model_cfg) from a run directory or a weights file/directory."""
  from jaxstyle import checkpoint, models

  if direction not in DIRECTIONS:
    raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
  if (workdir is None) == (weights is None):
    raise ValueError("give exactly one of --workdir and --weights")
  if workdir is not None:
    config, params = checkpoint.load_run(workdir)
    cfg = model_config(config.get("model", {}))
    params = params[DIRECTIONS[direction]]
  elif weights.lower().endswith((".pth", ".pt")):
    from jaxstyle.ports import junyanz

    params, cfg = junyanz.generator_from_pth(weights)
  else:
    params, meta = checkpoint.load_params(weights)
    if meta.get("kind", "junyanz-G") not in ("junyanz-G", "generator", "run"):
      raise ValueError(f"{weights} holds a {meta['kind']!r}, not a CycleGAN generator")
    cfg = model_config(meta.get("model_cfg", meta.get("model", {})))
    if isinstance(params, dict) and DIRECTIONS[direction] in params:
      params = params[DIRECTIONS[direction]]
  return models.make_generator(cfg), params, cfg


#### Command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the sub-command's flags (called by `jaxstyle.cli`)."""
  src = parser.add_mutually_exclusive_group(required=True)
  src.add_argument("--workdir", help="training run directory (latest checkpoint)")
  src.add_argument("--weights", help="junyanz .pth generator or a `port-weights` directory")
  parser.add_argument("--direction", choices=list(DIRECTIONS), default="AtoB",
                      help="AtoB uses G_A, BtoA uses G_B (ignored for a single-generator --weights)")
  parser.add_argument("--out", required=True, help="output directory (PNG files)")
  parser.add_argument("--batch-size", type=int, default=8)
  parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")


def collect_inputs(inputs: Sequence[str]) -> list[tuple[str, str]]:
  """(path, output name) for every image under `inputs`; folders keep their relative layout."""
  exts = {e.lower() for e in Image.registered_extensions()}
  found = []
  for item in inputs:
    if os.path.isdir(item):
      base = os.path.basename(os.path.normpath(item))
      for d, dirs, files in os.walk(item):
        dirs.sort()
        for f in sorted(files):
          if os.path.splitext(f)[1].lower() in exts and not f.startswith("."):
            rel = os.path.relpath(os.path.join(d, f), item)
            found.append((os.path.join(d, f), os.path.join(base, os.path.splitext(rel)[0] + ".png")))
    elif os.path.isfile(item):
      found.append((item, os.path.splitext(os.path.basename(item))[0] + ".png"))
    else:
      raise FileNotFoundError(f"input not found: {item}")
  return found


def run(args: argparse.Namespace) -> int:
  """Translates every input image and writes `<out>/<name>.png`; returns a shell exit code."""
  from tqdm import tqdm

  from jaxstyle import models

  if getattr(args, "unknown", None):
    print(f"jaxstyle translate: unrecognised arguments {args.unknown}", file=sys.stderr)
    return 2
  try:
    generator, params, cfg = load_generator(args.workdir, args.weights, args.direction)
    items = collect_inputs(args.inputs)
  except (OSError, ValueError, RuntimeError) as e:
    print(f"jaxstyle translate: {e}", file=sys.stderr)
    return 1
  multiple = models.generator_multiple(cfg)
  # Decode as we go and translate each padded-size group as soon as it fills a batch, so memory
  # holds at most one batch per distinct size.
  groups: dict[tuple[int, int], list[tuple[str, np.ndarray]]] = collections.defaultdict(list)
  with tqdm(total=len(items), unit="img", desc="translate") as bar:
    for path, name in items:
      img = image_io.load_rgb(path)
      h, w = img.shape[:2]
      key = (h + (-h) % multiple, w + (-w) % multiple)
      groups[key].append((name, img))
      if len(groups[key]) == args.batch_size:
        bar.update(_write(generator, params, groups.pop(key), args, multiple))
    for group in groups.values():
      bar.update(_write(generator, params, group, args, multiple))
  print(f"wrote {len(items)} images to {args.out}")
  return 0


def _write(generator: Any, params: Any, group: list[tuple[str, np.ndarray]],
           args: argparse.Namespace, multiple: int) -> int:
  outs = translate_images(generator, params, [img for _, img in group], args.batch_size, multiple)
  for (name, _), y in zip(group, outs):
    image_io.save(os.path.join(args.out, name), y)
  return len(group)
