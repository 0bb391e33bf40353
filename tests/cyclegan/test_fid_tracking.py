"""Issue #28: FID tracked during training, its best step kept whatever `ckpt.keep` says, and
`jaxstyle evaluate --step best`.

A runlocal-sized run (6 steps) with seeded random Inception weights: every tracked FID runs the
real path (test subsets, generators, the sharded Inception extractor), and the FID values
themselves come from a script (`fid_lowrank` is replaced by a recorder) so that the best step is
a known middle step that `ckpt.keep=1` alone would delete. The FID formula is tested in
tests/fid (test_fid_quality.py checks `fid_lowrank` against pytorch-fid's route).
"""

import json

import numpy as np
import pytest
from helpers import tiny_train_config
from random_weights import random_state_dict

from jaxstyle import checkpoint, cli
from jaxstyle.cyclegan import train as train_cyclegan
from jaxstyle.fid import metrics, tracking
from jaxstyle.fid import weights as fid_weights
from jaxstyle.metrics import read_metrics
from jaxstyle.models import inception

pytestmark = pytest.mark.slow  # 6 training steps and the Inception trunk at 299² (~40 s)


def test_best_step_survives_keep_1_and_evaluate_scores_it(tmp_path, monkeypatch, capsys):
  params = inception.params_from_state_dict(
    random_state_dict(list(inception.torch_shapes().items()), 5)
  )
  monkeypatch.setattr(fid_weights, 'load_params', lambda path=None, **kw: params)
  script = iter([9.0, 7.0, 2.0, 4.0, 6.0, 8.0])  # per call: A2B then B2A, at steps 2, 4, 6
  shapes = []
  monkeypatch.setattr(
    metrics, 'fid_lowrank', lambda a, b: shapes.append((a.shape, b.shape)) or next(script)
  )
  config = tiny_train_config(
    total_steps=6,
    **{
      'ckpt.every_steps': 100,
      'ckpt.keep': 1,
      'eval.fid_every_steps': 2,
      'eval.fid_images': 3,
      'sample_every': 100,
    },
  )
  workdir = str(tmp_path / 'run')
  train_cyclegan.train(config, workdir)
  assert shapes == [((3, 2048), (3, 2048))] * 6  # 3 translations vs 3 real images, each time
  records = [r for r in read_metrics(workdir) if tracking.TRACK_KEY in r]
  assert [(r['step'], r[tracking.TRACK_KEY]) for r in records] == [(2, 8.0), (4, 3.0), (6, 7.0)]
  assert records[1]['fid_track/A2B'] == 2.0 and records[-1]['fid_track/best_step'] == 4.0
  # keep=1 keeps the newest (6) and the pinned best (4); step 2, also saved for its FID, is gone.
  assert checkpoint.run_steps(workdir) == [4, 6]

  capsys.readouterr()
  assert cli.main(['evaluate', '--workdir', workdir, '--step', 'best', '--max-images', '2']) == 0
  out = capsys.readouterr().out
  record = json.loads((tmp_path / 'run' / 'eval.json').read_text())
  assert record['step'] == 4 and 'scored step 4' in out
  assert 'optimistic protocol' in record['fid_note']
  page = (tmp_path / 'run' / 'eval' / 'index.html').read_text()
  assert 'optimistic protocol' in page and "id='fid-curve'" in page and '<polyline' in page
  assert cli.main(['evaluate', '--workdir', workdir, '--step', '2']) == 2  # pruned: one line
  assert 'no checkpoint of step 2' in capsys.readouterr().err


def test_best_step_reads_the_lowest_checkpointed_record():
  records = [
    {'step': 2, tracking.TRACK_KEY: 5.0},
    {'step': 3, 'train/loss_G': 1.0},
    {'step': 4, tracking.TRACK_KEY: 1.0},
    {'step': 6, tracking.TRACK_KEY: 1.0},
    {'step': 8, tracking.TRACK_KEY: float('nan')},
  ]
  assert tracking.best_step(records) == (4, 1.0)  # the earliest of a tie
  assert tracking.best_step(records, available=[2, 6, 8]) == (6, 1.0)
  assert tracking.best_step(records[1:2]) is None
  curve = tracking.curve(records)  # every tracked record, NaN included (the page skips it)
  assert curve[:3] == [(2, 5.0), (4, 1.0), (6, 1.0)] and len(curve) == 4 and np.isnan(curve[3][1])
  idx = tracking.subset(50, 10, seed=3)
  assert len(idx) == 10 and list(idx) == sorted(set(idx.tolist()))
  np.testing.assert_array_equal(idx, tracking.subset(50, 10, seed=3))
  np.testing.assert_array_equal(tracking.subset(5, 10, seed=3), np.arange(5))
