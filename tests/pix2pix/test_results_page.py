"""The pix2pix results page's words and layout without a trained run: the direction and the
inference mode in the title, input | output | target per row (the end-to-end page, from a
trained run through `jaxstyle evaluate`, is in test_train.py)."""

import os

import numpy as np
import pytest

from jaxstyle import image_io
from jaxstyle.cyclegan import report
from jaxstyle.pix2pix import evaluate, presets


def _cfg(**data):
  cfg = presets.pix2pix_base()
  cfg.data.update(data)
  return cfg


def _triples(n: int) -> list[tuple[np.ndarray, ...]]:
  rng = np.random.default_rng(0)
  return [
    tuple(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)) for _ in range(n)
  ]


@pytest.mark.parametrize(
  'data, names',
  [
    (dict(source='synthetic'), ('labels', 'photo')),
    (dict(source='aligned', name='facades'), ('photo', 'labels')),
    (dict(source='aligned', name='maps'), ('aerial', 'map')),
    # The user's own folder: data.name keeps its default ('facades'), which says nothing here.
    (dict(source='aligned', name='facades', root='/data/mine'), ('A', 'B')),
  ],
)
def test_domain_names(data, names):
  assert evaluate.domain_names(_cfg(**data).data) == names


def test_photo_to_labels_page_in_eval_mode(tmp_path):
  cfg = _cfg(source='synthetic', direction='BtoA')
  kept = _triples(2)
  image_io.save(str(tmp_path / 'samples' / 'step_000007.png'), kept[0][0])
  metrics = {'eval/l1': 0.25, 'eval/psnr': 18.125, 'eval/eval_mode': 1.0, 'eval/n_images': 2.0}
  path = evaluate.write_page(
    str(tmp_path), cfg, 7, 'test', metrics, kept, ['a.png', 'b.png'], ['a note']
  )
  html = open(path, encoding='utf-8').read()
  assert f'<title>pix2pix photo → labels (BtoA), --eval: {tmp_path.name}</title>' in html
  for text in (
    'Inference: --eval (running batch-norm statistics, no dropout).',
    'a note',
    'Input (photo)',
    'Output (generated labels)',
    'Target (real labels)',
    'L1 to the target',
    'PSNR (dB)',
    '18.12',
    'columns input / output / target',
  ):
    assert text in html, text
  # Columns in input, output, target order; each PNG holds its array of the triple.
  heads = [html.index(h) for h in ('Input (photo)', 'Output (generated', 'Target (real')]
  assert heads == sorted(heads)
  for i, triple in enumerate(kept):
    for c, want in zip(('input', 'output', 'target'), triple):
      got = image_io.load_rgb(
        os.path.join(tmp_path, 'eval', 'images', f'photo_labels_{i:04d}_{c}.png')
      )
      np.testing.assert_array_equal(got, want)
  assert all(os.path.isfile(r) for r in report.referenced_files(path))


def test_default_mode_names_the_dropout_seed(tmp_path):
  cfg = _cfg(source='synthetic', direction='AtoB')
  cfg.seed = 3
  path = evaluate.write_page(
    str(tmp_path), cfg, 0, 'test', {'eval/eval_mode': 0.0}, _triples(1), ['x'], []
  )
  html = open(path, encoding='utf-8').read()
  assert 'labels → photo (AtoB), dropout + batch statistics' in html
  assert 'dropout seed 3' in html
