"""Fast style transfer, many styles in one network: conditional instance norm (Dumoulin et al. 2017).

The Johnson net with every instance norm conditional: one γ/β row per style, everything else shared
(1,688,835 parameters for 4 styles). Each training item is paired with style (step·batch + item) mod
n_styles, so every batch covers the styles evenly. At inference `--style K` picks one and
`--style-mix 0.3,0.7,...` blends their γ/β. Defaults: the four embedded patterns as styles.

Command:
  jaxstyle train --config configs/fast_style_multi.py --workdir runs/multi --config.styles=a.jpg,b.jpg,c.jpg
  jaxstyle stylize --model runs/multi photo.jpg -o mixed.jpg --style-mix 0.5,0.5,0
  jaxstyle figure style-grid --workdir runs/multi --images a.jpg b.jpg -o grid.png
  jaxstyle train --config configs/fast_style_multi.py:runlocal --workdir runs/multi_local  # minutes, CPU
Hardware: one accelerator (full); a laptop CPU (runlocal).
Wall time: runlocal: see README "Fast style transfer".
Expected: with real VGG19 weights, one net renders every style; blends interpolate between them.
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
