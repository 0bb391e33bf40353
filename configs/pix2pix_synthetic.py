"""pix2pix on the embedded paired dataset: labels -> photo (AtoB), the offline main job.

The synthetic scenes of CycleGAN with a class per pixel (pix2pix/synthetic.py): A is the label map,
B the photo. Scored as the paper scores Cityscapes labels -> photo (`jaxstyle evaluate`): the
FCN-score columns of a fixed segmenter run on the generated photos against the true classes
(eval/fcn_pixel_acc, fcn_class_acc, fcn_class_iou), and L1 / PSNR / SSIM against the true photos.
`:direction=BtoA` trains photo -> labels instead (the output label map is decoded and scored).
The reference's recipe (vanilla GAN + 100 L1, batch 1, Adam 2e-4 beta1 0.5, dropout, batch norm,
286/256-style resize + crop + flip) at 64 px: a 6-down U-Net (unet_256's blocks, two fewer),
ngf 32, the 70x70 PatchGAN's 3 layers with ndf 32; 400 training pairs, 3 + 3 epochs (2,400 steps).

Command:
  jaxstyle train --config configs/pix2pix_synthetic.py --workdir runs/pix2pix_synthetic
  jaxstyle evaluate --workdir runs/pix2pix_synthetic            # the reference's default test mode
  jaxstyle evaluate --workdir runs/pix2pix_synthetic --eval     # running statistics, no dropout
  jaxstyle train --config configs/pix2pix_synthetic.py:runlocal --workdir runs/pix2pix_local
Hardware: the shared 2-core AMD EPYC CPU (AVX2), one JAX CPU device, jaxlib 0.10.2, under heavy load
  from other jobs (load average 9-12); the lead re-measures in a quiet window.
Wall time: measured 24 min 53 s for the 2,400 steps (about 1.6 steps/s under that load) plus the
  compile and the end-of-run evaluation of the 100 test pairs.
Expected: measured, seed 0, the 100 test pairs (docs/pix2pix.md, "The synthetic main job"): default
  mode (dropout + batch statistics) FCN-score pixel acc 0.986, class acc 0.987, class IoU 0.944, L1
  0.220, PSNR 18.13 dB, SSIM 0.550; `--eval` class IoU 0.948, L1 0.229. The segmenter's ceiling on
  the real photos: class IoU 0.997.
"""

import ml_collections

from jaxstyle import config_lib
from jaxstyle.pix2pix import presets


def get_config(arg=None) -> ml_collections.ConfigDict:
  arg = config_lib.parse_arg(arg, runlocal=False, direction='AtoB')
  c = presets.pix2pix_base()
  c.data.update(
    dict(
      source='synthetic', direction=arg.direction, image_size=64, load_size=72, synthetic_size=400
    )
  )
  c.model.update(dict(num_downs=6, gen_filters=32, disc_filters=32))
  c.optim.update(dict(n_epochs=3, n_epochs_decay=3))
  c.num_epochs = 6.0
  c.log_every = 100
  c.sample_every = 800
  c.ckpt.update(dict(every_steps=800, keep=2))
  c.eval_at_end = True
  if arg.runlocal:
    presets.pix2pix_runlocal(c)
    c.data.direction = arg.direction
  return c
