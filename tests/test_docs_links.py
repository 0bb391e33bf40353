"""The documentation is self-contained: every relative link resolves inside the repository.

A clone has only its own tree, so a link to a missing page, image or heading is a dead end for the
reader, and a pointer to files outside the repository (such as a sibling `shared/` folder of the
development machines) is one for every reader.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
# [text](target) and ![alt](target); the target stops at whitespace or ')'. Code spans are removed first.
_LINK = re.compile(r'!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
_FENCE = re.compile(r'^(```|~~~).*?^\1', re.M | re.S)
_CODE_SPAN = re.compile(r'`+[^`\n]*`+')
_HEADING = re.compile(r'^#{1,6}\s+(.*?)\s*#*\s*$', re.M)
_OUTSIDE = ('../' + 'shared', 'shared/' + 'spec')  # split so this file does not match itself


def doc_files(root: Path = ROOT) -> list[Path]:
  """README.md, ARCHITECTURE.md and every markdown page under docs/."""
  return [p for p in (root / 'README.md', root / 'ARCHITECTURE.md') if p.exists()] + sorted(
    (root / 'docs').rglob('*.md')
  )


def slug(heading: str) -> str:
  """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
  text = _CODE_SPAN.sub(lambda m: m.group(0).strip('`'), heading)
  text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', text)  # a link in a heading keeps its text
  text = unicodedata.normalize('NFC', text).lower()
  text = ''.join(c for c in text if c.isalnum() or c in ' -_')
  return text.replace(' ', '-')


def anchors(path: Path) -> set[str]:
  """Every heading anchor of a markdown file (duplicates get -1, -2, ... as on GitHub)."""
  seen: dict[str, int] = {}
  out = set()
  for heading in _HEADING.findall(_FENCE.sub('', path.read_text(encoding='utf-8'))):
    base = slug(heading)
    n = seen.get(base, 0)
    seen[base] = n + 1
    out.add(base if n == 0 else f'{base}-{n}')
  return out


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
  """The relative links of `path` whose file, or heading, does not exist (URLs are not checked)."""
  text = _FENCE.sub('', path.read_text(encoding='utf-8'))
  text = _CODE_SPAN.sub('', text)
  problems = []
  for target in _LINK.findall(text):
    if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):  # http:, https:, mailto:
      continue
    file_part, _, anchor = target.partition('#')
    dest = (path.parent / unquote(file_part)).resolve() if file_part else path
    where = f'{path.relative_to(root)}: {target}'
    if not dest.exists():
      problems.append(f'{where} (no such file)')
    elif root.resolve() not in (dest, *dest.parents):
      problems.append(f'{where} (outside the repository)')
    elif anchor and dest.suffix == '.md' and unquote(anchor).lower() not in anchors(dest):
      problems.append(f'{where} (no heading #{anchor})')
  return problems


def test_every_relative_link_resolves():
  files = doc_files()
  assert len(files) > 5, files  # README, ARCHITECTURE and the docs pages were found
  problems = [p for f in files for p in broken_links(f)]
  assert not problems, '\n'.join(problems)


def test_a_broken_link_or_anchor_is_reported(tmp_path):
  (tmp_path / 'docs').mkdir()
  (tmp_path / 'docs' / 'page.md').write_text(
    '# A page\n\n## The `fid` notes, again\n', encoding='utf-8'
  )
  readme = tmp_path / 'README.md'
  readme.write_text(
    '[ok](docs/page.md) [ok](docs/page.md#the-fid-notes-again) [web](https://example.com/x.md)\n'
    '`[in code](missing.md)`\n'
    '[gone](docs/missing.md) ![img](docs/figures/none.png) [bad](docs/page.md#no-such-heading)\n'
    '[out](../elsewhere.md)\n',
    encoding='utf-8',
  )
  (tmp_path.parent / 'elsewhere.md').write_text('# x\n', encoding='utf-8')
  problems = broken_links(readme, tmp_path)
  assert [p.split(': ', 1)[1] for p in problems] == [
    'docs/missing.md (no such file)',
    'docs/figures/none.png (no such file)',
    'docs/page.md#no-such-heading (no heading #no-such-heading)',
    '../elsewhere.md (outside the repository)',
  ]


@pytest.mark.parametrize(
  'heading,expected',
  [
    (
      'Style-weight sweeps (`nst/stylize.py: sweep_plan`, 2026-12-02)',
      'style-weight-sweeps-nststylizepy-sweep_plan-2026-12-02',
    ),
    ('Book-code bugs and what jaxstyle does', 'book-code-bugs-and-what-jaxstyle-does'),
  ],
)
def test_slug_follows_github(heading, expected):
  assert slug(heading) == expected


def test_no_tracked_file_points_outside_the_repository():
  files = subprocess.run(
    ['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True, check=True, text=True
  ).stdout.split('\0')
  me = Path(__file__).resolve().relative_to(ROOT).as_posix()
  hits = []
  for name in files:
    path = ROOT / name
    if not name or name == me or not path.is_file():
      continue
    try:
      text = path.read_text(encoding='utf-8')
    except UnicodeDecodeError:
      continue  # binary files (figures, fixtures)
    hits += [
      f'{name}:{i}: {line.strip()}'
      for i, line in enumerate(text.splitlines(), 1)
      if any(s in line for s in _OUTSIDE)
    ]
  assert not hits, 'pointers outside the repository:\n' + '\n'.join(hits)
