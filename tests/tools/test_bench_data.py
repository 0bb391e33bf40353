"""`jaxstyle bench data`: the input-pipeline bench on tiny mock data (folder and TFDS ArrayRecord)."""

import argparse
import json

import numpy as np
import pytest

from jaxstyle import cli
from jaxstyle.cyclegan import data, presets
from jaxstyle.tools import bench, bench_data


def test_data_bench_prints_images_per_s_for_the_folder_source(capsys):
  rc = cli.main(
    [
      'bench',
      'data',
      '--source',
      'folder',
      '--images',
      '4',
      '--size',
      '32',
      '--workers',
      '2',
      '--batch',
      '2',
    ]
  )
  line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert rc == 0 and line['bench'] == 'data' and 'tfds' not in line
  assert line['size'] == 32 and line['batch'] == 2 and line['cpu_count'] >= 1
  (run,) = line['folder']
  assert (run['workers'], run['steps']) == (2, 2)  # one pass over 4 A images at batch 2
  assert run['images_per_s'] > 0 and run['per_worker_images_per_s'] == pytest.approx(
    run['images_per_s'] / 2, abs=0.1
  )
  assert line['images_per_s'] == {'folder': {'2': run['images_per_s']}}
  cfg = line['data_config']
  assert (cfg['augment'], cfg['image_size'], cfg['load_size_used']) == ('reference', 32, 36)


def test_mock_jpegs_are_photo_sized(tmp_path):
  paths = bench_data.write_folder(str(tmp_path), 2)
  assert sorted(paths) == ['testA', 'testB', 'trainA', 'trainB'] and len(paths['trainB']) == 2
  from PIL import Image

  with Image.open(paths['trainA'][0]) as im:
    assert (im.format, im.size) == ('JPEG', bench_data.PHOTO_WH)


def _namespace(**overrides):
  """What `jaxstyle bench data` parses, small: 4 images per domain at 32 px, batch 2."""
  fields = dict(
    source='folder',
    images=4,
    workers='1',
    size=32,
    batch=2,
    train_steps=0,
    arch='unet128',
    dtype='float32',
    lambda_id=5.0,
    conv_impl='auto',
  )
  return argparse.Namespace(**{**fields, **overrides})


@pytest.fixture(scope='module')
def mock_tfds(tmp_path_factory):
  """5 mock photos per training domain as a folder and as the bench's TFDS ArrayRecord build."""
  tmp = tmp_path_factory.mktemp('mock')
  paths = bench_data.write_folder(str(tmp / 'folder'), 5)
  skipped = bench_data.write_tfds(str(tmp / 'tfds'), paths)
  assert skipped == ''
  configs = {
    'folder': dict(source='folder', root=str(tmp / 'folder')),
    'tfds': dict(source='tfds', name=bench_data.MOCK_NAME, data_dir=str(tmp / 'tfds')),
  }
  cfgs = {
    k: presets.data_config(**v, image_size=32, load_size=0, augment='reference', epoch_rule='max')
    for k, v in configs.items()
  }
  return {k: (cfg, data.make_sources(cfg, 'train')) for k, cfg in cfgs.items()}


def test_tfds_build_holds_the_folder_images(mock_tfds):
  (_, folder), (_, tfds) = mock_tfds['folder'], mock_tfds['tfds']
  for d in 'AB':
    assert len(tfds[d]) == len(folder[d]) == 5
    # TFDS shuffles record order: compare the decoded images as sorted byte strings.
    as_set = lambda src: sorted(src.image(i).tobytes() for i in range(len(src)))
    assert as_set(tfds[d]) == as_set(folder[d])
  assert tfds['A'].image(0).shape == (300, 400, 3)


def test_tfds_batches_are_a_function_of_seed_and_step(mock_tfds):
  cfg, sources = mock_tfds['tfds']
  first, again = data.batch_at(cfg, sources, 3, 2), data.batch_at(cfg, sources, 3, 2)
  other = data.batch_at(cfg, sources, 4, 2)
  assert first['A'].shape == (2, 32, 32, 3) and first['A'].dtype == np.float32
  for d in 'AB':
    np.testing.assert_array_equal(first[d], again[d])
    assert not np.array_equal(first[d], other[d])


def test_data_bench_times_the_tfds_source():
  line = bench_data.bench(_namespace(source='tfds'))
  assert 'skipped' not in str(line.get('tfds')) and line['sources_timed'] == ['tfds']
  (run,) = line['tfds']
  assert (run['workers'], run['steps']) == (1, 2) and run['images_per_s'] > 0
  assert list(line['images_per_s']) == ['tfds'] and 'train' not in line


@pytest.mark.slow  # 15-28 s on 2 shared cores
def test_data_bench_train_steps_reports_the_data_wait_share(monkeypatch):
  # The smallest nets the config accepts: a 2-step run is mostly compiling its step.
  monkeypatch.setitem(
    bench.ARCHS,
    'tiny',
    (
      32,
      dict(
        generator='resnet',
        n_blocks=0,
        gen_filters=2,
        discriminator='patchgan',
        disc_filters=2,
        n_layers=1,
      ),
    ),
  )
  line = bench_data.bench(_namespace(batch=1, train_steps=2, arch='tiny', lambda_id=0.0))
  run = line['train']['folder']
  assert (run['steps'], run['timed_steps'], run['size'], run['arch']) == (2, 1, 32, 'tiny')
  assert isinstance(run['data_wait_frac_mean'], float) and 0.0 <= run['data_wait_frac_mean'] <= 1.0
  assert run['step_s_mean'] > 0 and run['num_workers'] >= 1
