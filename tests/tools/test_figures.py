"""`jaxstyle figure` redraws each book figure from fabricated run outputs."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxstyle import cli
from jaxstyle.errors import UserError
from jaxstyle.tools import figures

# One distinct pure colour per sample step / snapshot, so a figure's pixels show which it used.
STEP_COLOURS = {0: (255, 0, 0), 10: (0, 255, 0), 20: (0, 0, 255), 30: (255, 255, 0)}
ITER_COLOURS = {0: (255, 0, 255), 1: (0, 255, 255), 2: (128, 0, 0)}


def _png(path, colour, size=(64, 128)):
  img = np.zeros((*size, 3), np.uint8) + np.asarray(colour, np.uint8)
  img[: size[0] // 4] = 255  # a white band so images are not single-colour
  Image.fromarray(img).save(path)


def _make_run(path, lambda_id, steps=STEP_COLOURS, n_log=5):
  os.makedirs(path / 'samples')
  for step, colour in steps.items():
    _png(path / 'samples' / f'step_{step:06d}.png', colour)
  (path / 'config.json').write_text(json.dumps({'loss': {'lambda_id': lambda_id}, 'seed': 0}))
  with open(path / 'metrics.jsonl', 'w') as f:
    for i in range(n_log):
      f.write(
        json.dumps(
          {
            'step': i * 10,
            'train/loss_G': 5.0 - i * (1 + lambda_id),
            'train/loss_D_A': 0.5,
            'train/loss_idt_A': 0.1 * lambda_id,
            'train/lr': 2e-4,
          }
        )
        + '\n'
      )
  return str(path)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  base = tmp_path_factory.mktemp('sweep')
  dirs = [_make_run(base / f'loss.lambda_id={w}', w) for w in (0.0, 0.5, 5.0)]
  nst = tmp_path_factory.mktemp('nst')
  for i, colour in ITER_COLOURS.items():
    _png(nst / f'out_at_iteration_{i}.png', colour, size=(48, 48))
  _png(nst / 'content.png', (10, 20, 30), size=(48, 48))
  return {'base': str(base), 'dirs': dirs, 'nst': str(nst)}


def _colours(path):
  img = np.asarray(Image.open(path).convert('RGB')).reshape(-1, 3)
  return {tuple(c) for c in np.unique(img, axis=0)}


def _figure(argv, out):
  assert cli.main(['figure', *argv, '-o', str(out)]) == 0
  assert len(_colours(out)) > 8  # more than flat panels on white: anti-aliased captions or curves
  return Image.open(out).size


def test_5_8_latest_or_chosen_step(runs, tmp_path):
  w, h = _figure(['5-8', '--workdir', runs['dirs'][0]], tmp_path / 'a.png')
  assert w >= 128 and h >= 64
  colours = _colours(tmp_path / 'a.png')
  assert STEP_COLOURS[30] in colours and STEP_COLOURS[0] not in colours
  _figure(['5-8', '--workdir', runs['dirs'][0], '--steps', '10'], tmp_path / 'b.png')
  colours = _colours(tmp_path / 'b.png')
  assert STEP_COLOURS[10] in colours and STEP_COLOURS[30] not in colours
  with pytest.raises(FileNotFoundError):
    figures.figure_samples(runs['dirs'][0], str(tmp_path / 'c.png'), step=7)


def test_5_9_one_panel_per_run_labelled_by_lambda(runs, tmp_path):
  one = _figure(['5-9', '--workdirs', runs['dirs'][0]], tmp_path / 'one.png')
  three = _figure(['5-9', '--workdir', runs['base']], tmp_path / 'three.png')  # sweep base dir
  assert three[0] >= 3 * 128 and three[0] > 2 * one[0]
  assert [figures.run_label(d) for d in runs['dirs']] == [
    'lambda_id = 0',
    'lambda_id = 0.5',
    'lambda_id = 5',
  ]


@pytest.mark.parametrize('number', ['5-12', '5-13'])
def test_progress_grid_uses_chosen_steps(runs, tmp_path, number):
  out = tmp_path / 'p.png'
  w, h = _figure([number, '--workdir', runs['dirs'][1], '--steps', '0,20'], out)
  colours = _colours(out)
  assert {STEP_COLOURS[0], STEP_COLOURS[20]} <= colours
  assert STEP_COLOURS[10] not in colours and STEP_COLOURS[30] not in colours
  assert h >= 2 * 64
  # Default: evenly spread steps, first and last included.
  assert figures._spread([0, 10, 20, 30, 40, 50, 60], 4) == [0, 20, 40, 60]


def test_5_18_nst_strip(runs, tmp_path):
  out = tmp_path / 'nst.png'
  w, _ = _figure(
    [
      '5-18',
      '--workdir',
      runs['nst'],
      '--iterations',
      '0,2',
      '--images',
      os.path.join(runs['nst'], 'content.png'),
    ],
    out,
  )
  colours = _colours(out)
  assert {ITER_COLOURS[0], ITER_COLOURS[2], (10, 20, 30)} <= colours
  assert ITER_COLOURS[1] not in colours
  assert w >= 3 * 48
  _png(os.path.join(runs['nst'], 'other_at_iteration_0.png'), (1, 2, 3), size=(8, 8))
  try:
    with pytest.raises(UserError, match='--prefix'):
      figures.nst_snapshots(runs['nst'])
    assert list(figures.nst_snapshots(runs['nst'], prefix='out')) == [0, 1, 2]
  finally:
    os.remove(os.path.join(runs['nst'], 'other_at_iteration_0.png'))


def test_loss_curves(runs, tmp_path):
  w, h = _figure(['loss', '--workdir', runs['dirs'][0]], tmp_path / 'l1.png')
  assert w >= 3 * 300  # three loss keys side by side
  _figure(['loss', '--workdir', runs['base'], '--keys', 'train/loss_G'], tmp_path / 'l3.png')
  with pytest.raises(UserError):
    figures.figure_losses(runs['dirs'][:1], str(tmp_path / 'x.png'), keys=[])


@pytest.mark.slow  # reads the session's trained run (conftest.trained_run: ~40 s if it trains it)
def test_figures_from_a_real_run(trained_run, tmp_path):
  real_run = trained_run[0]
  assert list(figures.sample_steps(real_run)) == [2]
  sample = Image.open(figures.sample_steps(real_run)[2])
  w, h = _figure(['5-8', '--workdir', real_run], tmp_path / '5_8.png')
  assert w >= sample.size[0] and h >= sample.size[1]  # drawn at (at least) native size
  w, h = _figure(['loss', '--workdir', real_run], tmp_path / 'loss.png')
  assert w >= 3 * 300
  assert figures.run_label(real_run) == 'lambda_id = 5'  # read from the run's config.json
