"""PyTorch peer for AdaIN (naoto0804/pytorch-AdaIN `net.py`, `function.py`), in torch alone.

The networks are jaxstyle's AdaIN training program written out in plain torch (no torchvision, no
download): the encoder is a 1x1 `input_conv` (the folded VGG preprocessing) and VGG19's convs to
relu4_1 with zero padding 1 and floor 2x2 max pools (jaxstyle's `models.adain.encode(kind=
'imagenet')`: our VGG19); `padding='reflect'` gives the reference's `vgg_normalised` instead
(reflect pads, ceil-mode pools); `pool='avg'` pools by averaging (the gradient tests'). The
decoder is the reference's `net.decoder` (reflect pad 1 + 3x3 conv + ReLU, nearest x2 before the
2nd, 6th and 8th convs; 3,505,219 parameters), its Sequential indices and so its state-dict keys
kept. `calc_mean_std` and `adain` are the reference's (unbiased
variance + eps 1e-5). `loss(...)` is `net.Net.forward`: content MSE of relu4_1(g(t)) vs t, style
Σ over relu1_1..relu4_1 of MSE(means) + MSE(stds); total = content_weight · content +
style_weight · style (1 and 10). tests/fixtures/make_adain_loss_fixture.py imports these pieces
for the loss fixture (in float64).

Modes. forward: one unit is the stylisation of one `size`² content with one `size`² style under
torch.no_grad() (both encoded to relu4_1, AdaIN, decoded: the reference test.py's
`style_transfer`, α = 1). train: one unit is one optimiser step at `size`² batch `batch` (encoder
on content and style, decoder, encoder on the output, the loss, backward, Adam 1e-4 on the
decoder; the encoder frozen, `requires_grad=False` as the reference). Timing: one warm-up unit,
then the median of `steps` units. Random weights (speed does not depend on their values); threads:
torch's default (all cores; OMP_NUM_THREADS limits them).

usage: python peer_torch_adain.py [size=512] [steps=3] [batch=1] [mode=forward]   (forward | train)
prints: 'peer_torch_adain mode=<m> size=<px> batch=<n> threads=<t> s_per_iter=<median seconds>'
"""

import statistics
import sys
import time

import torch
from torch import nn

# VGG19 convs to relu4_1: (cin, cout), a 2x2 pool before each block's first conv but the first.
VGG_CONVS = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256))
VGG_CONVS += ((256, 256), (256, 512))
POOL_BEFORE = (2, 4, 8)  # indices in VGG_CONVS
ENCODER_OUTPUTS = (0, 2, 4, 8)  # relu1_1, relu2_1, relu3_1, relu4_1
# The reference decoder: (cin, cout, nearest x2 before), ReLU after all but the last.
DECODER_CONVS = (
  (512, 256, False),
  (256, 256, True),
  (256, 256, False),
  (256, 256, False),
  (256, 128, False),
  (128, 128, True),
  (128, 64, False),
  (64, 64, True),
  (64, 3, False),
)


class Encoder(nn.Module):
  """input_conv (1x1) then VGG19 to relu4_1; forward: [relu1_1, relu2_1, relu3_1, relu4_1]."""

  def __init__(self, padding: str = 'zeros', pool: str = 'max'):
    super().__init__()
    self.input_conv = nn.Conv2d(3, 3, 1)
    self.reflect, self.pool = padding == 'reflect', pool
    mode = 'reflect' if self.reflect else 'zeros'
    self.convs = nn.ModuleList(
      nn.Conv2d(cin, cout, 3, padding=1, padding_mode=mode) for cin, cout in VGG_CONVS
    )
    for p in self.parameters():
      p.requires_grad = False  # frozen, as the reference's `Net`

  def forward(self, x, upto: int = 3):
    x, feats = self.input_conv(x), []
    for i, conv in enumerate(self.convs[: ENCODER_OUTPUTS[upto] + 1]):
      if i in POOL_BEFORE and self.pool == 'avg':  # jaxstyle's vgg.pool='avg' (tests)
        x = nn.functional.avg_pool2d(x, 2, 2)
      elif i in POOL_BEFORE:
        x = nn.functional.max_pool2d(x, 2, 2, ceil_mode=self.reflect)
      x = torch.relu(conv(x))
      if i in ENCODER_OUTPUTS:
        feats.append(x)
    return feats


def decoder() -> nn.Sequential:
  """The reference `net.decoder` (convs at Sequential indices 1, 5, 8, 11, 14, 18, 21, 25, 28)."""
  mods = []
  for k, (cin, cout, up) in enumerate(DECODER_CONVS):
    if up:
      mods.append(nn.Upsample(scale_factor=2, mode='nearest'))
    mods += [nn.ReflectionPad2d((1, 1, 1, 1)), nn.Conv2d(cin, cout, (3, 3))]
    if k < len(DECODER_CONVS) - 1:
      mods.append(nn.ReLU())
  return nn.Sequential(*mods)


def calc_mean_std(feat, eps=1e-5):
  n, c = feat.shape[:2]
  var = feat.reshape(n, c, -1).var(dim=2) + eps  # unbiased, as the reference
  return feat.reshape(n, c, -1).mean(dim=2).reshape(n, c, 1, 1), var.sqrt().reshape(n, c, 1, 1)


def adain(content_feat, style_feat):
  s_mean, s_std = calc_mean_std(style_feat)
  c_mean, c_std = calc_mean_std(content_feat)
  return (content_feat - c_mean) / c_std * s_std + s_mean


def loss(encoder, dec, content, style, content_weight=1.0, style_weight=10.0):
  """(total, content, style, g): the reference `Net.forward` losses, weighted as its train.py."""
  mse = nn.functional.mse_loss
  style_feats = encoder(style)
  t = adain(encoder(content)[-1], style_feats[-1]).detach()
  g = dec(t)
  g_feats = encoder(g)
  loss_c = mse(g_feats[-1], t)
  loss_s = 0.0
  for a, b in zip(g_feats, style_feats):
    (m_a, s_a), (m_b, s_b) = calc_mean_std(a), calc_mean_std(b)
    loss_s = loss_s + mse(m_a, m_b) + mse(s_a, s_b)
  return content_weight * loss_c + style_weight * loss_s, loss_c, loss_s, g


def _median_seconds(fn, steps: int) -> float:
  fn()  # warm-up
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def main(argv) -> None:
  size = int(argv[1]) if len(argv) > 1 else 512
  steps = int(argv[2]) if len(argv) > 2 else 3
  batch = int(argv[3]) if len(argv) > 3 else 1
  mode = argv[4] if len(argv) > 4 else 'forward'
  torch.manual_seed(0)
  encoder, dec = Encoder(), decoder()
  content, style = torch.rand(batch, 3, size, size), torch.rand(batch, 3, size, size)
  if mode == 'forward':
    dec.eval()

    def unit():
      with torch.no_grad():
        dec(adain(encoder(content)[-1], encoder(style)[-1]))

  elif mode == 'train':
    opt = torch.optim.Adam(dec.parameters(), lr=1e-4)

    def unit():
      total = loss(encoder, dec, content, style)[0]
      opt.zero_grad()
      total.backward()
      opt.step()

  else:
    raise SystemExit(f'unknown mode {mode!r}; use forward or train')
  s = _median_seconds(unit, steps)
  print(
    f'peer_torch_adain mode={mode} size={size} batch={batch} '
    f'threads={torch.get_num_threads()} s_per_iter={s:.6f}'
  )


if __name__ == '__main__':
  main(sys.argv)
