"""The fast-style trainer: learns, 8 devices = 1 device, exact resume, `stylize --model`, CLI errors.

One tiny conditional run (2 embedded styles, 16² crops, an 8-filter 1-block net, seeded random
VGG19) is trained once per module; every test reads it. Random VGG weights make the pictures
meaningless but the optimisation, data parallelism and resume are the real ones.
"""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from jaxstyle import checkpoint, cli, config_lib, parallel
from jaxstyle.fast_style import data, presets, train
from jaxstyle.fast_style import step as fs_step
from jaxstyle.fast_style.inference import FastStyleModel

# The fast tier's heaviest file (a trained run, 8 = 1 device, the CLI): CI runs it, `-m 'not slow'`
# skips it.
pytestmark = pytest.mark.slow
STEPS = 4


def tiny_config(**overrides):
  c = config_lib.load_config('configs/fast_style_multi.py:runlocal')
  c.styles = c.styles[:2]
  c.vgg.source = 'random'
  c.data.update(dict(image_size=16, synthetic_size=16))
  c.style_size = 16
  c.model.update(dict(filters=8, n_blocks=1))
  c.update(
    dict(
      per_device_batch=1,
      total_steps=STEPS,
      log_every=1,
      sample_every=STEPS,
      num_samples=4,
      progress=False,
    )
  )
  c.ckpt.every_steps = 2
  config_lib.apply_overrides(c, overrides)
  return presets.validate(c)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """`straight`: 4 steps in one go; `resumed`: its copy cut back to the step-2 checkpoint (as if
  killed after that save), then re-run to step 4."""
  root = tmp_path_factory.mktemp('fast_style')
  straight, resumed = str(root / 'straight'), str(root / 'resumed')
  last = train.train(tiny_config(), straight)
  shutil.copytree(straight, resumed)
  shutil.rmtree(os.path.join(resumed, 'ckpt', str(STEPS)))
  train.train(tiny_config(), resumed)
  return {'straight': straight, 'resumed': resumed, 'last': last}


def test_resume_is_bit_identical(runs):
  _, a, step_a = checkpoint.load_run_with_step(runs['straight'])
  _, b, step_b = checkpoint.load_run_with_step(runs['resumed'])
  assert step_a == step_b == STEPS
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


def test_training_lowers_the_held_out_perceptual_loss(runs):
  config = tiny_config()
  vgg_params, prep = fs_step.load_vgg(config)
  frozen = fs_step.frozen_inputs(
    config, vgg_params, prep, data.load_styles(config.styles, config.style_size)
  )
  eval_fn = fs_step.make_eval_fn(config, prep)
  held = train._held_out(config)
  assert len(held) == 4
  init = jax.device_get(fs_step.init_state(config, jax.random.PRNGKey(config.seed)))
  _, before = train.evaluate(eval_fn, init['params']['net'], frozen, held, 2)
  _, params, _ = checkpoint.load_run_with_step(runs['straight'])
  _, after = train.evaluate(eval_fn, params['net'], frozen, held, 2)
  # The trainer logged the same held-out evaluation at its last step.
  assert runs['last']['eval/loss'] == pytest.approx(after['eval/loss'], rel=1e-5)
  assert after['eval/loss'] < 0.8 * before['eval/loss'], (before, after)


def test_metrics_samples_and_config_are_written(runs):
  workdir = runs['straight']
  records = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
  train_steps = [r['step'] for r in records if 'train/loss' in r]
  assert train_steps == list(range(1, STEPS + 1))
  assert all(np.isfinite(r['train/loss']) for r in records if 'train/loss' in r)
  assert any('eval/loss' in r for r in records)
  grid = np.asarray(Image.open(train.sample_path(workdir, STEPS)))
  assert grid.ndim == 3 and grid.shape[1] > grid.shape[0] / 2  # 3 columns: content + 2 styles
  saved = json.load(open(os.path.join(workdir, 'config.json')))
  assert saved['task'] == 'fast_style' and saved['model']['conditional'] is True


def test_eight_devices_equal_one():
  """The same global batch of 8 on 8 devices (1 each) and on 1 device: the same loss and update.

  One step: Adam's first update is ±lr wherever the gradient is noise, so later steps compare
  noise. The loss network pools by averaging here. With max pooling (the preset's) the gradient is
  discontinuous at near-ties: on these 16² crops VGG19's last pools see 2×2 windows, so a rounding
  difference in the forward pass (batch 1 and batch 8 reduce instance-norm statistics and convs in
  other orders, and the orders differ between AVX2 and AVX-512 kernels) can send a whole channel's
  gradient to another pixel: no rounding error model bounds that (docs/development.md, "Tolerances").
  Max pooling's data-parallel path is the same step code with another pooling op.
  """
  config = tiny_config(**{'vgg.pool': 'avg'})
  vgg_params, prep = fs_step.load_vgg(config)
  frozen = jax.device_get(
    fs_step.frozen_inputs(
      config, vgg_params, prep, data.load_styles(config.styles, config.style_size)
    )
  )
  source = data.make_source(config.data, 'train')
  init = jax.device_get(fs_step.init_state(config, jax.random.PRNGKey(0)))
  batch = data.batch_at(config.data, (source, 2), 3, 8)
  results = []
  for devices in (jax.devices(), jax.devices()[:1]):
    mesh = parallel.make_mesh(devices)
    specs = parallel.state_specs(init, ())
    state = parallel.place(init, parallel.shardings(mesh, specs))
    frozen_d = parallel.place(frozen, parallel.shardings(mesh, parallel.state_specs(frozen, ())))
    step_fn = parallel.compile_step(fs_step.make_train_step(config, prep), mesh, specs, n_frozen=1)
    state, metrics = step_fn(state, parallel.global_batch_from_local(mesh, batch), frozen_d)
    results.append(
      (
        jax.device_get(state['params']),
        float(metrics['train/loss']),
        jax.device_get(state['opt']['net'][0].mu),
      )
    )
  assert len(jax.devices()) == 8
  (p8, loss8, mu8), (p1, loss1, mu1) = results
  # Error model: the two programs compute the same sums in other orders. A float32 sum of n terms
  # is off by about sqrt(n)·u (u = 2^-24 ≈ 6e-8, rounding errors as independent draws; Higham &
  # Mary 2019) relative to the sum of its terms' magnitudes; the loss is a sum over ≤ 16 layers of
  # convs with fan-in ≤ 4,608 (VGG19's 3·3·512), so ≤ 16·sqrt(4608)·u ≈ 7e-5 relative.
  assert loss8 == pytest.approx(loss1, rel=1e-4)
  # A gradient reaching the style network's first layer has passed ~64 conv layers: VGG19 forward
  # and backward (2 x 16) and the style network forward and backward (2 x ~16), fan-in <= 4,608, so
  # <= 64·sqrt(4608)·u ≈ 2.6e-4 relative to its terms' magnitudes; instance norm's backward divides
  # by each channel's σ, small on these flat 16² crops, which scales that up, hence 1e-3 of the
  # largest first moment (elements near zero carry the error of the large terms they cancel). The
  # CPU conv paths pick other kernel-gradient forms at batch 1 and 8 (fast_conv.MIN_GEMM_COUT) and
  # AVX-512 rounds differently from AVX2: the 9x9 stem's edge taps differed by 3.3e-4 of the scale
  # there. A missing or doubled pmean is off by 1/8 or 2×, far outside.
  scale = max(float(np.abs(m).max()) for m in jax.tree.leaves(mu1))
  for a, b in zip(jax.tree.leaves(mu8), jax.tree.leaves(mu1)):  # the pmean-ed gradients agree
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-3 * scale)
  # Some parameters have an exactly zero gradient: conv biases followed by instance norm, and the
  # residual stream's norm shifts (every later layer that sees them normalises them away). Their
  # float noise depends on the summation order, and Adam turns any sign into a ±lr step, so they
  # are left out of the parameter check (elements whose Adam first moment, (1 - b1)·gradient, is
  # below 1e-2 of the largest, 10× the first moments' error bound above).
  checked = 0
  for path, x in jax.tree_util.tree_leaves_with_path(p8):
    real = np.abs(_at(mu1, path[1:])) >= 1e-2 * scale  # mu has no 'net' level
    np.testing.assert_allclose(
      x[real],
      _at(p1, path)[real],
      rtol=1e-3,
      atol=1e-5,  # 1 % of a step
      err_msg=jax.tree_util.keystr(path),
    )
    checked += int(real.sum())
  assert checked > 0.1 * sum(m.size for m in jax.tree.leaves(mu1))


def _at(tree, path):
  for key in path:
    tree = tree[key.key]
  return tree


def test_batches_are_a_function_of_step():
  config = tiny_config()
  source = data.make_source(config.data, 'train')
  a = data.batch_at(config.data, (source, 2), 5, 8)
  halves = [data.batch_at(config.data, (source, 2), 5, 8, p, 2) for p in range(2)]
  np.testing.assert_array_equal(a['content'], np.concatenate([h['content'] for h in halves]))
  np.testing.assert_array_equal(a['style'], [(5 * 8 + j) % 2 for j in range(8)])
  with data.make_stream(config.data, source, 2, 5, 8, 0, 1) as stream:
    np.testing.assert_array_equal(next(stream)['content'], a['content'])


def test_one_hot_style_equals_the_style_id(runs):
  """Inference's one-hot weight vector == the int id the trainer feeds; any size via pad/crop."""
  model = FastStyleModel.from_workdir(runs['straight'])
  img = (np.random.RandomState(0).rand(21, 30, 3) * 255).astype(np.uint8)  # not a multiple of 4
  one_hot = model.stylize(img, model.style_weights(style=1))
  padded = np.pad(img[None].astype(np.float32), ((0, 0), (0, 3), (0, 2), (0, 0)), 'reflect')
  by_id = model.net.apply({'params': model.params}, padded, np.asarray([1], np.int32))
  assert one_hot.shape == img.shape
  np.testing.assert_array_equal(one_hot, np.clip(np.rint(np.asarray(by_id)[0, :21, :30]), 0, 255))
  mixed = model.stylize(img, model.style_weights(mix=(0.5, 0.5)))
  assert not np.array_equal(mixed, one_hot)


def test_stylize_model_command(runs, tmp_path, capsys):
  images = tmp_path / 'in'
  images.mkdir()
  rng = np.random.RandomState(1)
  for name, shape in (('a.png', (20, 28, 3)), ('b.jpg', (17, 23, 3))):
    Image.fromarray((rng.rand(*shape) * 255).astype(np.uint8)).save(images / name)
  (images / 'notes.png').write_text('not an image')
  out = tmp_path / 'out.png'
  assert (
    cli.main(
      [
        'stylize',
        '--model',
        runs['straight'],
        str(images / 'a.png'),
        '-o',
        str(out),
        '--style-mix',
        '1,3',
        '--no-progress',
      ]
    )
    == 0
  )
  assert np.asarray(Image.open(out)).shape == (20, 28, 3)
  assert (
    cli.main(
      [
        'stylize',
        '--model',
        runs['straight'],
        str(images),
        '-o',
        str(tmp_path / 'folder'),
        '--style',
        '1',
        '--no-progress',
      ]
    )
    == 0
  )
  written = sorted(p.name for p in (tmp_path / 'folder').iterdir())  # -o mirrors the one folder
  assert written == ['a.png', 'b.png']
  assert 'stylized 2, skipped 1' in capsys.readouterr().out


@pytest.mark.parametrize(
  'argv, message',
  [
    (['--style', '5'], 'out of range: this network holds 2 styles'),
    (['--style-mix', '1,2,3'], 'needs 2 non-negative weights'),
    (['--style', '0', '--style-mix', '1,1'], 'not both'),
    (['--style-weight', '3'], '--style-weight set the optimisation NST'),
  ],
)
def test_stylize_model_errors(runs, tmp_path, capsys, argv, message):
  img = tmp_path / 'a.png'
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
  assert cli.main(['stylize', '--model', runs['straight'], str(img), '--no-progress', *argv]) == 2
  assert message in capsys.readouterr().err


def test_stylize_errors_without_a_run(tmp_path, capsys):
  assert cli.main(['stylize', '--model', str(tmp_path / 'nope'), 'a.png']) == 2
  assert 'is not a folder' in capsys.readouterr().err
  assert cli.main(['stylize', 'a.png', '--style', '1']) == 2
  assert 'need --model RUN' in capsys.readouterr().err


def test_train_rejects_bad_configs(tmp_path, capsys):
  base = ['train', '--config', 'configs/fast_style_johnson.py:runlocal', '--workdir', str(tmp_path)]
  assert cli.main([*base, '--config.styles=a.jpg,b.jpg']) == 2
  assert 'need a conditional network' in capsys.readouterr().err
  assert cli.main([*base, f'--config.styles={tmp_path / "missing.jpg"}']) == 2
  assert 'missing.jpg' in capsys.readouterr().err
  assert cli.main([*base, '--config.styles=synthetic:plaid']) == 2
  assert 'unknown embedded styles' in capsys.readouterr().err
  assert cli.main([*base, '--config.data.image_size=30']) == 2
  assert 'multiple of 4' in capsys.readouterr().err
  # Offline (conftest) without VGG19 weights: what to do, in the trainer's terms.
  assert cli.main([*base, '--config.data.synthetic_size=4', '--config.num_samples=1']) == 2
  err = capsys.readouterr().err
  assert '--config.vgg.path=PATH' in err and '--config.vgg.source=random' in err


def test_stylize_video_round_trip(runs, tmp_path, capsys):
  """`--video`: every frame of a clip the test writes goes through the net, at the clip's fps."""
  from jaxstyle.fast_style import video

  yy, xx = np.mgrid[0:24, 0:32]
  frames = [
    np.stack([(xx * 8 + 20 * t) % 256, yy * 10, 0 * xx + 128], -1).astype(np.uint8)
    for t in range(5)
  ]
  clip, out = str(tmp_path / 'in.mp4'), str(tmp_path / 'out.mp4')
  video.write_video(clip, frames, fps=10)
  assert (
    cli.main(
      [
        'stylize',
        '--model',
        runs['straight'],
        '--video',
        clip,
        '-o',
        out,
        '--style',
        '1',
        '--no-progress',
      ]
    )
    == 0
  )
  assert '5 frames of 32x24' in capsys.readouterr().out
  info = video.probe(out)
  assert (info.n_frames, info.width, info.height, info.fps) == (5, 32, 24, 10.0)
  model = FastStyleModel.from_workdir(runs['straight'])
  decoded = list(video.iter_frames(clip))
  got = list(video.iter_frames(out))

  expected = [model.stylize(f, model.style_weights(style=1)) for f in decoded]
  error = lambda pairs: np.mean([np.abs(g.astype(float) - e).mean() for g, e in pairs])
  # H.264 4:2:0 is lossy, more so on these noisy random-VGG outputs; frames out of order are far.
  in_order, reversed_order = error(zip(got, expected)), error(zip(got, expected[::-1]))
  assert in_order < 0.5 * reversed_order, (in_order, reversed_order)
  assert cli.main(['stylize', '--model', runs['straight'], '--video', clip]) == 2
  assert 'needs -o OUT.mp4' in capsys.readouterr().err
