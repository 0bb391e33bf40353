"""Where and how an NST run's images are written: the result (and a sweep's members), snapshots
to TensorBoard and PNG, the book's Figure 5-18 progress strip. Split from `stylize.py`, which
drives the optimisation and calls these."""

from __future__ import annotations

import os

import jax
import ml_collections
import numpy as np

from jaxstyle import image_io
from jaxstyle.metrics import MetricWriter
from jaxstyle.nst import image as nst_image


def write_snapshot(
  writer: MetricWriter,
  config: ml_collections.ConfigDict,
  images: list[np.ndarray],
  sweep: tuple[float, ...],
  prefix: str,
  segment: int,
  iteration: int,
) -> None:
  """Each image of a segment to TensorBoard (when a workdir is given) and, if asked, to PNG."""
  for img, sw in zip(images, sweep or (None,)):
    tag = '' if sw is None else f'_sw{sw:g}'
    writer.write_image(iteration, f'nst/snapshot{tag}', image_io.clip_uint8(img))
    if config.snapshots:
      image_io.save(f'{prefix}{tag}_at_iteration_{segment}.png', img)


def to_rgb(x, prep, batch, config, content_rgb, size) -> list[np.ndarray]:
  xs = np.asarray(jax.device_get(x))
  xs = xs if batch else xs[None]
  out = []
  for xi in xs:
    img = np.clip(np.asarray(prep.deprocess(xi), np.float32).reshape(*size, 3), 0, 255)
    if config.colors == 'preserve':
      img = nst_image.original_colors(img, nst_image.resize(content_rgb, size, 'bilinear'))
    out.append(img.astype(np.float32))
  return out


def output_path(output: str, workdir: str | None) -> str:
  """Where the result goes: `output` itself, a relative one inside `workdir` when one is given."""
  return os.path.join(workdir, output) if workdir else output


def write_outputs(output, images, sweep) -> list[str]:
  """The result at `output`; a sweep's members at `<stem>_sw<weight><ext>` beside it."""
  base, ext = os.path.splitext(output)
  paths = [f'{base}_sw{s:g}{ext or ".png"}' for s in sweep] if sweep else [base + (ext or '.png')]
  for path, img in zip(paths, images):
    image_io.save(path, img)
  return paths


def write_strip(config, content_rgb, style_rgbs, snapshots, prefix) -> str:
  """Book Figure 5-18 layout: content | style | result at a few iterations (first sweep member)."""
  n = len(snapshots)
  chosen = [i for i in config.strip_iters if i < n] or sorted(
    {int(round(v)) for v in np.linspace(0, n - 1, min(4, n))}
  )
  images = [content_rgb, style_rgbs[0]] + [snapshots[i][0] for i in chosen]
  labels = ['content', 'style'] + [f'iteration {i}' for i in chosen]
  tiles = [image_io.scale_to_height(image_io.clip_uint8(img), 160) for img in images]
  return image_io.save(
    f'{prefix}_progress.png', image_io.grid([tiles], labels=[labels], font_size=16)
  )
