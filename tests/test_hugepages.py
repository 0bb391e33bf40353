"""`jaxstyle.hugepages`: when the console script re-executes itself with glibc's hugetlb tunable,
that it does so once with the command line unchanged, and that the PyTorch peers get the
launcher's environment back."""

import os
import subprocess
import sys

import pytest

from jaxstyle import hugepages

ON_LINUX_GLIBC = sys.platform == 'linux' and hugepages._glibc_version() is not None


@pytest.fixture
def madvise(monkeypatch, tmp_path):
  """A kernel in THP madvise mode with glibc 2.36, whatever this machine is."""
  setting = tmp_path / 'enabled'
  setting.write_text('always [madvise] never\n')
  monkeypatch.setattr(hugepages, 'THP_SETTING', str(setting))
  monkeypatch.setattr(hugepages, '_glibc_version', lambda: (2, 36))
  monkeypatch.setattr(sys, 'platform', 'linux')
  return setting


def test_adds_the_tunable_and_keeps_the_users_own(madvise):
  env = hugepages.reexec_env({'PATH': '/bin'})
  assert env[hugepages.TUNABLES_ENV] == 'glibc.malloc.hugetlb=1' and env['PATH'] == '/bin'
  assert env[hugepages.BEFORE_ENV] == ''
  env = hugepages.reexec_env({'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'})
  assert env['GLIBC_TUNABLES'] == 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'
  assert env[hugepages.BEFORE_ENV] == 'glibc.malloc.arena_max=2'


@pytest.mark.parametrize(
  'environ',
  [
    {'JAXSTYLE_HUGEPAGES': '0'},  # opted out
    {'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'},  # the user's own choice
    {hugepages.BEFORE_ENV: ''},  # already re-executed: never a loop
  ],
)
def test_no_reexec_when_told_or_done(madvise, environ):
  assert hugepages.reexec_env(environ) is None


@pytest.mark.parametrize('thp', ['[always] madvise never', 'always madvise [never]'])
def test_no_reexec_unless_thp_is_in_madvise_mode(madvise, thp):
  madvise.write_text(thp)  # always: huge pages without asking; never: none to be had
  assert hugepages.reexec_env({}) is None


def test_no_reexec_on_old_glibc_or_other_systems(madvise, monkeypatch):
  monkeypatch.setattr(hugepages, '_glibc_version', lambda: (2, 34))
  assert hugepages.reexec_env({}) is None
  monkeypatch.setattr(hugepages, '_glibc_version', lambda: (2, 36))
  monkeypatch.setattr(sys, 'platform', 'darwin')
  assert hugepages.reexec_env({}) is None


def test_launcher_env_gives_the_peers_the_environment_as_launched(monkeypatch):
  monkeypatch.setenv('GLIBC_TUNABLES', 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1')
  monkeypatch.setenv(hugepages.BEFORE_ENV, 'glibc.malloc.arena_max=2')
  env = hugepages.launcher_env()
  assert env['GLIBC_TUNABLES'] == 'glibc.malloc.arena_max=2' and hugepages.BEFORE_ENV not in env
  monkeypatch.setenv('GLIBC_TUNABLES', 'glibc.malloc.hugetlb=1')
  monkeypatch.setenv(hugepages.BEFORE_ENV, '')
  assert 'GLIBC_TUNABLES' not in hugepages.launcher_env()
  monkeypatch.delenv(hugepages.BEFORE_ENV)  # launched without the re-exec: left as it is
  assert hugepages.launcher_env()['GLIBC_TUNABLES'] == 'glibc.malloc.hugetlb=1'


@pytest.mark.skipif(not ON_LINUX_GLIBC, reason='the re-exec is for Linux with glibc')
def test_reexec_runs_the_same_command_once():
  """A real re-exec on this machine when it qualifies (else a check that none happens): the
  program's output appears once, with the tunable and the same arguments."""
  env = {k: v for k, v in os.environ.items() if k not in ('GLIBC_TUNABLES', hugepages.BEFORE_ENV)}
  env.pop('JAXSTYLE_HUGEPAGES', None)
  code = (
    'import os, sys; from jaxstyle import hugepages; hugepages.maybe_reexec(); '
    "print(os.environ.get('GLIBC_TUNABLES'), sys.argv[1:])"
  )
  out = subprocess.run(
    [sys.executable, '-c', code, 'a b', '--x'], env=env, capture_output=True, text=True, check=True
  ).stdout.splitlines()
  want = hugepages.reexec_env(env)
  tunables = None if want is None else want['GLIBC_TUNABLES']
  assert out == [f"{tunables} ['a b', '--x']"]
