"""One `--config.*` parser for every command, one coercion rule, one definition of every default."""

import ast
import glob
import importlib
import os
import subprocess
import sys

import pytest
from helpers import CYCLEGAN_SYNTHETIC, NST_BOOK, ROOT

from jaxstyle import cli, config_lib, main
from jaxstyle.cyclegan import presets as cyclegan_presets
from jaxstyle.nst import cli as nst_cli
from jaxstyle.nst import presets as nst_presets
from jaxstyle.tools import sweep

CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))
# Every task's presets module, plus networks.py (the model sections the tasks and the ports share).
PRESET_MODULES = {
  os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'jaxstyle', '*', 'presets.py'))
} | {os.path.join('jaxstyle', 'networks.py')}
TASKS = sorted(os.path.basename(os.path.dirname(p)) for p in PRESET_MODULES if 'presets' in p)


def _task_of_config_file(path):
  """configs/{task}_*.py (fastcut_* files are the cut task's)."""
  name = os.path.basename(path)
  return next(t for t in ('fast_style', 'fastcut', *TASKS) if name.startswith(t)).replace(
    'fastcut', 'cut'
  )


def flat(node, prefix=''):
  """{'a.b': value} for every leaf of a ConfigDict."""
  out = {}
  for key, value in node.items():
    if hasattr(value, 'items'):
      out.update(flat(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


stylize_config = nst_cli.config_from_argv


#### The coercion rule


@pytest.mark.parametrize(
  'text,current,want',
  [
    ('yes', False, True),
    ('On', False, True),
    ('1', True, True),
    ('off', True, False),
    ('0', True, False),
    ('NO', True, False),
    ('3', 1, 3),
    ('1e4', 1, 10000),
    ('-2', 0, -2),
    ('1e-3', 1.0, 1e-3),
    ('2', 1.0, 2.0),
    ('1,2', 'x', '1,2'),
    ('None', '', 'None'),
    ('3,4', (1, 2), (3, 4)),
    ('(5)', (1,), (5,)),
    ('[1, 2]', (1.0,), (1.0, 2.0)),
    ('relu1_1, relu2_1', ('block1_conv1',), ('relu1_1', 'relu2_1')),
    ('', (0, 1), ()),
    ('()', ('a',), ()),
    ('1,x', (), (1, 'x')),
    ("(1, 'x')", (), (1, 'x')),
    ('true,0', (False,), (True, False)),
    ('(1, 2)', None, (1, 2)),
    ('3.5', None, 3.5),
    ('hello', None, 'hello'),
  ],
)
def test_coerce_types_by_the_current_value(text, current, want):
  got = config_lib.coerce(text, current)
  assert got == want and type(got) is type(want)
  if isinstance(want, tuple):
    assert [type(v) for v in got] == [type(v) for v in want]


@pytest.mark.parametrize(
  'text,current,match',
  [
    ('2', False, 'boolean'),
    ('abc', 1, 'expected int'),
    ('1.5', 1, 'expected int'),
    ('x', 1.0, 'expected float'),
    ('1,x', (1,), 'expected int'),
    ('(True,)', (1.0,), 'not a float'),
    ('(1,', (1,), 'literal'),
  ],
)
def test_coerce_rejects_wrong_types(text, current, match):
  with pytest.raises(config_lib.OverrideError, match=match):
    config_lib.coerce(text, current, 'f')


def test_parse_arg_uses_the_same_rule():
  arg = config_lib.parse_arg(
    'runlocal=yes,n=1e3,lr=2,name=7', runlocal=False, n=1, lr=1.0, name='a'
  )
  assert (arg.runlocal, arg.n, arg.lr, arg.name) == (True, 1000, 2.0, '7')
  assert type(arg.n) is int and type(arg.lr) is float
  assert config_lib.parse_arg('runlocal', content='', runlocal=False).runlocal is True
  assert config_lib.parse_arg('x.jpg', content='', runlocal=False).content == 'x.jpg'
  with pytest.raises(config_lib.OverrideError, match='boolean'):
    config_lib.parse_arg('runlocal=maybe', runlocal=False)
  with pytest.raises(config_lib.OverrideError, match='did you mean runlocal'):
    config_lib.parse_arg('runlocl=1', content='', runlocal=False)
  with pytest.raises(config_lib.OverrideError, match='did you mean runlocal'):
    config_lib.parse_arg('runlokal', runlocal=False)  # was "runlocal: expected a boolean"
  with pytest.raises(config_lib.OverrideError, match='did you mean runlocal'):
    config_lib.parse_arg('runlokal', content='', runlocal=False)  # not content='runlokal'


#### One override path: train, stylize and sweep type a string the same way

NST_OVERRIDES = [
  '--config.loss.style_weight=1e3',
  '--config.optim.segments',
  '7',
  '--config.snapshots=no',
  '--config.loss.content_layers=block4_conv2,block5_conv2',
  '--config.strip_iters=0,2',
  '--config.loss.layer_weights=1,2,3,4,5',
  '--config.vgg.path=1e3',
  '--config.seed=12',
  '--config.image.resize=bilinear',
  '--config.loss.style_weights=(10, 100.0)',
]
NST_WANT = {
  'loss.style_weight': 1000.0,
  'optim.segments': 7,
  'snapshots': False,
  'loss.content_layers': ('block4_conv2', 'block5_conv2'),
  'strip_iters': (0, 2),
  'loss.layer_weights': (1, 2, 3, 4, 5),
  'vgg.path': '1e3',
  'seed': 12,
  'image.resize': 'bilinear',
  'loss.style_weights': (10, 100.0),
}


def _typed(config, keys):
  return {k: (v, type(v)) for k, v in flat(config).items() if k in keys}


def test_same_override_same_value_in_every_command():
  train = main.build_config(NST_BOOK, NST_OVERRIDES)
  stylize = stylize_config(['c.png', 's.png', '--config', NST_BOOK, *NST_OVERRIDES])
  swept = sweep.run_config(NST_BOOK, {}, NST_OVERRIDES)
  want = {k: (v, type(v)) for k, v in NST_WANT.items()}
  assert _typed(train, want) == want
  assert _typed(stylize, want) == want
  assert _typed(swept, want) == want
  assert train.is_locked  # train and sweep lock: a later typo cannot add a field


def test_cyclegan_overrides_in_train_and_sweep():
  spec = CYCLEGAN_SYNTHETIC + ':runlocal'
  extras = [
    '--config.optim.lr=1e-3',
    '--config.seed',
    '3',
    '--config.book_exact_d=true',
    '--config.model.generator=unet_book',
    '--config.data.image_size=32',
  ]
  want = {
    'optim.lr': 1e-3,
    'seed': 3,
    'book_exact_d': True,
    'model.generator': 'unet_book',
    'data.image_size': 32,
  }
  for config in (main.build_config(spec, extras), sweep.run_config(spec, {}, extras)):
    assert {k: v for k, v in flat(config).items() if k in want} == want
    assert type(config.seed) is int and type(config.optim.lr) is float
  # A sweep value goes through the command line and reads back unchanged (the sweep checks it).
  swept = sweep.run_config(spec, {'loss.lambda_id': 0.0, 'model.n_blocks': 2}, extras)
  assert (swept.loss.lambda_id, swept.model.n_blocks, swept.seed) == (0.0, 2, 3)


def test_typos_name_the_nearest_keys_in_every_command(capsys):
  with pytest.raises(config_lib.OverrideError, match='did you mean loss.style_weight'):
    main.build_config(NST_BOOK, ['--config.loss.style_wieght=1'])
  with pytest.raises(config_lib.OverrideError, match='did you mean loss.style_weight'):
    stylize_config(['c.png', 's.png', '--config.loss.style_wieght=1'])
  with pytest.raises(config_lib.OverrideError, match='did you mean loss.style_weight'):
    sweep.expand_sweep(NST_BOOK, ['--config.loss.style_wieght=1'])
  assert cli.main(['train', '--config', NST_BOOK, '--workdir', 'unused', '--config.sed=1']) == 2
  assert 'did you mean seed' in capsys.readouterr().err


def test_missing_values_and_stray_arguments_are_errors():
  for extras, match in (
    (['--config.seed'], 'needs a value'),
    (['--config.seed', '--config.init=noise'], 'needs a value'),
    (['--seed=1'], 'unrecognised argument'),
    (['--config.loss=1'], 'is a section'),
    (['--config.seed=x'], 'expected int'),
  ):
    with pytest.raises(config_lib.OverrideError, match=match):
      main.build_config(NST_BOOK, extras)


def test_apply_overrides_checks_keys_and_types():
  config = nst_presets.nst_base('', '')
  config.lock()
  config_lib.apply_overrides(config, {'loss.tv_weight': 0, 'optim.name': 'adam'})
  assert config.loss.tv_weight == 0.0 and config.optim.name == 'adam'
  with pytest.raises(config_lib.OverrideError, match='did you mean loss.tv_weight'):
    config_lib.apply_overrides(config, {'loss.tv_weigth': 1.0})
  with pytest.raises(config_lib.OverrideError, match='optim.segments'):
    config_lib.apply_overrides(config, {'optim.segments': 'ten'})


#### One definition of every default


def _preset_builds():
  """(name, config) for every preset builder and every config file, full and runlocal."""
  yield 'cyclegan_base', cyclegan_presets.cyclegan_base()
  yield 'nst_base', nst_presets.nst_base('c.png', 's.png')
  yield 'jcjohnson', nst_presets.jcjohnson('c.png', 's.png')
  for path in CONFIGS:
    for arg in ('', ':runlocal'):
      yield os.path.basename(path) + arg, config_lib.load_config(path + arg)


def test_no_preset_invents_or_drops_a_field():
  bases = {
    task: set(
      flat(
        getattr(importlib.import_module(f'jaxstyle.{task}.presets'), f'{task}_base')(
          *(('', '') if task == 'nst' else ())
        )
      )
    )
    for task in TASKS
  }
  assert {'cyclegan', 'nst', 'fast_style', 'adain', 'cut', 'pix2pix'} <= set(bases)
  names = []
  for name, config in _preset_builds():
    names.append(name)
    assert set(flat(config)) == bases[config.task], name
  assert {
    'nst_jcjohnson.py',
    'nst_book.py:runlocal',
    'cyclegan_reference.py',
    'fast_style_multi.py:runlocal',
  } <= set(names)
  base = cyclegan_presets.cyclegan_base()
  for section, built in (
    ('model', cyclegan_presets.model_config()),
    ('model', cyclegan_presets.reference_model(gen_filters=4)),
    ('data', cyclegan_presets.data_config(source='synthetic')),
  ):
    assert set(built.keys()) == set(base[section].keys())
  assert set(cyclegan_presets.REFERENCE_MODEL) <= set(base.model.keys())
  with pytest.raises(config_lib.OverrideError, match='did you mean gen_filters'):
    cyclegan_presets.model_config(gen_filter=4)


def test_jcjohnson_file_is_the_named_preset():
  from_file = config_lib.load_config(
    os.path.join(ROOT, 'configs', 'nst_jcjohnson.py') + ':content=c.png,style=s.png'
  )
  assert from_file.to_dict() == nst_presets.jcjohnson('c.png', 's.png').to_dict()
  # The reference model the junyanz ports and benches use is the reference config's model.
  reference = config_lib.load_config(os.path.join(ROOT, 'configs', 'cyclegan_reference.py'))
  assert reference.model.to_dict() == cyclegan_presets.reference_model().to_dict()


def _config_dict_calls(tree):
  for node in ast.walk(tree):
    if isinstance(node, ast.Call):
      func = node.func
      name = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
      if name.endswith('ConfigDict'):
        yield node


def test_only_the_presets_construct_configs_with_values():
  """Outside the presets a ConfigDict may only copy an existing value (`ConfigDict(c.to_dict())`)."""
  offenders = []
  for path in glob.glob(os.path.join(ROOT, 'jaxstyle', '**', '*.py'), recursive=True):
    rel = os.path.relpath(path, ROOT)
    if rel in PRESET_MODULES:
      continue
    for call in _config_dict_calls(ast.parse(open(path).read(), path)):
      parts = [n for arg in call.args for n in ast.walk(arg)]
      literal = any(isinstance(n, (ast.Constant, ast.Dict, ast.List, ast.Tuple)) for n in parts)
      if not call.args or call.keywords or literal:
        offenders.append(f'{rel}:{call.lineno}')
  assert not offenders, f'ConfigDicts built with values outside the presets: {offenders}'
  # The check does see the presets' own constructions.
  tree = ast.parse(open(os.path.join(ROOT, 'jaxstyle', 'nst', 'presets.py')).read())
  assert len(list(_config_dict_calls(tree))) >= 4


def test_config_files_import_only_config_lib_and_their_presets():
  for path in CONFIGS:
    task = _task_of_config_file(path)
    allowed = {'ml_collections', 'jaxstyle.config_lib', f'jaxstyle.{task}.presets'}
    for node in ast.walk(ast.parse(open(path).read(), path)):
      if isinstance(node, ast.Import):
        got = {a.name for a in node.names}
      elif isinstance(node, ast.ImportFrom):
        got = {
          f'{node.module}.{a.name}'
          if node.module == 'jaxstyle' or node.module.startswith('jaxstyle.')
          else node.module
          for a in node.names
        }
      else:
        continue
      assert got <= allowed, (path, got)


def test_presets_and_config_files_do_not_import_jax():
  code = (
    'import glob, sys\n'
    'from jaxstyle import config_lib\n'
    'import jaxstyle.cyclegan.presets, jaxstyle.nst.presets, jaxstyle.fast_style.presets\n'
    "for p in sorted(glob.glob('configs/*.py')):\n"
    "  config_lib.load_config(p + ':runlocal')\n"
    "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'flax'))\n"
    "print(len(glob.glob('configs/*.py')), bad)\n"
  )
  out = subprocess.run(
    [sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, check=True
  ).stdout.split()
  assert out == [str(len(CONFIGS)), '[]']
