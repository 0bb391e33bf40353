"""`jaxstyle stylize` dispatch (jaxstyle.cli.Stylize): a --model run goes to its task's module."""

import json
import sys
import types

from jaxstyle import cli


def _fake_mode(calls: list) -> types.ModuleType:
  """A stand-in for a second kind of trained network (as an AdaIN module would be)."""
  module = types.ModuleType('fake_stylize_mode')
  module.add_arguments = lambda group: group.add_argument('--knob', type=float)
  module.given_flags = lambda args: ['--knob'] * (args.knob is not None)
  module.run = lambda args: calls.append((args.model, args.images, args.knob)) or 0
  return module


def test_model_runs_dispatch_by_their_task(tmp_path, monkeypatch, capsys):
  calls: list = []
  monkeypatch.setitem(sys.modules, 'fake_stylize_mode', _fake_mode(calls))
  monkeypatch.setattr(cli, 'STYLIZE_MODELS', {**cli.STYLIZE_MODELS, 'fake': 'fake_stylize_mode'})
  run = tmp_path / 'run'
  run.mkdir()
  (run / 'config.json').write_text(json.dumps({'task': 'fake'}))
  assert cli.main(['stylize', '--model', str(run), 'a.png', '--knob', '0.5']) == 0
  assert calls == [(str(run), ['a.png'], 0.5)]
  # the fake mode's flag without --model, and an optimisation flag with it, are refused
  assert cli.main(['stylize', 'c.png', 's.png', '--knob', '1']) == 2
  assert '--knob need --model RUN' in capsys.readouterr().err
  # so is another kind of network's flag (here fast style's)
  assert cli.main(['stylize', '--model', str(run), 'a.png', '--style', '1']) == 2
  assert '--style: not a flag of this --model (fake)' in capsys.readouterr().err
  assert cli.main(['stylize', '--model', str(run), 'a.png', '--tv-weight', '1']) == 2
  assert '--tv-weight set the optimisation NST' in capsys.readouterr().err
  # a folder without a readable task goes to the fast-style module, which says what is wrong
  (run / 'config.json').write_text('{not json')
  assert cli.main(['stylize', '--model', str(run), 'a.png']) == 2
  assert (
    calls == [(str(run), ['a.png'], 0.5)] and 'jaxstyle stylize: error:' in capsys.readouterr().err
  )
