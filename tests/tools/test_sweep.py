"""`jaxstyle sweep`: get_sweep() expansion, run naming, dry runs, local execution, summary."""

import json
import os
import shlex
import sys
import textwrap

import pytest
from helpers import CYCLEGAN_SYNTHETIC as TRAINER

from jaxstyle import cli, config_lib
from jaxstyle.tools import sweep

CONFIG = textwrap.dedent("""
    import ml_collections
    from jaxstyle import config_lib
    from jaxstyle.cyclegan import presets

    def get_config(arg=None):
      arg = config_lib.parse_arg(arg, runlocal=False)
      c = presets.cyclegan_base()
      c.total_steps = 2 if arg.runlocal else 1000
      return c

    def get_sweep():
      return [{'loss.lambda_id': w} for w in (0.0, 2.5)] + [
          {'data.name': 'apple book/x', 'optim.lr': 1e-4}, {}]
""")


@pytest.fixture(scope='module')
def config_path(tmp_path_factory):
  path = tmp_path_factory.mktemp('cfg') / 'toy.py'
  path.write_text(CONFIG)
  return str(path)


def test_expand_and_names(config_path):
  runs = sweep.expand_sweep(config_path + ':runlocal')
  assert [name for _, name in runs] == [
    'loss.lambda_id=0.0',
    'loss.lambda_id=2.5',
    'data.name=apple_book_x,optim.lr=0.0001',
    'default',
  ]
  assert runs[2][0] == {'data.name': 'apple book/x', 'optim.lr': 1e-4}
  assert sweep.run_name({'b': 1, 'a': (1, 2)}) == 'a=1x2,b=1'


def test_bad_sweeps_fail_before_any_run(tmp_path):
  bad = tmp_path / 'bad.py'
  bad.write_text(CONFIG.replace("'loss.lambda_id': w", "'loss.lambda_idt': w"))
  with pytest.raises(config_lib.OverrideError, match='lambda_idt.*did you mean loss.lambda_id'):
    sweep.expand_sweep(str(bad))
  dup = tmp_path / 'dup.py'
  dup.write_text(CONFIG.replace('(0.0, 2.5)', '(1.0, 1.0)'))
  with pytest.raises(ValueError, match='duplicate'):
    sweep.expand_sweep(str(dup))
  none = tmp_path / 'none.py'
  none.write_text(CONFIG.split('def get_sweep')[0])
  with pytest.raises(ValueError, match='get_sweep'):
    sweep.expand_sweep(str(none))


def test_dry_run_local(config_path, capsys):
  assert (
    cli.main(['sweep', '--config', config_path, '--workdir', 'runs/idt', '--config.total_steps=3'])
    == 0
  )
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == (
    f'jaxstyle train --config {config_path} --workdir runs/idt/loss.lambda_id=0.0'
    ' --config.total_steps=3 --config.loss.lambda_id=0.0'
  )
  assert shlex.split(lines[2]) == [
    'jaxstyle',
    'train',
    '--config',
    config_path,
    '--workdir',
    'runs/idt/data.name=apple_book_x,optim.lr=0.0001',
    '--config.total_steps=3',
    '--config.data.name=apple book/x',
    '--config.optim.lr=0.0001',
  ]
  assert lines[3].endswith('--workdir runs/idt/default --config.total_steps=3')
  assert len(lines) == 4


def test_dry_run_tpu(config_path, capsys):
  assert (
    cli.main(
      [
        'sweep',
        '--config',
        config_path + ':runlocal',
        '--workdir',
        'gs://b/idt/',
        '--tpu',
        't1',
        '--zone',
        'us-central2-b',
      ]
    )
    == 0
  )
  lines = capsys.readouterr().out.splitlines()
  assert lines[1] == (
    f'python3 launch/tpu.py run --name t1 --zone us-central2-b --config '
    f'{config_path}:runlocal --workdir gs://b/idt/loss.lambda_id=2.5 '
    '--config.loss.lambda_id=2.5'
  )
  assert cli.main(['sweep', '--config', config_path, '--workdir', 'w', '--execute', 'tpu']) == 2
  assert 'need --tpu NAME and --zone ZONE' in capsys.readouterr().err


def _fabricate(base, name, records, eval_json=None):
  run = base / name
  run.mkdir(parents=True)
  with open(run / 'metrics.jsonl', 'w') as f:
    for rec in records:
      f.write(json.dumps(rec) + '\n')
  if eval_json is not None:
    (run / 'eval.json').write_text(json.dumps(eval_json))


def test_summary_table(tmp_path):
  # A resumed run: the marker drops the rolled-back step 3; eval is its own record.
  _fabricate(
    tmp_path,
    'loss.lambda_id=0.0',
    [
      {'step': 1, 'train/loss_G': 9.0},
      {'step': 3, 'train/loss_G': 8.0},
      {'event': 'resume'},
      {'step': 2, 'train/loss_G': 3.123456},
      {'step': 2, 'eval/kid_A2B': 0.5},
    ],
    {'eval/fid_A2B': 81.25, 'per_image': [1, 2]},
  )
  _fabricate(
    tmp_path, 'loss.lambda_id=5.0', [{'step': 2, 'train/loss_G': 4.5, 'train/loss_idt_A': 0.25}]
  )
  (tmp_path / 'empty').mkdir()
  table = sweep.summarize(str(tmp_path)).splitlines()
  assert table[0].split() == [
    'run',
    'step',
    'eval/fid_A2B',
    'eval/kid_A2B',
    'train/loss_G',
    'train/loss_idt_A',
  ]
  assert set(table[1]) == {'-', ' '}
  assert table[2].split() == ['loss.lambda_id=0.0', '2', '81.25', '0.5', '3.123', '-']
  assert table[3].split() == ['loss.lambda_id=5.0', '2', '-', '-', '4.5', '0.25']
  assert len(table) == 4
  assert sweep.summarize(str(tmp_path), keys=['train/loss_G']).splitlines()[2].split() == [
    'loss.lambda_id=0.0',
    '3.123',
  ]
  assert 'no runs' in sweep.summarize(str(tmp_path / 'missing'))


def test_execute_local_parallel_with_fake_command(tmp_path):
  """Two at a time; each run logs to its workdir; failures are reported, not hidden."""
  script = (
    "import json,os,sys,time; time.sleep(0.3); d=sys.argv[1]; print('hello', d);"
    "open(os.path.join(d,'metrics.jsonl'),'w').write(json.dumps({'step':2,'x':1.5}));"
    'sys.exit(int(sys.argv[2]))'
  )
  dirs = [str(tmp_path / n) for n in ('a', 'b', 'c')]
  cmds = [[sys.executable, '-c', script, d, rc] for d, rc in zip(dirs, ('0', '0', '3'))]
  codes = sweep.execute_local(cmds, dirs, parallel=2)
  assert codes == [0, 0, 3]
  for d in dirs:
    assert open(os.path.join(d, 'train.log')).read().strip() == f'hello {d}'
  assert sweep.summarize(str(tmp_path)).splitlines()[2].split() == ['a', '2', '1.5']
  slow = [[sys.executable, '-c', 'import time; time.sleep(30)']]
  assert sweep.execute_local(slow, [str(tmp_path / 'slow')], timeout=0.5) != [0]


def test_parallel_runs_get_disjoint_cores(tmp_path, capsys):
  """`--parallel N` pins each run to its own share of the cores: no oversubscription."""
  assert sweep.core_slots(3, [0, 1, 2, 3, 4, 5]) == [[0, 1], [2, 3], [4, 5]]
  assert sweep.core_slots(4, [0, 1]) == [[0], [1]]
  assert sweep.core_slots(2, [0, 1, 2]) == [[0], [1, 2]]
  script = 'import os, sys, time; time.sleep(0.5); print(sorted(os.sched_getaffinity(0)))'
  dirs = [str(tmp_path / n) for n in ('a', 'b')]
  assert sweep.execute_local([[sys.executable, '-c', script]] * 2, dirs, parallel=2) == [0, 0]
  seen = [set(eval(open(os.path.join(d, 'train.log')).read())) for d in dirs]  # noqa: S307
  available = set(os.sched_getaffinity(0))
  assert all(seen) and all(s <= available for s in seen)
  if len(available) >= 2:  # both ran at once, each on its own cores
    assert not seen[0] & seen[1]
  assert 'on cores' in capsys.readouterr().out


@pytest.mark.skipif(not os.path.exists(TRAINER), reason='trainer config not present')
@pytest.mark.slow  # two real training runs (~60 s)
def test_real_two_run_sweep(tmp_path, capsys):
  """`--execute local --parallel 2` trains both runs of a 2-entry sweep, then tabulates them."""
  config = tmp_path / 'tiny_sweep.py'
  config.write_text(
    textwrap.dedent(f"""
      from jaxstyle import config_lib
      _BASE = config_lib.load_config_module({TRAINER!r})

      def get_config(arg=None):
        c = _BASE.get_config("runlocal")
        c.total_steps, c.eval_at_end, c.progress = 2, False, False
        return c

      def get_sweep():
        return [{{'loss.lambda_id': 0.0}}, {{'loss.lambda_id': 1.0}}]
  """)
  )
  base = tmp_path / 'runs'
  assert (
    cli.main(
      [
        'sweep',
        '--config',
        str(config),
        '--workdir',
        str(base),
        '--execute',
        'local',
        '--parallel',
        '2',
        '--timeout',
        '300',
      ]
    )
    == 0
  )
  out = capsys.readouterr().out
  table = out[out.index('run ') :].splitlines()
  assert [row.split()[0] for row in table[2:]] == ['loss.lambda_id=0.0', 'loss.lambda_id=1.0']
  header = table[0].split()
  assert table[2].split()[header.index('step')] == '2'
  for name, lam in (('loss.lambda_id=0.0', 0.0), ('loss.lambda_id=1.0', 1.0)):
    assert json.load(open(base / name / 'config.json'))['loss']['lambda_id'] == lam
    assert os.path.exists(base / name / 'train.log')
  idt = table[2].split()[header.index('train/loss_idt_A')]
  assert float(idt) == 0.0  # lambda_id=0 really reached the trainer
