"""Fast style transfer, many styles in one network: conditional instance norm (Dumoulin et al. 2017).

The Johnson net with every instance norm conditional: one γ/β row per style, everything else shared
(1,688,835 parameters for 4 styles). Each training item is paired with style (step·batch + item) mod
n_styles, so every batch covers the styles evenly. At inference `--style K` picks one and
`--style-mix 0.3,0.7,...` blends their γ/β. Defaults: the four embedded patterns as styles.

Command:
  jaxstyle train --config configs/fast_style_multi.py --workdir runs/multi \
    --config.styles=a.jpg,b.jpg,c.jpg
  jaxstyle stylize --model runs/multi photo.jpg -o mixed.jpg --style-mix 0.5,0.5,0
  jaxstyle figure style-grid --workdir runs/multi --images a.jpg b.jpg -o grid.png
  jaxstyle train --config configs/fast_style_multi.py:runlocal --workdir runs/multi_local \
    --config.vgg.source=random  # a CPU smoke run: 80 steps of 2 x 64², random VGG19
  jaxstyle bench preset --config configs/fast_style_multi.py  # s/step
Hardware: the train step measured at the preset's shapes (4 x 256² crops, four 256² styles) with
  random-initialised VGG19 and random stand-in images (the Keras ImageNet weights are not on the
  development machines), 2-core AMD EPYC CPU (AVX2), jaxlib 0.10.2: 33.4 s/step with other jobs on
  the cores (the single-style step: 5.78 s on the quiet machine), compile 68 s, peak RSS 3.8 GiB
  (docs/performance.md "Presets at their real shapes").
Wall time: projected, not run: 40,000 steps: about 2 d 16 h (quiet) to 15 d 10 h on that CPU, so the
  full preset is for an accelerator; :runlocal measured 55 s on the quiet machine
  (docs/fast_style.md "Pictures").
Expected: with real VGG19 weights, one network renders each of its styles about as well as a
  single-style network, and --style-mix blends interpolate between them (Dumoulin, Shlens & Kudlur
  2017, "A Learned Representation for Artistic Style": 32 styles in one network).
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.fast_style import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False)
  c = presets.fast_style_base()
  c.styles = tuple(presets.SYNTHETIC_PREFIX + s for s in presets.SYNTHETIC_STYLES)
  c.model.conditional = True
  if arg.runlocal:
    presets.runlocal(c)
    c.total_steps = 80
  return c
