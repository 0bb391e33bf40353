"""`evaluate` metrics (oracle, identity, random generators) and the `jaxstyle evaluate` CLI."""

import json
import os

import helpers
import jax
import numpy as np
import pytest
import tiny_run
from PIL import Image
from tiny_run import as_uint8

from jaxstyle import cli, image_io
from jaxstyle.cyclegan import data, evaluate, presets, report, synthetic, translate
from jaxstyle.models import inception
from jaxstyle.tools import sweep


def data_config(**overrides):
  """The synthetic source's data section (these tests' default)."""
  return presets.data_config(**{'source': 'synthetic', 'epoch_rule': 'max', **overrides})


def _oracle(x):
  """Swaps red and blue inside the estimated object mask: turns A objects blue, B objects orange."""
  img = as_uint8(x)
  m = synthetic.estimate_mask(img)[..., None]
  return image_io.to_float(np.where(m, img[..., ::-1], img))


@pytest.fixture(scope='module')
def synth():
  cfg = data_config(image_size=32, synthetic_size=48, seed=4)
  return cfg, data.make_sources(cfg, 'test')


@pytest.fixture(scope='module')
def small_run():
  return tiny_run.small_run()


def test_oracle_and_identity(synth):
  cfg, src = synth
  oracle = evaluate.evaluate_fns(
    {'A2B': _oracle, 'B2A': _oracle}, src, cfg, synthetic.domain_probability, batch_size=20
  )
  assert oracle['eval/transfer_A2B'] == 1.0 and oracle['eval/transfer_B2A'] == 1.0
  assert oracle['eval/iou_A2B'] >= 0.95 and oracle['eval/iou_B2A'] >= 0.95
  assert oracle['eval/cycle_l1_A'] < 1e-6 and oracle['eval/n_images_B'] == 48
  ident = evaluate.evaluate_fns(
    {'A2B': lambda x: x, 'B2A': lambda x: x}, src, cfg, synthetic.domain_probability, max_images=10
  )
  assert ident['eval/transfer_A2B'] == 0.0 and ident['eval/transfer_B2A'] == 0.0
  assert ident['eval/iou_B2A'] >= 0.95 and ident['eval/n_images_A'] == 10
  # A translation that destroys content keeps no IoU, whatever its colour.
  blank = evaluate.evaluate_fns(
    {'A2B': np.zeros_like, 'B2A': np.zeros_like},
    src,
    cfg,
    synthetic.domain_probability,
    max_images=8,
  )
  assert blank['eval/iou_A2B'] == 0.0 and blank['eval/transfer_A2B'] == 0.0


def test_evaluate_random_generators_matches_manual(small_run):
  config, g, params = small_run
  m = evaluate.evaluate(config, params, max_images=4, batch_size=4)
  for key in ('transfer_A2B', 'transfer_B2A', 'iou_A2B', 'iou_B2A', 'cycle_l1_A', 'cycle_l1_B'):
    assert 0.0 <= m[f'eval/{key}'] <= 2.0, key
  # Recompute two metrics directly from the networks (same batch shape: no new compile).
  src = synthetic.SyntheticDomain('A', 'test', 4, 16, seed=4)
  x = image_io.to_float(src.images)
  fake = np.asarray(translate._apply_jit(g, params['G_A'], x))
  rec = np.asarray(translate._apply_jit(g, params['G_B'], fake))
  assert m['eval/cycle_l1_A'] == pytest.approx(np.abs(rec - x).mean(), abs=1e-5)
  p_b = synthetic.domain_probability(as_uint8(fake))
  assert m['eval/transfer_A2B'] == pytest.approx((p_b > 0.5).mean())


def test_colour_criterion_on_folder_data(tmp_path):
  for split, n in (('train', 30), ('test', 6)):
    for d in 'AB':
      (tmp_path / f'{split}{d}').mkdir()
      for i, img in enumerate(synthetic.generate(d, split, n, 16, seed=1)[0]):
        Image.fromarray(img).save(tmp_path / f'{split}{d}' / f'{i:03d}.png')
  cfg = data_config(source='folder', root=str(tmp_path), image_size=16)
  crit = evaluate.fit_colour_criterion(cfg)
  test_a, test_b = (synthetic.generate(d, 'test', 40, 16, seed=1)[0] for d in 'AB')
  assert (crit(test_a) < 0.5).mean() > 0.9 and (crit(test_b) > 0.5).mean() > 0.9
  sources = data.make_sources(cfg, 'test')
  m = evaluate.evaluate_fns({'A2B': _oracle, 'B2A': lambda x: x}, sources, cfg, crit)
  assert 'eval/iou_A2B' not in m  # folders have no ground-truth masks
  assert m['eval/transfer_A2B'] > 0.8 and m['eval/transfer_B2A'] == 0.0


def test_evaluate_cli(small_run, tmp_path, capsys):
  config, _, params = small_run
  run = tiny_run.write_run(tmp_path / 'run', config, params)
  capsys.readouterr()
  assert (
    cli.main(
      ['evaluate', '--workdir', str(run), '--max-images', '4', '--batch-size', '4', '--fid', 'on']
    )
    == 0
  )
  table = capsys.readouterr().out
  assert f'scored step 3 of {run}' in table  # the step tiny_run.write_run saved
  assert 'eval/transfer_A2B' in table and 'eval/iou_B2A' in table
  record = json.loads((run / 'eval.json').read_text())
  assert record['split'] == 'test' and record['eval/n_images_A'] == 4.0 and record['step'] == 3
  assert set(record) >= {
    f'eval/{k}'
    for k in ('transfer_A2B', 'transfer_B2A', 'iou_A2B', 'iou_B2A', 'cycle_l1_A', 'cycle_l1_B')
  }
  # No Inception weights in the (test) cache and downloads off: said plainly, the rest still runs.
  assert 'FID/KID not computed' in table and 'JAXSTYLE_OFFLINE' in record['fid_note']
  page = run / 'eval' / 'index.html'
  assert f'results page: {page}' in table and 'FID/KID not computed' in page.read_text()
  assert all(os.path.exists(f) for f in report.referenced_files(str(page)))


@pytest.mark.slow
def test_evaluate_cli_fid_kid_and_page(small_run, tmp_path, capsys, monkeypatch):
  """FID/KID of A->B translations against the real test B (and B->A vs A), with seeded random
  Inception weights; the FID formula itself (a 1-minute sqrtm per call) is tested in
  tests/fid, so here it is replaced by a recorder that checks what it is given."""
  config, g, params = small_run
  (tmp_path / 'sweep').mkdir()
  run = tiny_run.write_run(tmp_path / 'sweep' / 'run1', config, params)
  inception_params, seen = helpers.random_inception_for_fid(monkeypatch, 3)
  argv = [
    'evaluate',
    '--workdir',
    str(run),
    '--max-images',
    '4',
    '--batch-size',
    '4',
    '--page-images',
    '3',
  ]
  assert cli.main(argv) == 0  # auto: not on the synthetic dataset, and the record says so
  assert 'synthetic' in json.loads((run / 'eval.json').read_text())['fid_note'] and not seen
  assert cli.main([*argv, '--fid', 'on']) == 0
  record = json.loads((run / 'eval.json').read_text())
  assert record['eval/fid_A2B'] == 1.0 and record['eval/fid_B2A'] == 2.0
  assert record['eval/kid_std_B2A'] >= 0 and record['fid_mode'] == 'pytorch-fid'
  # 4 images per set: the mode and the one-line small-sample warning reach the record and page
  assert 'pytorch-fid mode' in record['fid_note'] and 'n = 4 < 2048' in record['fid_note']
  # The second set of each FID is the target domain's real test images, through the Inception.
  sources = data.make_sources(data_config(image_size=16, synthetic_size=24, seed=4), 'test')
  apply = jax.jit(inception.FIDInceptionV3().apply)
  for (fake, real), dst in zip(seen, 'BA'):
    want = np.asarray(apply(inception_params, sources[dst].images[:4] / np.float32(255)))
    # Error model: another program (the sharded extractor) for the same sums: pool3 is 47 convs
    # deep (fan-in ≤ 3·3·448), ≤ 47·sqrt(4032)·u ≈ 1.8e-4 of the features' scale; another image
    # set or a missing /255 is off by O(1).
    np.testing.assert_allclose(real, want, rtol=0, atol=2e-4 * np.abs(want).max())
    assert fake.shape == real.shape == (4, 2048) and np.abs(fake - real).max() > 0
  page = run / 'eval' / 'index.html'
  files = report.referenced_files(str(page))
  assert len([f for f in files if f.endswith('.png')]) >= 2 * 3 * 4  # 3 rows x 4 columns x 2
  assert all(os.path.exists(f) for f in files) and 'FID' in page.read_text()
  table = sweep.summarize(str(tmp_path / 'sweep'))
  assert table.splitlines()[0].split()[:3] == ['run', 'step', 'eval/fid_A2B']


@pytest.mark.parametrize(
  'setup, message',
  [
    ('empty', 'is not a training run: it has no config.json'),
    ('config_only', 'has no checkpoint under'),
  ],
)
def test_evaluate_cli_not_a_run_is_one_line(tmp_path, capsys, setup, message):
  if setup == 'config_only':
    (tmp_path / 'config.json').write_text('{}')
  assert cli.main(['evaluate', '--workdir', str(tmp_path)]) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith('jaxstyle evaluate: error: ') and message in err, err
  assert len(err.splitlines()) == 1 and not (tmp_path / 'eval.json').exists()


@pytest.mark.parametrize('flag', ['--batch-size', '--max-images'])
def test_evaluate_cli_rejects_non_positive_counts(tmp_path, capsys, flag):
  with pytest.raises(SystemExit) as exit_info:  # argparse exits while parsing
    cli.main(['evaluate', '--workdir', str(tmp_path), flag, '0'])
  assert exit_info.value.code == 2
  assert f'{flag}: expected an integer ≥ 1, got 0' in capsys.readouterr().err
