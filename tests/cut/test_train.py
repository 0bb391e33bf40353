"""A CUT run end to end: the runlocal config trains offline and lowers its loss, resumes
bit-identically, and `translate` / `evaluate` / `figure` work on it."""

import json
import os
import shutil

import numpy as np
import pytest
from helpers import ROOT, assert_trees_equal
from PIL import Image

from jaxstyle import checkpoint, cli, config_lib, models, networks
from jaxstyle.cut import train as cut_train

pytestmark = pytest.mark.slow  # two short trainings (one compile each) and a resume (~3 min)
CONFIG = os.path.join(ROOT, 'configs', 'cut_synthetic.py:runlocal')


def _config(**overrides):
  c = config_lib.load_config(CONFIG)
  # 32 steps: the preset's half epoch is 4 steps on the tests' 8 devices (global batch 8).
  config_lib.apply_overrides(c, {'progress': False, 'total_steps': 32, 'ckpt.keep': 4, **overrides})
  return c


def _records(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """The runlocal config (32 steps of 8 x 16², checkpoints every 8, eval at the end)."""
  workdir = str(tmp_path_factory.mktemp('cut') / 'run')
  last = cut_train.train(_config(eval_at_end=True), workdir)
  return workdir, last


def test_runlocal_trains_offline_and_lowers_the_nce_loss(run):
  workdir, last = run
  assert last['step'] == 32
  train = [r for r in _records(workdir) if 'train/loss_NCE' in r]
  assert [r['step'] for r in train] == list(range(4, 33, 4))
  assert all(np.isfinite(r[k]) for r in train for k in r if k.startswith('train/loss'))
  # PatchNCE starts near log(#patches) (queries unrelated to keys) and falls as G keeps content:
  # measured 3.22 -> 3.00 (X) and 3.23 -> 2.93 (Y), G's total 4.21 -> 3.69; the logs after step 12
  # move by ≤ 0.1 between each other, so the last three's mean is compared with a 0.1 margin.
  late = lambda key: np.mean([r[key] for r in train[-3:]])
  for key in ('train/loss_NCE', 'train/loss_NCE_Y'):
    assert late(key) < train[0][key] - 0.1, key
  assert late('train/loss_G') < 0.95 * train[0]['train/loss_G']
  # The end-of-run evaluation: one direction, content IoU from the synthetic masks, no cycle.
  assert 0.0 <= last['eval/transfer_A2B'] <= 1.0 and 0.0 <= last['eval/iou_A2B'] <= 1.0
  assert not any('B2A' in k or 'cycle' in k for k in last)
  grid = Image.open(os.path.join(workdir, 'samples', 'step_000032.png'))
  assert grid.width > 2 * 128 and grid.height > 2 * 128  # 2 columns, A and B rows, 128-px cells
  _, params = checkpoint.load_run(workdir)
  assert set(params) == {'G', 'D', 'F'}
  assert set(params['F']) == {f'mlp_{i}' for i in range(4)}  # one MLP per tap (0, 4, 8, 12)


def test_resume_is_bit_identical(run, tmp_path):
  workdir = str(tmp_path / 'resumed')
  shutil.copytree(run[0], workdir)
  for step in os.listdir(os.path.join(workdir, 'ckpt')):
    if step.isdigit() and int(step) > 16:
      shutil.rmtree(os.path.join(workdir, 'ckpt', step))  # as if stopped after step 16's save
  assert checkpoint.run_steps(workdir)[-1] == 16
  again = cut_train.train(_config(eval_at_end=True), workdir)
  assert again['step'] == 32
  state = {k: checkpoint.load_run(d)[1] for k, d in (('a', run[0]), ('b', workdir))}
  assert_trees_equal(state['a'], state['b'])
  want = [r for r in _records(run[0]) if 'train/loss_G' in r]
  got = [r for r in _records(workdir) if 'train/loss_G' in r and r['step'] > 16]
  for a, b in zip(want[-4:], got[-4:]):
    assert a['train/loss_G'] == b['train/loss_G'] and a['step'] == b['step']


def test_translate_a_to_b_only(run, tmp_path, capsys):
  workdir, _ = run
  inputs = tmp_path / 'in'
  inputs.mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 256, (13, 18, 3), dtype=np.uint8)).save(inputs / 'a.png')
  out = tmp_path / 'out'
  assert cli.main(['translate', '--workdir', workdir, '--out', str(out), str(inputs)]) == 0
  y = np.asarray(Image.open(out / 'a.png'))
  assert y.shape == (13, 18, 3)
  # The same pixels as the run's generator applied by hand (reflect-pad to 16 x 20, crop back).
  config, params = checkpoint.load_run(workdir)
  g = models.make_generator(networks.cut_model(**config['model']))
  x = np.asarray(Image.open(inputs / 'a.png'), np.float32) / 127.5 - 1.0
  x = np.pad(x, ((0, 3), (0, 2), (0, 0)), mode='reflect')[None]
  want = np.asarray(g.apply({'params': params['G']}, x))[0, :13, :18]
  want = np.clip(np.rint((want + 1.0) * 127.5), 0, 255).astype(np.uint8)
  assert np.abs(y.astype(int) - want).max() <= 1  # batch 1 both ways; 1 level: rounding at .5
  capsys.readouterr()
  argv = ['translate', '--workdir', workdir, '--direction', 'BtoA', '--out', str(out)]
  assert cli.main([*argv, str(inputs)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and 'A to B only' in err[0] and 'BtoA' in err[0]


def test_evaluate_scores_one_direction_and_writes_the_page(run, capsys):
  workdir, _ = run
  argv = ['evaluate', '--workdir', workdir, '--max-images', '8', '--batch-size', '4']
  assert cli.main(argv) == 0
  table = capsys.readouterr().out
  assert f'scored step 32 of {workdir}' in table
  record = json.loads(open(os.path.join(workdir, 'eval.json')).read())
  assert record['eval/n_images_A'] == 8.0 and {'eval/transfer_A2B', 'eval/iou_A2B'} <= set(record)
  assert not any('B2A' in k or 'cycle' in k or k == 'eval/n_images_B' for k in record)
  page = open(os.path.join(workdir, 'eval', 'index.html')).read()
  assert 'Translated A→B' in page and 'Reconstructed' not in page


def test_figure_sample_grids(run, tmp_path):
  workdir, _ = run
  out = tmp_path / 'fig.png'
  assert cli.main(['figure', '5-8', '--workdir', workdir, '-o', str(out)]) == 0
  grid = Image.open(os.path.join(workdir, 'samples', 'step_000032.png'))
  assert Image.open(out).size[0] >= grid.size[0]  # the run's grid, captioned
  # The side-by-side figure: 3 test images x (input + two runs), 128-px cells.
  three = tmp_path / 'three.png'
  argv = ['figure', 'cut-compare', '--workdirs', workdir, workdir, '-o', str(three)]
  assert cli.main([*argv, '--num-images', '3']) == 0
  w, h = Image.open(three).size
  assert w > 3 * 128 and h > 3 * 128
