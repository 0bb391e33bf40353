"""CycleGAN, GDL Example 5-1: apple2orange at 128x128, book U-Net (g=32) and book D (d=32).

Spec §1 `book_5_1`: lambda 1 / 10 / 2, constant LR 2e-4 (Adam b1 0.5), pool 50 with the reference
50 % rule, epoch = min(#A, #B) steps at batch 1, resize + independent h-flips, keras-contrib
instance norm (eps 1e-3 added to the std). `--config.book_exact_d=True` restores the book's two
D steps per iteration.

Command:
  jaxstyle train --config configs/cyclegan_book_apple2orange.py --workdir runs/book_5_1 \
    --config.data.tfds_download=True
  jaxstyle bench preset --config configs/cyclegan_book_apple2orange.py  # s/step
Hardware: the step measured at the preset's shapes (1 x 128² per domain) on stand-in random images
  (TFDS apple2orange is not on the development machines), 2-core AMD EPYC CPU (AVX2), jaxlib 0.10.2:
  1.9 s/step with other jobs on the cores (0.49 s for the same networks on the quiet machine),
  compile 70 s, peak RSS 1.2 GiB; 6.8 ms/step on one H100 (docs/performance.md: "Presets at their
  real shapes", the CPU and GPU tables).
Wall time: projected, not run: 200 epochs x 995 steps = 199,000 steps: 1 d 3 h (quiet) to 4 d 9 h on
  that CPU, ~23 min of steps on one H100 (input pipeline, samples and checkpoints not included).
  Published: the GDL notebook takes 3 min 33 s per epoch on a GTX 1080 Ti, ~12 h for 200
  (davidADSP/GDL_code#43).
Expected: no published metric; the sample grids look like the book's Figure 5-8 (apples turned
  orange and back; Foster, Generative Deep Learning, O'Reilly 2019, ch. 5) in {workdir}/samples.
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.cyclegan import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.cyclegan_base()  # the base is Example 5-1
  if arg.runlocal:  # ~1 minute on a laptop CPU
    presets.cyclegan_runlocal(c, image_size=32)  # U-Net's 4 downs: >= 32 px (no IN on 1x1)
  return c


def get_sweep():
  """Identity-loss ablation: off, the book's weight, the reference weight (0.5 * 10)."""
  return [{'loss.lambda_id': w} for w in (0.0, 2.0, 5.0)]
