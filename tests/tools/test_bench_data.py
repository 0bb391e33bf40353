"""`jaxstyle bench data`: the input-pipeline bench on a tiny mock folder (seconds)."""
import json

import pytest

from jaxstyle import cli
from jaxstyle.tools import bench_data


def test_data_bench_prints_images_per_s_for_the_folder_source(capsys):
  rc = cli.main(['bench', 'data', '--source', 'folder', '--images', '4', '--size', '32',
                 '--workers', '2', '--batch', '2'])
  line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert rc == 0 and line['bench'] == 'data' and 'tfds' not in line
  assert line['size'] == 32 and line['batch'] == 2 and line['cpu_count'] >= 1
  (run,) = line['folder']
  assert (run['workers'], run['steps']) == (2, 2)  # one pass over 4 A images at batch 2
  assert run['images_per_s'] > 0 and run['per_worker_images_per_s'] == pytest.approx(
      run['images_per_s'] / 2, abs=0.1)
  assert line['images_per_s'] == {'folder': {'2': run['images_per_s']}}
  cfg = line['data_config']
  assert (cfg['augment'], cfg['image_size'], cfg['load_size_used']) == ('reference', 32, 36)


def test_mock_jpegs_are_photo_sized(tmp_path):
  paths = bench_data.write_folder(str(tmp_path), 2)
  assert sorted(paths) == ['testA', 'testB', 'trainA', 'trainB'] and len(paths['trainB']) == 2
  from PIL import Image
  with Image.open(paths['trainA'][0]) as im:
    assert (im.format, im.size) == ('JPEG', bench_data.PHOTO_WH)
