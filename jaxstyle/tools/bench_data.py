"""`jaxstyle bench data`: input-pipeline throughput, images/s, of the trainer's own `TrainStream`.

Writes mock data once into a temp dir: photo-like 400×300 JPEGs in trainA/ trainB/ testA/ testB/,
and the same files as TFDS `cycle_gan/jaxstyle_mock` in ArrayRecord, written by a small
`GeneratorBasedBuilder` (no TensorFlow needed; `store_as_tfds_dataset` would need it). Then times
`data.TrainStream` with the reference augmentation (decode, bicubic resize to load_size 286,
random crop 256, flip) for each source × worker count, with nothing consuming the batches: the
most the pipeline can feed a device. An image is one decoded + augmented view (a batch of B has
2B: A and B). The JSON line's `sources_timed` lists the sources timed; where the TFDS build cannot
be written or read, `tfds` says "skipped: <why>" instead.

Whether a real run is input-bound is the trainer's `train/data_wait_frac` metric (metrics.jsonl):
the share of wall time the loop blocked on `next(stream)` between log steps. `--train-steps N`
measures it here: N trainer steps per timed source (`bench_data_train.py`), reported under `train`.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from typing import Any

import numpy as np
import PIL
from PIL import Image

from jaxstyle.cyclegan import data, presets
from jaxstyle.errors import nonnegative_int, positive_int
from jaxstyle.tools import bench_data_train

PHOTO_WH = (400, 300)  # a typical photo's aspect, not square: the resize to load_size does work
DEFAULT_IMAGES = 256  # per training domain: one pass is 2 × 256 augmented views per worker count
TEST_IMAGES = 2  # testA/ testB/ only make the folder a complete dataset root
MOCK_NAME = 'jaxstyle_mock'  # TFDS config written as cycle_gan/jaxstyle_mock


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Options of `jaxstyle bench data` (the rest, --size, --batch, --arch, are bench.py's)."""
  parser.add_argument(
    '--source',
    choices=('folder', 'tfds', 'both'),
    default='both',
    help='data: which mock source to time',
  )
  parser.add_argument(
    '--images',
    type=positive_int,
    default=DEFAULT_IMAGES,
    help=f'data: mock images per training domain (default {DEFAULT_IMAGES})',
  )
  parser.add_argument(
    '--workers',
    default='1,2,4',
    help='data: comma-separated TrainStream worker counts (default 1,2,4)',
  )
  parser.add_argument(
    '--train-steps',
    type=nonnegative_int,
    default=0,
    help='data: then train this many CycleGAN steps (--arch, --batch, --size) '
    'per source and report the mean train/data_wait_frac (default 0: off)',
  )


def _photo(rng: np.random.Generator) -> np.ndarray:
  """Smooth colour fields plus grain: JPEG size and decode cost near a real photo's, not noise's."""
  w, h = PHOTO_WH
  coarse = rng.integers(0, 256, (h // 20, w // 20, 3), np.uint8)
  img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR), np.float32)
  img += rng.normal(0.0, 6.0, img.shape)
  return np.clip(img, 0, 255).astype(np.uint8)


def write_folder(root: str, n: int, seed: int = 0) -> dict[str, list[str]]:
  """trainA/ trainB/ (n JPEGs each) and testA/ testB/ under `root`; {split: paths}."""
  rng = np.random.default_rng(seed)
  paths: dict[str, list[str]] = {}
  for split in ('trainA', 'trainB', 'testA', 'testB'):
    os.makedirs(os.path.join(root, split), exist_ok=True)
    count = n if split.startswith('train') else TEST_IMAGES
    paths[split] = [os.path.join(root, split, f'{i:05d}.jpg') for i in range(count)]
    for p in paths[split]:
      Image.fromarray(_photo(rng)).save(p, quality=90)
  return paths


@functools.cache
def _mock_builder_class() -> type:
  """A `GeneratorBasedBuilder` for `cycle_gan/jaxstyle_mock`, made on first use.

  Not `tfds.dataset_builders.store_as_tfds_dataset`: its adhoc builder checks
  `isinstance(dataset, tf.data.Dataset)`, so it needs TensorFlow. A builder class needs none, but
  tfds must be imported lazily (the module imports without it) and tfds's `code_path` resolves the
  class's package, so it is built here, in a package module, not in `__main__` or a test.
  """
  import tensorflow_datasets as tfds  # ~1 s, and only `--source tfds|both` needs it

  class MockCycleGan(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """The mock JPEGs as cycle_gan/<MOCK_NAME>: {'image', 'label'} like TFDS's cycle_gan."""

    name = 'cycle_gan'  # read back as cycle_gan/<MOCK_NAME> by `data.TfdsSource`
    VERSION = tfds.core.Version('3.0.0')
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=MOCK_NAME)]

    def __init__(self, *, paths: dict[str, list[str]], **kwargs: Any):
      self._paths = paths  # {split: JPEG paths}: a kwarg, so no module-level mutable state
      super().__init__(**kwargs)

    def _info(self) -> Any:
      return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(
          {
            'image': tfds.features.Image(encoding_format='jpeg'),
            'label': tfds.features.ClassLabel(num_classes=2),
          }
        )
      )

    def _split_generators(self, dl_manager: Any) -> dict[str, Any]:
      return {s: self._generate_examples(s, ps) for s, ps in self._paths.items()}

    def _generate_examples(self, split: str, paths: list[str]) -> Any:
      for i, p in enumerate(paths):
        yield i, {'image': p, 'label': int(split.endswith('B'))}

  return MockCycleGan


def write_tfds(data_dir: str, paths: dict[str, list[str]]) -> str:
  """The JPEGs as TFDS `cycle_gan/jaxstyle_mock` in ArrayRecord; '' on success, else why not."""
  try:
    import tensorflow_datasets as tfds

    builder = _mock_builder_class()(
      paths=paths, data_dir=data_dir, config=MOCK_NAME, file_format='array_record'
    )
    builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
        compute_stats=tfds.download.ComputeStatsMode.SKIP
      )
    )
    data.TfdsSource(MOCK_NAME, 'trainA', data_dir).image(0)  # readable the way the trainer reads
  except Exception as e:  # noqa: BLE001 -- any failure is reported in the JSON line, not raised
    return (
      f'skipped: cannot write/read a TFDS ArrayRecord build offline here: {type(e).__name__}: {e}'
    )
  return ''


def time_stream(data_cfg: Any, batch: int, workers: int) -> dict[str, Any]:
  """One pass over A through `TrainStream` with `workers` threads (prefetch = max(2, workers))."""
  sources = data.make_sources(data_cfg, 'train')
  steps = max(1, data.steps_per_epoch(data_cfg, sources, batch))
  prefetch = max(2, workers)  # fewer queued batches than workers would leave workers idle
  t0 = time.perf_counter()
  with data.TrainStream(data_cfg, sources, 0, batch, prefetch=prefetch, num_workers=workers) as s:
    for _ in range(steps):
      out = next(s)
  seconds = time.perf_counter() - t0
  assert out['A'].shape == (batch, data_cfg.image_size, data_cfg.image_size, 3)
  ips = 2 * batch * steps / seconds
  return dict(
    workers=workers,
    prefetch=prefetch,
    steps=steps,
    seconds=round(seconds, 3),
    images_per_s=round(ips, 1),
    per_worker_images_per_s=round(ips / workers, 1),
  )


def bench(args: argparse.Namespace) -> dict[str, Any]:
  """Writes the mock data, times each source × worker count; the JSON line's fields."""
  workers = [int(w) for w in str(args.workers).split(',') if w.strip()]
  if not workers or min(workers) < 1:
    raise ValueError(f'--workers must list positive ints, got {args.workers!r}')
  size = args.size or 256
  sources = ['folder', 'tfds'] if args.source == 'both' else [args.source]
  out: dict[str, Any] = dict(
    bench='data',
    cpu_count=os.cpu_count(),
    affinity_cpus=len(os.sched_getaffinity(0)),
    images=args.images,
    batch=args.batch,
    size=size,
    photo_wh=list(PHOTO_WH),
    pillow=PIL.__version__,
    numpy=np.__version__,
  )
  with tempfile.TemporaryDirectory(prefix='jaxstyle-bench-data-') as tmp:
    t0 = time.perf_counter()
    paths = write_folder(os.path.join(tmp, 'folder'), args.images)
    out['write_s'] = round(time.perf_counter() - t0, 2)
    out['jpeg_kb_mean'] = round(
      float(np.mean([os.path.getsize(p) for p in paths['trainA']])) / 1024, 1
    )
    configs = {'folder': dict(source='folder', root=os.path.join(tmp, 'folder'))}
    if 'tfds' in sources:
      skipped = write_tfds(os.path.join(tmp, 'tfds'), paths)
      if skipped:
        out['tfds'] = skipped
        sources.remove('tfds')
      else:
        configs['tfds'] = dict(source='tfds', name=MOCK_NAME, data_dir=os.path.join(tmp, 'tfds'))
    summary: dict[str, dict[str, float]] = {}
    out['sources_timed'] = list(sources)  # 'tfds' is absent when its build was skipped
    for name in sources:
      cfg = presets.data_config(
        **configs[name], image_size=size, load_size=0, augment='reference', epoch_rule='max'
      )
      out.setdefault(
        'data_config',
        {k: v for k, v in cfg.to_dict().items() if k not in ('root', 'data_dir', 'name', 'source')},
      )
      out['data_config']['load_size_used'] = data.load_size(cfg)
      runs = [time_stream(cfg, args.batch, w) for w in workers]
      out[name] = runs
      summary[name] = {str(r['workers']): r['images_per_s'] for r in runs}
    out['images_per_s'] = summary
    if getattr(args, 'train_steps', 0):
      out['train'] = {
        name: bench_data_train.time_training(args, configs[name], size) for name in sources
      }
  out['load_avg_1m'] = round(os.getloadavg()[0], 2)  # other processes on the cores skew the rates
  return out
