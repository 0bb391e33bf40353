"""CycleGAN vs CUT vs FastCUT on the synthetic job, measured side by side (docs/cut.md).

  python -m jaxstyle.tools.compare_cut --out runs/compare [--steps 750] [--eval-images 1000]

Trains `configs/cyclegan_synthetic.py`, `configs/cut_synthetic.py` and its `:fastcut` at the same
shapes (32 px, batch 4) and step count, one fresh `jaxstyle train` process each, one after the
other (so their timings share the machine's state), then prints one JSON line per run and a
markdown table: content IoU and transfer rate A->B (the end-of-run evaluation on the test split),
seconds per step (the median of the logged intervals after the first, which holds the compile),
compile-inclusive wall time, and the process's peak RSS (`wait4`'s ru_maxrss). The paper's claims
as goals: a CUT step <= 0.7x CycleGAN's, FastCUT <= 0.5x, IoU within 0.03 of CycleGAN's or better.
`jaxstyle figure cut-compare --workdirs OUT/cyclegan OUT/cut OUT/fastcut` draws the grid.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# The main job's CycleGAN (book U-Net g32), the same CycleGAN with CUT's generator size (a ResNet
# g32 with 5 blocks, without the blur layers: the paper compares CUT with CycleGAN on the same
# ResNet), CUT and FastCUT.
RUNS = (
  ('cyclegan', 'configs/cyclegan_synthetic.py', ()),
  (
    'cyclegan_resnet',
    'configs/cyclegan_synthetic.py',
    ('--config.model.generator=resnet', '--config.model.n_blocks=5'),
  ),
  ('cut', 'configs/cut_synthetic.py', ()),
  ('fastcut', 'configs/cut_synthetic.py:fastcut', ()),
)
GOALS = {'cut': 0.7, 'fastcut': 0.5}  # step time relative to CycleGAN's (the paper's claims)
IOU_MARGIN = 0.03


def _records(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f if line.strip()]


def train_one(
  name: str, spec: str, extra: tuple, out: str, steps: int, eval_images: int, log_every: int
) -> dict:
  """Trains one preset in a fresh process; returns its measured row."""
  workdir = os.path.join(out, name)
  argv = [sys.executable, '-m', 'jaxstyle.cli', 'train', '--config', spec, '--workdir', workdir]
  argv += [
    *extra,
    f'--config.total_steps={steps}',
    f'--config.log_every={log_every}',
    f'--config.eval_max_images={eval_images}',
    '--config.eval_at_end=True',
    '--config.progress=False',
  ]
  t0 = time.time()
  proc = subprocess.Popen(argv)
  _, status, usage = os.wait4(proc.pid, 0)
  proc.returncode = os.waitstatus_to_exitcode(status)
  wall = time.time() - t0
  if proc.returncode != 0:
    raise SystemExit(f'{name}: jaxstyle train exited {proc.returncode}')
  records = _records(workdir)
  rates = [r['train/steps_per_sec'] for r in records if 'train/steps_per_sec' in r][1:]
  final = {k: v for r in records if r['step'] == steps for k, v in r.items()}
  return {
    'run': name,
    'config': ' '.join((spec, *extra)),
    'steps': steps,
    's_per_step': 1.0 / statistics.median(rates) if rates else float('nan'),
    'wall_s': wall,
    'peak_rss_gib': usage.ru_maxrss / 2**20,  # KiB on Linux
    'iou_A2B': final.get('eval/iou_A2B', float('nan')),
    'transfer_A2B': final.get('eval/transfer_A2B', float('nan')),
    'eval_images': final.get('eval/n_images_A', float('nan')),
  }


def table(rows: list[dict]) -> str:
  """The docs' markdown table, with each goal checked against the main job's CycleGAN row (and
  the step time also relative to the same-size ResNet CycleGAN's, when it ran)."""
  base = next(r for r in rows if r['run'] == 'cyclegan')
  same = next((r for r in rows if r['run'] == 'cyclegan_resnet'), None)
  lines = [
    '| run | IoU A→B | transfer A→B | s/step | × CycleGAN (goal) | × CycleGAN-ResNet | wall s '
    '| peak RSS GiB |',
    '|---|---|---|---|---|---|---|---|',
  ]
  for r in rows:
    ratio = r['s_per_step'] / base['s_per_step']
    ratio_same = '' if same is None else f'{r["s_per_step"] / same["s_per_step"]:.2f}'
    goal = GOALS.get(r['run'])
    verdict = '' if goal is None else f' (≤ {goal}: {"met" if ratio <= goal else "not met"})'
    iou_ok = r['iou_A2B'] >= base['iou_A2B'] - IOU_MARGIN
    iou = f'{r["iou_A2B"]:.3f}' + ('' if r is base else f' ({"met" if iou_ok else "not met"})')
    lines.append(
      f'| {r["run"]} | {iou} | {r["transfer_A2B"]:.3f} | {r["s_per_step"]:.4f} | '
      f'{ratio:.2f}{verdict} | {ratio_same} | {r["wall_s"]:.0f} | {r["peak_rss_gib"]:.2f} |'
    )
  return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--out', required=True, help='folder for the three runs (fresh)')
  p.add_argument('--steps', type=int, default=750, help='train steps each (the main job: 750)')
  p.add_argument('--eval-images', type=int, default=1000, help='test images scored per run')
  p.add_argument('--log-every', type=int, default=50)
  p.add_argument(
    '--only', default=None, help='a subset of cyclegan_resnet,cut,fastcut (cyclegan always runs)'
  )
  args = p.parse_args(argv)
  only = set(args.only.split(',')) if args.only else None
  rows = []
  for name, spec, extra in RUNS:
    if only is None or name in only or name == 'cyclegan':
      row = train_one(name, spec, extra, args.out, args.steps, args.eval_images, args.log_every)
      print(json.dumps(row), flush=True)
      rows.append(row)
  text = table(rows)
  with open(os.path.join(args.out, 'compare.md'), 'w') as f:
    f.write(text + '\n')
  print(text)
  return 0


if __name__ == '__main__':
  sys.exit(main())
