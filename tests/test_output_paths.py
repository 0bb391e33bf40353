"""Outputs go where the user said: `-o`/`--out`/`--save-stats`/`--json` name the result exactly.

Every command that writes a result is run from an empty working directory with its output flag
set to a relative path under a folder that does not exist yet (`sub/dir/...`), plus `--workdir W`
where the command has one. The result must be exactly there (folders created) and nothing
result-like anywhere else: not in W under the output's name, not in the working directory. A
workdir holds only a run's snapshots, metrics and progress strip.
"""

import json
import os
import shlex

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_run
from helpers import ROOT
from PIL import Image

from jaxstyle import checkpoint, cli, config_lib, metrics

REPO = str(ROOT)

# Three shallow VGG layers and one 1-iteration segment at 16 px: the NST runs compile in seconds.
NST_FLAGS = [
  '--weights-source',
  'random',
  '--max-side',
  '16',
  '--iterations',
  '1',
  '--segment-iters',
  '1',
  '--no-progress',
  '--content-layers',
  'block2_conv1',
  '--style-layers',
  'block1_conv1,block2_conv1',
]


def _files(root) -> set[str]:
  """Every file under `root`, relative to it (the whole tree, so strays show up)."""
  return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def _run(argv, capsys):
  rc = cli.main(argv)
  captured = capsys.readouterr()
  assert rc == 0, captured.err
  return captured.out


@pytest.fixture()
def cwd(tmp_path, monkeypatch):
  """An empty working directory (inputs live elsewhere), so strays written to '.' are visible."""
  work = tmp_path / 'cwd'
  work.mkdir()
  monkeypatch.chdir(work)
  return work


@pytest.fixture(scope='module')
def images(tmp_path_factory):
  """Content/style PNGs and a folder of two images (one in a sub-folder), outside any cwd."""
  root = tmp_path_factory.mktemp('inputs')
  (root / 'photos' / 'sub').mkdir(parents=True)
  yy, xx = np.mgrid[0:20, 0:24]
  ramp = np.stack([10 * xx, 12 * yy, 0 * xx + 128], -1).astype(np.uint8)
  Image.fromarray(ramp).save(root / 'content.png')
  Image.fromarray(tiny_run.noise((16, 16, 3), 0)).save(root / 'style.png')
  Image.fromarray(tiny_run.noise((13, 14, 3), 1)).save(root / 'photos' / 'a.png')
  Image.fromarray(tiny_run.noise((15, 16, 3), 2)).save(root / 'photos' / 'sub' / 'b.jpg')
  (root / 'flat').mkdir()
  for i in range(3):
    Image.fromarray(tiny_run.noise((24, 20, 3), 3 + i)).save(root / 'flat' / f'{i}.png')
  return root


#### stylize (optimisation NST)

SLOW = pytest.mark.slow  # each NST run compiles its own segment (~10 s on 2 cores)


@pytest.mark.parametrize(
  'case',
  [
    'workdir',
    pytest.param('no-workdir', marks=SLOW),
    pytest.param('default-in-workdir', marks=SLOW),
    pytest.param('sweep', marks=SLOW),
  ],
)
def test_stylize_nst(case, images, cwd, capsys):
  argv = ['stylize', str(images / 'content.png'), str(images / 'style.png'), *NST_FLAGS]
  if case != 'default-in-workdir':
    argv += ['-o', 'sub/dir/x.png']
  if case in ('workdir', 'default-in-workdir', 'sweep'):
    argv += ['--workdir', 'W']
  if case == 'sweep':
    argv += ['--style-weights', '1,10', '--sweep', 'sequential']
  out = _run(argv, capsys)
  files = _files(cwd)
  if case == 'workdir':  # the result at -o; the run's snapshots, strip and metrics in W
    assert 'sub/dir/x.png' in files and 'W/x.png' not in files
    assert {'W/x_at_iteration_0.png', 'W/x_progress.png', 'W/metrics.jsonl'} <= files
    assert {f for f in files if not f.startswith('W/')} == {'sub/dir/x.png'}
    assert f'wrote {cwd / "sub/dir/x.png"}' in out
  elif case == 'no-workdir':  # no workdir: snapshots and strip beside the result
    assert files == {'sub/dir/x.png', 'sub/dir/x_at_iteration_0.png', 'sub/dir/x_progress.png'}
  elif case == 'default-in-workdir':  # no -o: the documented default, stylized.png in the workdir
    assert 'W/stylized.png' in files and all(f.startswith('W/') for f in files)
  else:  # a sweep's members beside the -o path, one per style weight
    assert {f for f in files if not f.startswith('W/')} == {
      'sub/dir/x_sw1.png',
      'sub/dir/x_sw10.png',
    }
    assert {'W/x_progress.png', 'W/x_sw1_at_iteration_0.png'} <= files
  for path in files:
    if path.endswith('.png'):
      assert Image.open(cwd / path).size[0] > 0


@SLOW
def test_nst_train_keeps_its_result_in_the_workdir(images, tmp_path, monkeypatch):
  """`jaxstyle train` with an NST config: the config's relative output lives in the workdir."""
  from jaxstyle.nst import presets, stylize

  monkeypatch.chdir(tmp_path)
  c = presets.jcjohnson(str(images / 'content.png'), str(images / 'style.png'))
  c.vgg.source, c.image.max_side, c.output = 'random', 16, 'out/x.png'
  c.loss.content_layers, c.loss.style_layers = ('block2_conv1',), ('block1_conv1',)
  c.optim.segments, c.optim.segment_iters, c.progress, c.snapshots = 1, 1, False, False
  stylize.run_config(c, 'W')
  files = _files(tmp_path)
  assert {'W/out/x.png', 'W/x_progress.png', 'W/metrics.jsonl', 'W/config.json'} <= files
  assert all(f.startswith('W/') for f in files) and not os.path.exists(tmp_path / 'out')


#### stylize --model (fast style): files, folders, video


@pytest.fixture(scope='module')
def fast_run(tmp_path_factory):
  """A two-style conditional fast-style run at random init (config.json + one checkpoint): what
  `stylize --model` and the style figures read, without the cost of training."""
  from jaxstyle.fast_style import presets
  from jaxstyle.fast_style import step as fs_step

  c = config_lib.load_config(os.path.join(REPO, 'configs', 'fast_style_multi.py') + ':runlocal')
  c.styles = c.styles[:2]
  c.vgg.source = 'random'
  c.model.filters, c.model.n_blocks = 4, 1
  presets.validate(c)
  net = fs_step.make_net(c)
  shapes = jax.eval_shape(
    lambda: net.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)), jnp.ones((1, 2)) / 2)
  )['params']
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: rng.normal(0, 0.1, s.shape).astype(np.float32), shapes)
  run = str(tmp_path_factory.mktemp('fast_run'))
  metrics.write_config(run, c, {})
  mngr = checkpoint.make_manager(run)
  checkpoint.save(mngr, 2, {'step': np.int32(2), 'params': {'net': params}}, force=True)
  checkpoint.close(mngr)
  return run


@pytest.mark.parametrize(
  'inputs, out, want',
  [
    (['content.png'], 'sub/dir/x.png', {'sub/dir/x.png'}),
    (['photos'], 'sub/dir/styled', {'sub/dir/styled/a.png', 'sub/dir/styled/sub/b.png'}),
    (
      ['photos', 'content.png'],
      'sub/dir/styled',
      {
        'sub/dir/styled/photos/a.png',
        'sub/dir/styled/photos/sub/b.png',
        'sub/dir/styled/content.png',
      },
    ),
  ],
)
def test_stylize_model(fast_run, images, cwd, capsys, inputs, out, want):
  _run(
    [
      'stylize',
      '--model',
      fast_run,
      *[str(images / i) for i in inputs],
      '-o',
      out,
      '--style',
      '1',
      '--no-progress',
    ],
    capsys,
  )
  assert _files(cwd) == want
  assert not any(f.endswith('.png') for f in _files(fast_run))


def test_stylize_model_refuses_a_workdir(fast_run, images, cwd, capsys):
  """A --model run has no snapshots or metrics: --workdir would be silently ignored, so it is an
  error, before anything is written."""
  assert (
    cli.main(
      ['stylize', '--model', fast_run, str(images / 'content.png'), '-o', 'x.png', '--workdir', 'W']
    )
    == 2
  )
  assert '--workdir' in capsys.readouterr().err and _files(cwd) == set()


def test_stylize_video(fast_run, images, cwd, capsys):
  pytest.importorskip('imageio_ffmpeg')
  from jaxstyle.fast_style import video

  yy, xx = np.mgrid[0:16, 0:24]
  frames = [
    np.stack([(xx * 8 + 20 * t) % 256, yy * 10, 0 * xx + 128], -1).astype(np.uint8)
    for t in range(3)
  ]
  clip = str(images / 'clip.mp4')
  video.write_video(clip, frames, fps=10)
  _run(
    ['stylize', '--model', fast_run, '--video', clip, '-o', 'sub/dir/x.mp4', '--no-progress'],
    capsys,
  )
  assert _files(cwd) == {'sub/dir/x.mp4'}
  assert video.probe(str(cwd / 'sub/dir/x.mp4')).n_frames == 3


#### translate


@pytest.fixture(scope='module')
def cyclegan_run(tmp_path_factory):
  config, _, params = tiny_run.small_run()
  return str(tiny_run.write_run(tmp_path_factory.mktemp('cg') / 'run', config, params))


@pytest.mark.parametrize(
  'inputs, want',
  [
    (['content.png'], {'sub/dir/out/content.png'}),
    (['photos'], {'sub/dir/out/a.png', 'sub/dir/out/sub/b.png'}),  # one folder: --out is its mirror
    (
      ['photos', 'style.png'],
      {'sub/dir/out/photos/a.png', 'sub/dir/out/photos/sub/b.png', 'sub/dir/out/style.png'},
    ),
  ],
)
def test_translate(cyclegan_run, images, cwd, capsys, inputs, want):
  before = _files(cyclegan_run)
  _run(
    [
      'translate',
      '--workdir',
      cyclegan_run,
      '--out',
      'sub/dir/out',
      *[str(images / i) for i in inputs],
    ],
    capsys,
  )
  assert _files(cwd) == want
  assert _files(cyclegan_run) == before  # the run's --workdir is only read


#### figure (every figure)


def _png(path, colour, size=(32, 48)):
  img = np.zeros((*size, 3), np.uint8) + np.asarray(colour, np.uint8)
  img[: size[0] // 4] = 255
  Image.fromarray(img).save(path)


@pytest.fixture(scope='module')
def figure_runs(tmp_path_factory):
  """Fabricated run outputs (as tests/tools/test_figures.py): two CycleGAN runs and NST snapshots."""
  base = tmp_path_factory.mktemp('fig_runs')
  for name in ('r0', 'r1'):
    run = base / 'sweep' / name
    (run / 'samples').mkdir(parents=True)
    for step, colour in ((0, (255, 0, 0)), (10, (0, 255, 0))):
      _png(run / 'samples' / f'step_{step:06d}.png', colour)
    (run / 'metrics.jsonl').write_text(
      ''.join(json.dumps({'step': s, 'train/loss_G': 5.0 - s / 10}) + '\n' for s in (0, 10))
    )
  nst = base / 'nst'
  nst.mkdir()
  for i in range(2):
    _png(nst / f'out_at_iteration_{i}.png', (0, 60 * i, 200))
  return {'run': str(base / 'sweep' / 'r0'), 'base': str(base / 'sweep'), 'nst': str(nst)}


@pytest.mark.parametrize(
  'figure', ['5-8', '5-9', '5-12', '5-13', '5-18', 'loss', 'style-grid', 'style-mix']
)
def test_figure(figure, figure_runs, fast_run, images, cwd, capsys):
  workdir = {
    '5-9': figure_runs['base'],
    '5-18': figure_runs['nst'],
    'style-grid': fast_run,
    'style-mix': fast_run,
  }.get(figure, figure_runs['run'])
  extra = {
    'style-grid': ['--images', str(images / 'content.png'), '--size', '16'],
    'style-mix': ['--image', str(images / 'content.png'), '--size', '16', '--steps', '3'],
  }
  before = _files(workdir)
  out = _run(
    ['figure', figure, '--workdir', workdir, '-o', 'sub/dir/x.png', *extra.get(figure, [])], capsys
  )
  assert _files(cwd) == {'sub/dir/x.png'}
  assert _files(workdir) == before  # not RUN/figures/, the default without -o
  assert out.strip().splitlines()[-1] == 'sub/dir/x.png'
  assert Image.open(cwd / 'sub/dir/x.png').size[0] > 16


#### fid: --json and --save-stats


def test_fid_json(tmp_path, cwd, capsys):
  rng = np.random.default_rng(0)
  for name in ('a', 'b'):  # small statistics files: FID takes any dimension, no Inception needed
    x = rng.normal(size=(20, 6))
    np.savez(tmp_path / f'{name}.npz', mu=x.mean(0), sigma=np.cov(x, rowvar=False))
  _run(['fid', str(tmp_path / 'a.npz'), str(tmp_path / 'b.npz'), '--json', 'sub/dir/s'], capsys)
  assert _files(cwd) == {'sub/dir/s'}
  assert json.loads((cwd / 'sub/dir/s').read_text())['fid'] > 0


@pytest.mark.slow  # compiles the Inception trunk once (~10 s on 2 cores)
def test_fid_save_stats(images, cwd, capsys, monkeypatch):
  from random_weights import random_state_dict  # tests/fixtures is on pytest's pythonpath

  from jaxstyle.fid import weights as fid_weights
  from jaxstyle.models import inception

  params = inception.params_from_state_dict(
    random_state_dict(list(inception.torch_shapes().items()), 7)
  )
  monkeypatch.setattr(fid_weights, 'load_params', lambda path=None, **_: params)
  # No .npz suffix on purpose: numpy's savez would append one; the path is used as given.
  _run(['fid', str(images / 'flat'), '--save-stats', 'sub/dir/stats', '--batch-size', '2'], capsys)
  assert _files(cwd) == {'sub/dir/stats'}
  with np.load(cwd / 'sub/dir/stats') as f:
    assert f['mu'].shape == (2048,) and f['features'].shape == (3, 2048)


#### port-weights


def test_port_weights(cwd, capsys):
  src = os.path.join(REPO, 'tests', 'fixtures', 'pth', 'G.pth')
  _run(['port-weights', src, '-o', 'sub/dir/G', '--kind', 'junyanz-G'], capsys)
  assert 'sub/dir/G/jaxstyle.json' in _files(cwd)
  assert all(f.startswith('sub/dir/G/') for f in _files(cwd))
  _, meta = checkpoint.load_params(str(cwd / 'sub/dir/G'))
  assert meta['kind'] == 'junyanz-G'


#### Commands without an output flag: results in their workdir, or nothing written


def test_evaluate_writes_only_into_its_run(cyclegan_run, cwd, capsys):
  """`evaluate` has no -o: eval.json and the results page eval/ live in the run's --workdir."""
  before = _files(cyclegan_run)
  _run(
    [
      'evaluate',
      '--workdir',
      cyclegan_run,
      '--max-images',
      '2',
      '--batch-size',
      '2',
      '--fid',
      'off',
    ],
    capsys,
  )
  new = _files(cyclegan_run) - before
  assert {'eval.json', 'eval/index.html'} <= new and all(
    f == 'eval.json' or f.startswith('eval/') for f in new
  )
  assert _files(cwd) == set()


def test_sweep_runs_go_under_the_base_workdir(tmp_path, cwd, capsys):
  """`sweep --workdir BASE`: each run's --workdir is BASE/<name>; the dry run writes nothing."""
  config = tmp_path / 'toy.py'
  config.write_text(
    'from jaxstyle.cyclegan import presets\n'
    'def get_config(arg=None):\n  return presets.cyclegan_base()\n'
    "def get_sweep():\n  return [{'loss.lambda_id': w} for w in (0.0, 2.5)]\n"
  )
  out = _run(['sweep', '--config', str(config), '--workdir', 'sub/dir/base'], capsys)
  argvs = [shlex.split(line) for line in out.splitlines() if '--workdir' in line]
  workdirs = sorted(a[a.index('--workdir') + 1] for a in argvs)
  assert workdirs == ['sub/dir/base/loss.lambda_id=0.0', 'sub/dir/base/loss.lambda_id=2.5']
  assert _files(cwd) == set()


def test_demo_writes_nothing(cwd, capsys):
  out = _run(
    ['demo', '--only', 'D patchgan_book f32', '--size', '32', '--fast-init', '--repeats', '1'],
    capsys,
  )
  assert 'D patchgan_book f32' in out and _files(cwd) == set()
