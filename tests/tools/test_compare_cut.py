"""tools/compare_cut.py's table: the paper's goals checked against the CycleGAN rows."""

from jaxstyle.tools import compare_cut


def _row(run, s, iou):
  return dict(run=run, s_per_step=s, iou_A2B=iou, transfer_A2B=1.0, wall_s=10.0, peak_rss_gib=1.0)


def test_goals_are_checked_against_the_cyclegan_rows():
  rows = [
    _row('cyclegan', 1.0, 0.80),
    _row('cyclegan_resnet', 2.0, 0.78),
    _row('cut', 0.6, 0.78),  # 0.6x: meets <= 0.7; IoU 0.02 below: within 0.03
    _row('fastcut', 0.6, 0.70),  # 0.6x: misses <= 0.5; IoU 0.10 below: misses
  ]
  lines = compare_cut.table(rows).splitlines()
  assert len(lines) == 2 + 4 and lines[0].startswith('| run |')
  cut, fast = lines[4], lines[5]
  assert '| 0.780 (met) |' in cut and '0.60 (≤ 0.7: met)' in cut and '| 0.30 |' in cut
  assert '| 0.700 (not met) |' in fast and '0.60 (≤ 0.5: not met)' in fast
  assert '(met)' not in lines[2]  # CycleGAN itself is the reference row
