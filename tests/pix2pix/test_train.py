"""The pix2pix trainer end to end: offline runlocal, exact resume (batch-norm statistics too), and
`jaxstyle translate` / `evaluate` on the run in both of the reference's inference modes, and the
results page `evaluate` writes."""

import json
import os
import shutil

import numpy as np
import pytest
from helpers import CONFIG_DIR, assert_trees_equal, random_inception_for_fid
from PIL import Image

from jaxstyle import checkpoint, cli, config_lib, image_io
from jaxstyle.cyclegan import report
from jaxstyle.pix2pix import data, evaluate, inference, synthetic
from jaxstyle.pix2pix import train as pix2pix_train

pytestmark = pytest.mark.slow  # three short runs (one compile each, then the jit cache)
SYNTHETIC = str(CONFIG_DIR / 'pix2pix_synthetic.py')


def _tiny(total_steps):
  c = config_lib.load_config(SYNTHETIC + ':runlocal')
  c.model.update(dict(gen_filters=2, disc_filters=2))
  c.update(dict(total_steps=total_steps, log_every=1, sample_every=2, progress=False))
  c.ckpt.every_steps = 2
  c.eval_at_end = False
  return c


def _state(workdir, step):
  _, params, _ = checkpoint.load_run_with_step(str(workdir), step)
  _, stats, _ = checkpoint.load_run_with_step(str(workdir), step, key='batch_stats')
  return {'params': params, 'batch_stats': stats}


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  straight, resumed = tmp_path_factory.mktemp('straight'), tmp_path_factory.mktemp('resumed')
  last = pix2pix_train.train(_tiny(4), str(straight))
  pix2pix_train.train(_tiny(2), str(resumed))
  pix2pix_train.train(_tiny(4), str(resumed))  # resumes from step 2
  return straight, resumed, last


def test_resume_is_exact_including_batch_norm_statistics(runs):
  straight, resumed, last = runs
  assert last['step'] == 4 and np.isfinite(last['train/loss_G'])
  a, b = _state(straight, 4), _state(resumed, 4)
  assert_trees_equal(a, b)
  # The running statistics moved away from their initial (0, 1): they are trained state.
  assert np.abs(a['batch_stats']['G']['up_norm_1']['mean']).max() > 0
  assert (straight / 'samples' / 'step_000004.png').exists()


def test_translate_and_evaluate_in_both_modes(runs, tmp_path):
  workdir = str(runs[0])
  labels, _, _ = synthetic.generate('test', 3, 32, seed=5)
  for i, img in enumerate(labels):
    Image.fromarray(img).save(tmp_path / f'{i}.png')
  Image.fromarray(np.repeat(np.repeat(labels[0], 2, 0), 3, 1)).save(tmp_path / 'big.png')

  def translate(name, *flags, inputs=('0.png', '1.png', '2.png')):
    out = tmp_path / name
    argv = ['translate', '--workdir', workdir, '-o', str(out), *flags]
    assert cli.main(argv + [str(tmp_path / f) for f in inputs]) == 0
    return {f: np.asarray(Image.open(out / f)) for f in inputs}

  ev, ev_again, ev_alone = (
    translate('e1', '--eval'),
    translate('e2', '--eval'),
    translate('e3', '--eval', inputs=('1.png',)),
  )
  for f in ev:
    np.testing.assert_array_equal(ev[f], ev_again[f])  # deterministic
  # Running statistics: an image's output does not depend on what it is translated with.
  np.testing.assert_array_equal(ev['1.png'], ev_alone['1.png'])
  default = translate('d1')
  alone = translate('d2', inputs=('1.png',))
  assert not np.array_equal(default['0.png'], ev['0.png'])  # batch vs running statistics
  # Batch statistics per image (the reference's batch 1): still independent of the others.
  np.testing.assert_array_equal(default['1.png'], alone['1.png'])
  assert translate('big', '--eval', inputs=('big.png',))['big.png'].shape == (64, 96, 3)

  assert cli.main(['evaluate', '--workdir', workdir, '--eval', '--max-images', '4']) == 0
  record = json.loads((runs[0] / 'eval.json').read_text())
  assert record['step'] == 4 and record['eval/eval_mode'] == 1.0 and 'eval/fcn_class_iou' in record
  assert (
    cli.main(
      [
        'translate',
        '--workdir',
        workdir,
        '-o',
        str(tmp_path / 'x'),
        '--direction',
        'BtoA',
        str(tmp_path / '0.png'),
      ]
    )
    == 2
  )


def test_evaluate_writes_the_results_page(runs, capsys):
  """input | output | target of the scored test pairs, beside the scores eval.json holds."""
  workdir = runs[0]
  argv = ['evaluate', '--workdir', str(workdir), '--max-images', '4', '--page-images', '4']
  assert cli.main(argv) == 0  # default mode: dropout + each image's own batch statistics
  page = workdir / 'eval' / 'index.html'
  assert f'results page: {page}' in capsys.readouterr().out
  html = page.read_text(encoding='utf-8')
  refs = report.referenced_files(str(page))
  assert all(os.path.isfile(r) for r in refs), [r for r in refs if not os.path.isfile(r)]
  pngs = {os.path.basename(r) for r in refs if r.endswith('.png') and '/eval/images/' in r}
  want = {f'labels_photo_{i:04d}_{c}.png' for i in range(4) for c in ('input', 'output', 'target')}
  assert pngs == want == set(os.listdir(workdir / 'eval' / 'images'))
  assert 'pix2pix labels → photo (AtoB), dropout + batch statistics' in html
  for text in ('Input (labels)', 'Output (generated photo)', 'Target (real photo)', 'test_00003'):
    assert text in html, text
  record = json.loads((workdir / 'eval.json').read_text())
  assert record['eval/eval_mode'] == 0.0 and 'eval/fcn_class_iou' in record
  for key in (k for k in record if k.startswith('eval/')):
    assert key in html and f'>{report.format_score(record[key])}<' in html, key

  # The PNGs are the scored pairs: input and target are the test split's own pixels (PNG is
  # lossless), and the outputs' L1 to the targets is eval/l1 up to the uint8 rounding of the
  # outputs (at most half a level, 1/255 in [-1, 1] units, per pixel).
  cfg = inference.run_config(json.loads((workdir / 'config.json').read_text()))
  source = data.make_source(cfg.data, 'test')
  images = workdir / 'eval' / 'images'
  l1 = []
  for i in range(4):
    x, y = data.orient(cfg.data, *data.eval_pair(cfg.data, *source.pair(i)))
    got = {
      c: image_io.load_rgb(str(images / f'labels_photo_{i:04d}_{c}.png'))
      for c in 'input output target'.split()
    }
    np.testing.assert_array_equal(got['input'], x)
    np.testing.assert_array_equal(got['target'], y)
    l1.append(np.abs(image_io.to_float(got['output']) - image_io.to_float(y)).mean())
  assert abs(np.mean(l1) - record['eval/l1']) <= 1 / 255


def test_evaluate_fid_on_aligned_data_keyed_by_direction(runs, tmp_path, monkeypatch):
  """FID/KID on real (aligned AB) data is on by default: each direction's outputs against the
  real images of its own target half, keyed A2B or B2A, with seeded random Inception weights
  (the FID formula, a minute of sqrtm a call, is tested in tests/fid: a recorder stands in)."""
  import jax

  from jaxstyle.models import inception

  labels, photos, _ = synthetic.generate('test', 3, 32, seed=9)
  for i, (a, b) in enumerate(zip(labels, photos)):
    (tmp_path / 'ab' / 'test').mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([a, b], 1)).save(tmp_path / 'ab' / 'test' / f'{i}.png')
  inception_params, seen = random_inception_for_fid(monkeypatch, 5)
  apply = jax.jit(inception.FIDInceptionV3().apply)
  for direction, key, real in (('AtoB', 'A2B', photos), ('BtoA', 'B2A', labels)):
    run = tmp_path / direction
    shutil.copytree(runs[0], run)  # the trained run, its data section pointed at the AB folder
    config = json.loads((runs[0] / 'config.json').read_text())
    config['data'].update(source='aligned', root=str(tmp_path / 'ab'), direction=direction)
    (run / 'config.json').write_text(json.dumps(config))
    assert cli.main(['evaluate', '--workdir', str(run), '--seed', '2']) == 0
    record = json.loads((run / 'eval.json').read_text())
    assert record[f'eval/fid_{key}'] == len(seen) and f'eval/kid_{key}' in record
    assert not [k for k in record if k.startswith('eval/fid_') and k != f'eval/fid_{key}']
    assert record['fid_mode'] == 'pytorch-fid' and 'n = 3 < 2048' in record['fid_note']
    assert record['eval/dropout_seed'] == 2.0
    fake, got_real = seen[-1]
    # The second set is the real target half, through the Inception (error model as in
    # tests/cyclegan/test_evaluate.py: 47 convs deep, ≤ 1.8e-4 of the features' scale; the
    # other half or a missing /255 is off by O(1)).
    want = np.asarray(apply(inception_params, np.stack(real) / np.float32(255)))
    np.testing.assert_allclose(got_real, want, rtol=0, atol=2e-4 * np.abs(want).max())
    assert fake.shape == got_real.shape == (3, 2048) and np.abs(fake - got_real).max() > 0


def test_eval_flag_is_refused_for_other_runs(tmp_path):
  argv = ['evaluate', '--workdir', str(tmp_path), '--eval']
  assert cli.main(argv) == 2


def test_runlocal_trains_offline_and_the_l1_falls(tmp_path):
  """The runlocal preset as `jaxstyle train` runs it (8 fake devices here: 8 pairs a step)."""
  argv = ['train', '--config', SYNTHETIC + ':runlocal', '--workdir', str(tmp_path)]
  argv += ['--config.data.synthetic_size=64', '--config.progress=False']  # 48 steps
  assert cli.main(argv) == 0
  config, params, stats, step = inference.load_run(str(tmp_path))
  assert step == 48  # 64 pairs / 8 a step x 6 epochs
  trained, _ = evaluate.evaluate(config, params, stats, eval_mode=True)
  # The same networks at their initialisation (G's output ~ 0 gives L1 ~ mean |target|).
  import jax

  from jaxstyle.pix2pix import step as pix2pix_step

  cfg = inference.run_config(config)
  init = jax.device_get(pix2pix_step.init_state(cfg, jax.random.PRNGKey(cfg.seed), 32))
  before, _ = evaluate.evaluate(config, init['params'], init['batch_stats'], eval_mode=True)
  assert trained['eval/l1'] < 0.8 * before['eval/l1']
