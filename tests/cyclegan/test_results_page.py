"""`jaxstyle evaluate`'s static results page: links resolve, nothing external, no stale images."""

import os
import re

import numpy as np
import pytest

from jaxstyle import image_io
from jaxstyle.cyclegan import report

SCORES = {
  'eval/fid_A2B': 87.4321,
  'eval/kid_A2B': 0.01234,
  'eval/kid_std_A2B': 0.00156,
  'eval/transfer_B2A': 0.875,
  'eval/cycle_l1_A': 0.0634,
}


def _img(seed: int, size: int = 32) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _rows(n: int, identity: bool = True, direction: str = 'A2B') -> list[dict]:
  rows = []
  for i in range(n):
    row = {
      'real': _img(4 * i),
      'translated': _img(4 * i + 1),
      'reconstructed': _img(4 * i + 2),
      'name': f'{direction}_{i}.jpg',
    }
    if identity:
      row['identity'] = _img(4 * i + 3)
    rows.append(row)
  return rows


@pytest.fixture
def workdir(tmp_path):
  for step in (2000, 0, 500):  # written out of order: the page sorts them
    image_io.save(str(tmp_path / 'samples' / f'step_{step:06d}.png'), _img(step, 48))
  (tmp_path / 'samples' / 'notes.txt').write_text('not a grid')
  (tmp_path / 'eval.json').write_text('{}')
  return str(tmp_path)


def _page(path: str) -> str:
  with open(path, encoding='utf-8') as f:
    return f.read()


def _pngs(workdir: str) -> set[str]:
  return set(os.listdir(os.path.join(workdir, 'eval', 'images')))


def test_every_referenced_file_exists_and_links_are_relative(workdir):
  path = report.write_results_page(
    workdir,
    step=2000,
    split='test',
    scores=SCORES,
    rows={'A2B': _rows(3), 'B2A': _rows(2, False, 'B2A')},
  )
  assert path == os.path.join(workdir, 'eval', 'index.html')
  refs = report.referenced_files(path)
  assert refs and all(os.path.isfile(r) for r in refs), [r for r in refs if not os.path.isfile(r)]
  html = _page(path)
  assert not re.search(r"(?:src|href)\s*=\s*['\"]?\s*(?:[a-z][a-z0-9+.-]*:|/)", html, re.I)
  assert 'http' not in html and '//' not in html.replace('<!doctype', '')
  # 3 x 4 + 2 x 3 test images (each an img and a link), 3 sample grids (img + link), eval.json.
  images = {r for r in refs if '/eval/images/' in r}
  assert len(images) == 18 and {os.path.basename(r) for r in images} == _pngs(workdir)
  grids = [os.path.basename(r) for r in refs if '/samples/' in r]
  assert grids == sorted(grids) and set(grids) == {f'step_{s:06d}.png' for s in (0, 500, 2000)}
  assert os.path.join(workdir, 'eval.json') in refs
  assert not [n for n in os.listdir(os.path.join(workdir, 'eval')) if n.startswith('.tmp')]


def test_pngs_hold_the_given_pixels(workdir):
  rows = _rows(2)
  report.write_results_page(workdir, step=1, split='test', scores={}, rows={'A2B': rows})
  got = image_io.load_rgb(os.path.join(workdir, 'eval', 'images', 'A2B_0001_translated.png'))
  np.testing.assert_array_equal(got, rows[1]['translated'])


def test_scores_step_split_and_notes_appear(workdir):
  note = 'FID/KID not computed: Inception weights not found'
  html = _page(
    report.write_results_page(
      workdir, step=12345, split='val', scores=SCORES, rows={'A2B': _rows(1)}, notes=[note]
    )
  )
  for text in (
    '12,345',
    'val',
    note,
    '87.43',
    '0.01234',
    '0.00156',
    '0.875',
    '0.0634',
    'FID A→B',
    'KID A→B',
    'eval/fid_A2B',
    'eval/kid_std_A2B',
    'Cycle L1 A',
  ):
    assert text in html, text
  assert html.index('FID A→B') < html.index('KID A→B') < html.index('Cycle L1 A')


def test_rewrite_with_fewer_rows_removes_stale_images(workdir):
  report.write_results_page(
    workdir,
    step=10,
    split='test',
    scores=SCORES,
    rows={'A2B': _rows(4), 'B2A': _rows(4, direction='B2A')},
  )
  assert len(_pngs(workdir)) == 32
  path = report.write_results_page(
    workdir, step=20, split='test', scores=SCORES, rows={'A2B': _rows(1, identity=False)}
  )
  assert _pngs(workdir) == {
    'A2B_0000_real.png',
    'A2B_0000_translated.png',
    'A2B_0000_reconstructed.png',
  }
  refs = report.referenced_files(path)
  assert all(os.path.isfile(r) for r in refs) and 'images/B2A_' not in _page(path)


def test_identity_column_only_when_given(workdir):
  html = _page(
    report.write_results_page(
      workdir,
      step=1,
      split='test',
      scores={},
      rows={'A2B': _rows(2, identity=True), 'B2A': _rows(2, False, 'B2A')},
    )
  )
  assert 'Identity (B→A on A)' in html and 'Identity (A→B on B)' not in html
  assert {n for n in _pngs(workdir) if 'identity' in n} == {
    'A2B_0000_identity.png',
    'A2B_0001_identity.png',
  }


def test_text_is_escaped(workdir):
  evil = "<script>alert('x')</script>"
  path = report.write_results_page(
    workdir,
    step=3,
    split='<b>test</b>',
    scores={'eval/<i>odd</i>': 1.5},
    rows={'A2B': [dict(_rows(1)[0], name='<img src="/etc/passwd">')]},
    notes=[evil],
    title='Runs & <results>',
  )
  html = _page(path)
  for raw in (evil, '<b>test</b>', '<i>odd</i>', '<img src="/etc/passwd">', 'Runs & <results>'):
    assert raw not in html, raw
  for esc in (
    '&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;',
    '&lt;b&gt;test&lt;/b&gt;',
    '&lt;i&gt;odd&lt;/i&gt;',
    'Runs &amp; &lt;results&gt;',
  ):
    assert esc in html, esc
  assert all(os.path.isfile(r) for r in report.referenced_files(path))


def test_small_images_are_pixelated_and_large_ones_are_not(tmp_path):
  big = {'real': _img(0, 256), 'translated': _img(1, 256), 'reconstructed': _img(2, 256)}
  html = _page(
    report.write_results_page(
      str(tmp_path), step=0, split='test', scores={}, rows={'A2B': _rows(1), 'B2A': [big]}
    )
  )
  tags = re.findall(r'<img [^>]*>', html)
  assert all(("class='px'" in t) == ('A2B_' in t) for t in tags) and len(tags) == 7
  assert all("width='192'" in t for t in tags)
  assert 'image-rendering:pixelated' in html and 'No sample grids' in html


def test_many_sample_grids_get_thumbnails_and_text_links(tmp_path):
  for step in range(0, 3000, 100):
    image_io.save(str(tmp_path / 'samples' / f'step_{step:06d}.png'), _img(step, 8))
  path = report.write_results_page(str(tmp_path), step=1450, split='test', scores={}, rows={})
  html = _page(path)
  thumbs = re.findall(r"<img src='../samples/step_(\d+).png'", html)
  assert len(thumbs) == report.MAX_THUMBS and thumbs[0] == '000000' and thumbs[-1] == '002900'
  assert len(re.findall(r"<a href='../samples/step_", html)) == report.MAX_THUMBS + 30
  assert all(os.path.isfile(r) for r in report.referenced_files(path))


def test_scored_grid_is_always_shown_and_marked(tmp_path):
  for step in range(0, 3000, 100):
    image_io.save(str(tmp_path / 'samples' / f'step_{step:06d}.png'), _img(step, 8))
  path = report.write_results_page(str(tmp_path), step=1300, split='test', scores={}, rows={})
  html = _page(path)
  assert "<img src='../samples/step_001300.png'" in html and 'step 1,300 (scored)' in html


@pytest.mark.parametrize(
  'value,text',
  [
    (87.4321, '87.43'),
    (0.01234, '0.01234'),
    (3.0, '3'),
    (float('nan'), 'n/a'),
    (1234.5, '1,234.50'),
    (0.000123456, '0.0001235'),
  ],
)
def test_format_score(value, text):
  assert report.format_score(value) == text


def test_referenced_files_resolves_relative_and_keeps_urls(tmp_path):
  page = tmp_path / 'sub' / 'p.html'
  page.parent.mkdir()
  page.write_text(
    "<a href='#top'>x</a><img src='../a%20b.png'><a href='https://cdn.x/y.js'>"
    "<link href='/abs.css'>"
  )
  assert report.referenced_files(str(page)) == [
    str(tmp_path / 'a b.png'),
    'https://cdn.x/y.js',
    '/abs.css',
  ]


def test_a_task_names_its_own_columns_and_sample_layout(tmp_path):
  """pix2pix's rows: the columns the caller lists, in its order, under its headers."""
  image_io.save(str(tmp_path / 'samples' / 'step_000010.png'), _img(9, 8))
  rows = [{'name': f'p{i}', 'target': _img(3 * i), 'input': _img(3 * i + 1)} for i in range(2)]
  columns = [('input', 'Input (labels)'), ('output', 'Output'), ('target', 'Target (photo)')]
  path = report.write_results_page(
    str(tmp_path),
    step=10,
    split='test',
    scores={'eval/l1': 0.25, 'eval/ssim': 0.5},
    rows={'labels→photo': rows},
    columns={'labels→photo': columns},
    samples_layout='Rows: test pairs.',
  )
  html = _page(path)
  # A column no row has ('output') is left out, as CycleGAN's identity column is.
  assert '<th></th><th>Input (labels)</th><th>Target (photo)</th></tr>' in html
  assert 'Output' not in html and 'Real ' not in html and 'Figure 5-8' not in html
  assert 'labels → photo' in html and 'test images: 2 labels→photo' in html
  assert "<p class='meta'>Rows: test pairs. 1 grid; " in html
  assert html.index('L1 to the target') < html.index('SSIM')
  assert _pngs(str(tmp_path)) == {
    f'labels_photo_000{i}_{c}.png' for i in (0, 1) for c in ('input', 'target')
  }
  got = image_io.load_rgb(str(tmp_path / 'eval' / 'images' / 'labels_photo_0001_target.png'))
  np.testing.assert_array_equal(got, rows[1]['target'])
  assert all(os.path.isfile(r) for r in report.referenced_files(path))
