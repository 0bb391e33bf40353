"""The static results page `jaxstyle evaluate` writes to `<workdir>/eval/index.html`.

A junyanz-style page to open in a browser straight from disk: the scores, the step and split they
belong to, real / translated / reconstructed (/ identity) for each test image (or the columns a
task names: pix2pix shows input / output / target), and the sample grids over training. Plain
HTML + inline CSS with relative links only (no server, no CDN, no JavaScript), so the whole
workdir can be copied or zipped and the page still works.
"""

from __future__ import annotations

import html
import os
import pathlib
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urlsplit

import numpy as np

from jaxstyle import image_io

DISPLAY_PX = 192  # every test image is shown this wide: 32/64/96-px images scale by whole factors
MAX_THUMBS = 12  # sample-grid thumbnails; the other steps are listed as text links
_STEP_RE = re.compile(r'^step_(\d+)\.png$')
_FIGURE_5_8 = (
  'Figure 5-8 layout: rows A then B; columns original / translated / reconstructed / identity.'
)
_METRICS = {  # key stem -> (label, which way is better); order is the table's order
  'fid': ('FID', 'lower'),
  'kid': ('KID', 'lower'),
  'kid_std': ('KID std. dev.', ''),
  'kid_subset_size': ('KID subset size', ''),
  'is': ('Inception Score', 'higher'),
  'is_std': ('Inception Score std. dev.', ''),
  'precision': ('Precision (k-NN)', 'higher'),
  'recall': ('Recall (k-NN)', 'higher'),
  'transfer': ('Domain transfer rate', 'higher'),
  'iou': ('Content IoU', 'higher'),
  'cycle_l1': ('Cycle L1', 'lower'),
  'l1': ('L1 to the target', 'lower'),  # pix2pix: paired scores and the FCN-score columns
  'psnr': ('PSNR (dB)', 'higher'),
  'ssim': ('SSIM', 'higher'),
  'fcn_pixel_acc': ('FCN-score per-pixel accuracy', 'higher'),
  'fcn_class_acc': ('FCN-score per-class accuracy', 'higher'),
  'fcn_class_iou': ('FCN-score class IoU', 'higher'),
}
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;
 margin:24px 32px;max-width:1400px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#555;margin:0 0 12px} .meta b{color:#222}
.notes{background:#fff8e1;border:1px solid #f0d98c;padding:8px 12px 8px 28px;margin:12px 0}
table{border-collapse:collapse} th,td{padding:4px 10px;text-align:left;vertical-align:top}
.scores td,.scores th{border-bottom:1px solid #eee} .scores .v{text-align:right;
 font-variant-numeric:tabular-nums;font-weight:600} .key{color:#888;font:12px monospace}
.imgs th{font-weight:600;font-size:13px;color:#444} .imgs td{padding:3px 4px}
.imgs .name{font:12px monospace;color:#666;padding-right:8px;max-width:140px;word-break:break-all}
.imgs img{display:block;background:#eee} img.px{image-rendering:pixelated}
.strip{display:flex;flex-wrap:wrap;gap:12px} .strip figure{margin:0;font-size:13px;color:#555}
.strip img{width:280px;display:block;border:1px solid #ddd} .strip .cur img{border:2px solid #d33}
.steps{font-size:13px;color:#555;margin-top:8px} .steps a{margin-right:6px}
"""


def _parse(key: str) -> tuple[str, str]:
  """('fid', 'A→B') for 'eval/fid_A2B', ('cycle_l1', 'A') for 'eval/cycle_l1_A'."""
  stem = key.rsplit('/', 1)[-1]
  m = re.fullmatch(r'(.+?)_(?:([A-Z])2([A-Z])|([A-Z]))', stem)
  if not m:
    return stem, ''
  return m.group(1), f'{m.group(2)}→{m.group(3)}' if m.group(2) else m.group(4)


def _label(key: str) -> tuple[str, str]:
  """('FID A→B', 'lower') for 'eval/fid_A2B'; the raw key stays visible in its own column."""
  name, suffix = _parse(key)
  label, better = _METRICS.get(name, (name.replace('_', ' '), ''))
  return f'{label} {suffix}'.strip(), better


def _order(key: str) -> tuple[int, str]:
  """Known metrics in `_METRICS` order (FID, KID, ...), then the rest alphabetically."""
  names = list(_METRICS)
  name = _parse(key)[0]
  return (names.index(name) if name in names else len(names), key)


def format_score(v: float) -> str:
  """Four significant digits below 1 (KID ~ 0.01), two decimals above (FID ~ 50-300)."""
  v = float(v)
  if not np.isfinite(v):
    return 'n/a' if np.isnan(v) else str(v)
  if v == int(v) and abs(v) < 1e6:
    return str(int(v))
  return f'{v:,.2f}' if abs(v) >= 1 else f'{v:.4g}'


def _esc(s: object) -> str:
  return html.escape(str(s), quote=True)


def _href(rel: str) -> str:
  return _esc(quote(rel))


def _write_atomic(path: str, write: Callable[[str], object]) -> None:
  """`write(tmp)` then rename, so a browser never reads a half-written page or PNG."""
  fd, tmp = tempfile.mkstemp(
    suffix=os.path.splitext(path)[1], prefix='.tmp-', dir=os.path.dirname(path)
  )
  os.close(fd)
  try:
    write(tmp)
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def _direction_names(direction: str) -> tuple[str, str]:
  """('A', 'B') for 'A2B'; ('labels', 'photo') for 'labels→photo' (a task's own domain names)."""
  if '→' in direction:
    src, _, dst = direction.partition('→')
    return src, dst
  m = re.fullmatch(r'([A-Za-z])2([A-Za-z])', direction)
  return (m.group(1), m.group(2)) if m else ('source', 'target')


def _image_section(
  direction: str,
  items: Sequence[Mapping],
  img_dir: str,
  written: set[str],
  columns: Sequence[tuple[str, str]] = (),
) -> list[str]:
  src, dst = _direction_names(direction)
  heads = dict(columns) or {
    'real': f'Real {src}',
    'translated': f'Translated {src}→{dst}',
    'reconstructed': f'Reconstructed {src}→{dst}→{src}',
    'identity': f'Identity ({dst}→{src} on {src})',
  }  # like samples.py: G_B(A) for A
  cols = [c for c in heads if any(c in it for it in items)]
  out = [
    f"<h2 id='{_esc(direction)}'>{_esc(src)} → {_esc(dst)} "
    f'<small>({len(items)} test image{"s" * (len(items) != 1)})</small></h2>'
  ]
  if not items:
    return out + ['<p>No test images.</p>']
  out.append(
    "<table class='imgs'><tr><th></th>"
    + ''.join(f'<th>{_esc(heads[c])}</th>' for c in cols)
    + '</tr>'
  )
  safe_dir = re.sub(r'[^A-Za-z0-9_-]', '_', direction)
  for i, it in enumerate(items):
    cells = [f"<td class='name'>{_esc(it.get('name', i))}</td>"]
    for c in cols:
      if c not in it:
        cells.append('<td></td>')
        continue
      img = np.asarray(it[c])
      fname = f'{safe_dir}_{i:04d}_{c}.png'
      _write_atomic(os.path.join(img_dir, fname), lambda tmp, img=img: image_io.save(tmp, img))
      written.add(fname)
      cls = " class='px'" if max(img.shape[:2]) < DISPLAY_PX else ''
      rel, alt = _href(f'images/{fname}'), _esc(f'{c} {it.get("name", i)}')
      cells.append(
        f"<td><a href='{rel}'><img src='{rel}'{cls} width='{DISPLAY_PX}' alt='{alt}' "
        "loading='lazy'></a></td>"
      )
    out.append('<tr>' + ''.join(cells) + '</tr>')
  return out + ['</table>']


def _curve_section(curve: Sequence[tuple[int, float]], step: int) -> list[str]:
  """FID tracked during training as an inline SVG line (no script), the scored step marked."""
  points = [(int(s), float(v)) for s, v in curve if np.isfinite(v)]
  if not points:
    return []
  w, h, pad = 640, 200, 36
  s0, s1 = points[0][0], max(points[-1][0], points[0][0] + 1)
  lo, hi = min(v for _, v in points), max(v for _, v in points)
  hi = hi if hi > lo else lo + 1

  def xy(s: int, v: float) -> tuple[float, float]:
    return pad + (s - s0) / (s1 - s0) * (w - 2 * pad), h - pad - (v - lo) / (hi - lo) * (
      h - 2 * pad
    )

  line = ' '.join(f'{x:.1f},{y:.1f}' for x, y in (xy(s, v) for s, v in points))
  best = min(points, key=lambda p: p[1])
  marks = [f"<polyline points='{line}' fill='none' stroke='#36c' stroke-width='2'/>"]
  for (s, v), colour in ((best, '#2a2'), *((p, '#d33') for p in points if p[0] == step)):
    x, y = xy(s, v)
    marks.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4' fill='{colour}'/>")
  axis = (
    f"<text x='{pad}' y='{h - 8}' font-size='12'>step {s0:,}</text>"
    f"<text x='{w - pad}' y='{h - 8}' font-size='12' text-anchor='end'>{s1:,}</text>"
    f"<text x='4' y='{pad - 8}' font-size='12'>FID {format_score(hi)}</text>"
    f"<text x='4' y='{h - pad + 4}' font-size='12'>{format_score(lo)}</text>"
  )
  return [
    "<h2 id='fid-curve'>FID during training</h2>",
    "<p class='meta'>On a fixed, seeded subset of the test split (config <code>eval.fid_images"
    '</code>), mean over both directions; green: the best step, red: the step scored here. '
    'Picking the best step by this curve is an optimistic protocol.</p>',
    f"<svg width='{w}' height='{h}' role='img' aria-label='FID during training'>"
    + ''.join(marks)
    + axis
    + '</svg>',
  ]


def _samples_section(workdir: str, step: int, layout: str) -> list[str]:
  sample_dir = os.path.join(workdir, 'samples')
  names = os.listdir(sample_dir) if os.path.isdir(sample_dir) else []
  steps = sorted((int(m.group(1)), n) for n in names if (m := _STEP_RE.match(n)))
  out = ["<h2 id='samples'>Sample grids over training</h2>"]
  if not steps:
    return out + ['<p>No sample grids in <code>samples/</code>.</p>']
  out.append(
    f"<p class='meta'>{_esc(layout)} {len(steps)} grid{'s' * (len(steps) != 1)}; "
    "click one for full size.</p><div class='strip'>"
  )
  picks = {int(i) for i in np.linspace(0, len(steps) - 1, min(len(steps), MAX_THUMBS)).round()}
  picks |= {i for i, (s, _) in enumerate(steps) if s == step}  # the scored step is always shown
  for s, name in (steps[i] for i in sorted(picks)):
    rel, cur = _href(f'../samples/{name}'), s == step
    fig = "<figure class='cur'>" if cur else '<figure>'
    out.append(
      f"{fig}<a href='{rel}'><img src='{rel}' alt='sample grid, step {s}' loading=lazy>"
      f'</a><figcaption>step {s:,}{" (scored)" * cur}</figcaption></figure>'
    )
  out.append('</div>')
  if len(picks) < len(steps):
    out.append(
      "<p class='steps'>All steps: "
      + ' '.join(f"<a href='{_href(f'../samples/{n}')}'>{s:,}</a>" for s, n in steps)
      + '</p>'
    )
  return out


def write_results_page(
  workdir: str,
  *,
  step: int,
  split: str,
  scores: dict[str, float],
  rows: dict[str, list[dict[str, np.ndarray]]],
  notes: Sequence[str] = (),
  title: str | None = None,
  curve: Sequence[tuple[int, float]] = (),
  columns: Mapping[str, Sequence[tuple[str, str]]] | None = None,
  samples_layout: str = _FIGURE_5_8,
) -> str:
  """Writes `<workdir>/eval/index.html` (+ PNGs in `eval/images/`) and returns its path.

  `rows` maps a direction ('A2B', 'B2A') to per-test-image dicts of uint8 HxWx3 arrays under
  'real', 'translated', 'reconstructed' and optionally 'identity', plus an optional 'name'. PNGs
  of a previous evaluation that this one does not rewrite are deleted after the page is swapped
  in, so the page never points at a missing or outdated image. `curve`: (step, FID) tracked
  during training (`jaxstyle.fid.tracking.curve`), drawn when given. A task with other images
  per row names them: `columns[direction]` = ordered (image key, column header) pairs, and a
  direction 'labels→photo' titles its section with those words (pix2pix). `samples_layout`: the
  sentence that says what the grids in `samples/` show.
  """
  eval_dir = os.path.join(workdir, 'eval')
  img_dir = os.path.join(eval_dir, 'images')
  os.makedirs(img_dir, exist_ok=True)
  title = title or f'jaxstyle evaluation: {os.path.basename(os.path.abspath(workdir))}'
  n_imgs = ', '.join(f'{len(v)} {_esc("→".join(_direction_names(k)))}' for k, v in rows.items())
  meta = [f'step <b>{int(step):,}</b>', f'split <b>{_esc(split)}</b>']
  if n_imgs:
    meta.append(f'test images: {n_imgs}')
  if os.path.isfile(os.path.join(workdir, 'eval.json')):
    meta.append("<a href='../eval.json'>eval.json</a>")
  body = [f'<h1>{_esc(title)}</h1>', f"<p class='meta'>{' · '.join(meta)}</p>"]
  if notes:
    body.append("<ul class='notes'>" + ''.join(f'<li>{_esc(n)}</li>' for n in notes) + '</ul>')
  body.append("<h2 id='scores'>Scores</h2>")
  if scores:
    body.append(
      "<table class='scores'><tr><th>Metric</th><th>Value</th><th>Better</th><th>Key</th></tr>"
    )
    for key in sorted(scores, key=_order):
      label, better = _label(key)
      value = _esc(format_score(scores[key]))
      body.append(
        f"<tr><td>{_esc(label)}</td><td class='v'>{value}</td><td>{_esc(better)}</td>"
        f"<td class='key'>{_esc(key)}</td></tr>"
      )
    body.append('</table>')
  else:
    body.append('<p>No scores.</p>')
  body += _curve_section(curve, step)
  written: set[str] = set()
  for direction, items in rows.items():
    body += _image_section(direction, items, img_dir, written, (columns or {}).get(direction, ()))
  body += _samples_section(workdir, step, samples_layout)
  page = (
    "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
    f"<meta name='viewport' content='width=device-width'><title>{_esc(title)}</title>"
    f'<style>{_CSS}</style></head><body>\n' + '\n'.join(body) + '\n</body></html>\n'
  )
  path = os.path.join(eval_dir, 'index.html')
  _write_atomic(path, lambda tmp: pathlib.Path(tmp).write_text(page, encoding='utf-8'))
  for name in os.listdir(img_dir):
    if name.endswith('.png') and name not in written:
      os.unlink(os.path.join(img_dir, name))
  return path


class _Refs(HTMLParser):
  def __init__(self) -> None:
    super().__init__()
    self.refs: list[str] = []

  def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
    self.refs += [v for k, v in attrs if k in ('src', 'href') and v]


def referenced_files(html_path: str) -> list[str]:
  """Every `src=`/`href=` of the page resolved against its folder (in-page '#…' links skipped).

  URLs with a scheme or host (http:, file:, //cdn) come back unchanged, so a check that each
  result exists as a file also fails on them.
  """
  parser = _Refs()
  with open(html_path, encoding='utf-8') as f:
    parser.feed(f.read())
  base = os.path.dirname(os.path.abspath(html_path))
  out = []
  for ref in parser.refs:
    parts = urlsplit(ref)
    if parts.scheme or parts.netloc or os.path.isabs(unquote(parts.path)):
      out.append(ref)
    elif parts.path:
      out.append(os.path.normpath(os.path.join(base, unquote(parts.path))))
  return out
