"""metrics.jsonl / TensorBoard writer."""

import glob
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from tb_events import read_events

from jaxstyle import metrics

# ---------------------------------------------------------------------------- metrics


def test_writer_jsonl_and_tensorboard(tmp_path):
  w = metrics.MetricWriter(str(tmp_path), enabled=True)
  w.write(1, {'train/loss_G': np.float32(1.5), 'train/lr': 2e-4, 'train/count': np.int32(3)})
  # Flushed per line: readable before close (what survives a kill).
  lines = (tmp_path / 'metrics.jsonl').read_text().splitlines()
  assert json.loads(lines[0]) == {
    'step': 1,
    'train/loss_G': 1.5,
    'train/lr': 2e-4,
    'train/count': 3,
  }
  w.write(2, {'train/loss_G': jnp.float32(0.25)})
  w.write_image(2, 'samples', np.zeros((8, 8, 3), np.uint8))
  with pytest.raises(ValueError, match='uint8'):
    w.write_image(2, 'bad', np.zeros((8, 8, 3), np.float32))
  w.close()
  assert [r['step'] for r in metrics.read_metrics(str(tmp_path))] == [1, 2]
  assert len(glob.glob(str(tmp_path / 'tb' / 'events.out.tfevents.*'))) == 1
  scalars, images = read_events(str(tmp_path))
  assert scalars['train/loss_G'] == [(1, 1.5), (2, 0.25)]
  assert scalars['train/count'] == [(1, 3.0)]
  assert images == {'samples': [(2, (8, 8))]}


def test_disabled_writer_creates_nothing(tmp_path):
  w = metrics.MetricWriter(str(tmp_path / 'run'), enabled=False)
  w.write(1, {'a': 1.0})
  w.write_image(1, 'x', np.zeros((4, 4, 3), np.uint8))
  w.close()
  assert not (tmp_path / 'run').exists()


def test_no_tensorboard_writes_only_jsonl(tmp_path):
  with metrics.MetricWriter(str(tmp_path), enabled=True, tensorboard=False) as w:
    w.write(3, {'x': 1.0})
  assert sorted(os.listdir(tmp_path)) == ['metrics.jsonl']


def test_read_metrics_truncated_line_and_resume(tmp_path):
  with metrics.MetricWriter(str(tmp_path), enabled=True, tensorboard=False) as w:
    for s in (10, 20, 30):
      w.write(s, {'loss': float(s)})
  with open(tmp_path / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 40, "lo')  # killed mid-line
  assert [r['step'] for r in metrics.read_metrics(str(tmp_path))] == [10, 20, 30]
  # Resume from a step-20 checkpoint: the rolled-back step 30 is superseded, same-step records kept.
  with metrics.MetricWriter(str(tmp_path), enabled=True, tensorboard=False) as w:
    w.write(30, {'loss': -30.0})
    w.write(30, {'eval/fid': 5.0})
    w.write(40, {'loss': -40.0})
  got = metrics.read_metrics(str(tmp_path))
  assert got == [
    {'step': 10, 'loss': 10.0},
    {'step': 20, 'loss': 20.0},
    {'step': 30, 'loss': -30.0},
    {'step': 30, 'eval/fid': 5.0},
    {'step': 40, 'loss': -40.0},
  ]


def test_format_metrics():
  s = metrics.format_metrics({'train/loss_G': 1.23456789, 'train/lr': np.float32(2e-4), 'step': 7})
  assert s == 'loss_G=1.235 lr=0.0002 step=7'
