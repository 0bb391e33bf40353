"""The AdaIN trainer: runlocal trains offline and the held-out loss falls, exact resume, 8 devices =
1 device, config errors (the input stream: test_adain_data.py).

One tiny run of the shipped `:runlocal` preset (16² crops of 24² images, 1 image per device on the
8 test devices, seeded random VGG19, embedded content and styles) is trained once per module,
through `jaxstyle train`; every test reads it. Random VGG weights make the pictures meaningless,
but the optimisation, data parallelism and resume are the real ones.
"""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from helpers import CONFIG_DIR, assert_trees_equal
from PIL import Image

from jaxstyle import checkpoint, cli, config_lib, parallel
from jaxstyle.adain import data, presets, train
from jaxstyle.adain import step as adain_step

pytestmark = pytest.mark.slow  # a trained run and a second compile of the step: CI only
CONFIG = str(CONFIG_DIR / 'adain.py') + ':runlocal'
STEPS = 4
OVERRIDES = {
  'vgg.source': 'random',
  'data.image_size': 16,
  'data.load_size': 24,
  'data.synthetic_size': 16,
  'style.synthetic_size': 8,
  'per_device_batch': 1,
  'total_steps': STEPS,
  'log_every': 1,
  'sample_every': STEPS,
  'num_samples': 4,
  'num_sample_styles': 3,
  'progress': False,
  'ckpt.every_steps': STEPS // 2,
}


def tiny_config(**overrides):
  c = config_lib.load_config(CONFIG)
  config_lib.apply_overrides(c, {**OVERRIDES, **overrides})
  return presets.validate(c)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """`straight`: the whole run through `jaxstyle train`; `resumed`: its copy cut back to the
  mid-run checkpoint (as if killed after that save), then trained to the end again."""
  root = tmp_path_factory.mktemp('adain')
  straight, resumed = str(root / 'straight'), str(root / 'resumed')
  argv = ['train', '--config', CONFIG, '--workdir', straight]
  assert cli.main(argv + [f'--config.{k}={v}' for k, v in OVERRIDES.items()]) == 0
  shutil.copytree(straight, resumed)
  shutil.rmtree(os.path.join(resumed, 'ckpt', str(STEPS)))
  last = train.train(tiny_config(), resumed)
  return {'straight': straight, 'resumed': resumed, 'last': last}


def test_resume_is_bit_identical(runs):
  _, a, step_a = checkpoint.load_run_with_step(runs['straight'])
  _, b, step_b = checkpoint.load_run_with_step(runs['resumed'])
  assert step_a == step_b == STEPS
  assert_trees_equal(a, b)


def test_runlocal_lowers_the_held_out_loss(runs):
  config = tiny_config()
  frozen = adain_step.frozen_inputs(config)
  eval_fn = adain_step.make_eval_fn(config)
  contents, styles = train.held_out(config)
  assert (len(contents), len(styles)) == (4, 3)
  init = jax.device_get(adain_step.init_state(config, jax.random.PRNGKey(config.seed)))
  _, before = train.evaluate(eval_fn, init['params']['decoder'], frozen, contents, styles)
  _, params, _ = checkpoint.load_run_with_step(runs['straight'])
  _, after = train.evaluate(eval_fn, params['decoder'], frozen, contents, styles)
  # The resumed run logged the same held-out evaluation at its last step.
  assert runs['last']['eval/loss'] == pytest.approx(after['eval/loss'], rel=1e-5)
  assert after['eval/loss'] < 0.8 * before['eval/loss'], (before, after)


def test_metrics_samples_and_config_are_written(runs):
  workdir = runs['straight']
  records = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
  train_records = [r for r in records if 'train/loss' in r]
  assert [r['step'] for r in train_records] == list(range(1, STEPS + 1))
  assert all(np.isfinite(r['train/loss']) for r in train_records)
  # The reference's decay, lr / (1 + 5e-5 i), logged with the lr of update i = step - 1.
  lr = [r['train/lr'] for r in train_records]
  np.testing.assert_allclose(lr, [1e-4 / (1 + 5e-5 * i) for i in range(STEPS)], rtol=1e-6)
  grid = np.asarray(Image.open(train.sample_path(workdir, STEPS)))
  # A header row of styles and 4 content rows; the content column and 3 styles.
  assert grid.shape[0] > grid.shape[1]
  saved = json.load(open(os.path.join(workdir, 'config.json')))
  assert saved['task'] == 'adain' and saved['loss']['style_weight'] == 10.0


def test_eight_devices_equal_one():
  """The same global batch of 8 on 8 devices (1 each) and on 1 device: the same loss and update.

  One step (Adam's first update is ±lr wherever the gradient is noise, so later steps compare
  noise), and the encoder pools by averaging: with max pooling the gradient is discontinuous at
  near-ties, which these tiny maps hit (docs/development.md, "Tolerances").
  """
  config = tiny_config(**{'vgg.pool': 'avg'})
  frozen = jax.device_get(adain_step.frozen_inputs(config))
  sources = (data.make_source(config.data, 'train'), data.make_style_source(config, 'train'))
  init = jax.device_get(adain_step.init_state(config, jax.random.PRNGKey(0)))
  batch = data.batch_at(config, sources, 3, 8)
  results = []
  for devices in (jax.devices(), jax.devices()[:1]):
    mesh = parallel.make_mesh(devices)
    specs = parallel.state_specs(init, ())
    state = parallel.place(init, parallel.shardings(mesh, specs))
    frozen_d = parallel.place(frozen, parallel.shardings(mesh, parallel.state_specs(frozen, ())))
    step_fn = parallel.compile_step(adain_step.make_train_step(config), mesh, specs, n_frozen=1)
    state, metrics = step_fn(state, parallel.global_batch_from_local(mesh, batch), frozen_d)
    results.append(
      (
        jax.device_get(state['params']['decoder']),
        float(metrics['train/loss']),
        jax.device_get(state['opt']['decoder'][0].mu),
      )
    )
  assert len(jax.devices()) == 8
  (p8, loss8, mu8), (p1, loss1, mu1) = results
  # Error model: the two programs compute the same sums in other orders. A float32 sum of n
  # terms is off by about sqrt(n)·u (u = 2^-24 ≈ 6e-8; Higham & Mary 2019) of the sum of its
  # terms' magnitudes; the loss passes ≤ 19 convs (encoder to relu4_1, decoder, encoder again) of
  # fan-in ≤ 4,608 (the decoder's first conv: 3·3·512), so ≤ 19·sqrt(4608)·u ≈ 8e-5 relative.
  assert loss8 == pytest.approx(loss1, rel=2e-4)
  # Gradients pass the same layers twice more (backward): ≤ 3× that, relative to the largest
  # first moment (elements near zero carry the error of the large terms they cancel). A missing
  # or doubled pmean is off by 1/8 or 2×.
  scale = max(float(np.abs(m).max()) for m in jax.tree.leaves(mu1))
  for a, b in zip(jax.tree.leaves(mu8), jax.tree.leaves(mu1)):
    np.testing.assert_allclose(a, b, rtol=0, atol=3e-4 * scale)
  # Adam's first step moves each param by lr·sign(g) (|m̂/sqrt(v̂)| = 1): where |g| is far above
  # its error (1e-2 of the largest, 30× the bound above) the two updates are the same step.
  for a, b, m in zip(jax.tree.leaves(p8), jax.tree.leaves(p1), jax.tree.leaves(mu1)):
    real = np.abs(m) >= 1e-2 * scale
    np.testing.assert_allclose(a[real], b[real], rtol=0, atol=1e-6)  # 1 % of a 1e-4 step


def test_train_rejects_bad_configs(tmp_path, capsys):
  base = ['train', '--config', CONFIG, '--workdir', str(tmp_path)]
  assert cli.main([*base, '--config.data.image_size=20']) == 2
  assert 'multiple of 8' in capsys.readouterr().err
  assert cli.main([*base, '--config.data.load_size=16']) == 2
  assert 'must be ≥ data.image_size=32' in capsys.readouterr().err
  assert cli.main([*base, '--config.style.source=folder']) == 2
  assert 'needs style.root' in capsys.readouterr().err
  missing = tmp_path / 'nowhere'
  assert cli.main([*base, '--config.style.source=folder', f'--config.style.root={missing}']) == 2
  assert 'nowhere' in capsys.readouterr().err
  # Offline (conftest) without VGG19 weights: what to do, in the trainer's terms.
  assert cli.main([*base, '--config.data.synthetic_size=4']) == 2
  err = capsys.readouterr().err
  assert '--config.vgg.path=PATH' in err and '--config.vgg.source=random' in err
