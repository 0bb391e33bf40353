"""PyTorch peer for the pix2pix training step (the framework a user would pick instead).

The networks and the step follow junyanz/pytorch-CycleGAN-and-pix2pix's `--model pix2pix`
defaults: G = `UnetGenerator` unet_256 (ngf 64, batch norm, dropout 0.5 in the three blocks
outside the innermost, train mode), D = the conditional 70x70 `NLayerDiscriminator` on
concat(A, B) (6 channels, ndf 64, n_layers 3, batch norm), vanilla GAN loss (BCE with logits) +
lambda_L1 100, Adam 2e-4 beta1 0.5, no image pool. One iteration is `optimize_parameters`: G's
forward, D's step on (real, detached fake), then G's step through the frozen D.

usage: python peer_torch_pix2pix.py [steps] [batch] [size] [ngf] [num_downs]
(defaults: 5 1 256 64 8; size must be a multiple of 2**num_downs, 256 for unet_256)
prints: 'peer_torch pix2pix batch=<b> size=<s> s_per_iter=<median seconds>'
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
  """One U-Net level; `x -> cat([x, model(x)])` except the outermost."""

  def __init__(self, outer, inner, sub=None, input_nc=None, outermost=False, innermost=False,
               dropout=False):  # fmt: skip
    super().__init__()
    self.outermost = outermost
    input_nc = outer if input_nc is None else input_nc
    down = nn.Conv2d(input_nc, inner, 4, 2, 1, bias=False)
    if outermost:
      model = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
    elif innermost:
      up = nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False)
      model = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, nn.BatchNorm2d(outer)]
    else:
      up = nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False)
      model = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner), sub, nn.ReLU(True), up,
               nn.BatchNorm2d(outer)] + ([nn.Dropout(0.5)] if dropout else [])  # fmt: skip
    self.model = nn.Sequential(*model)

  def forward(self, x):
    return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def unet256(ngf=64, num_downs=8):
  block = Block(ngf * 8, ngf * 8, innermost=True)
  for _ in range(num_downs - 5):
    block = Block(ngf * 8, ngf * 8, block, dropout=True)
  block = Block(ngf * 4, ngf * 8, block)
  block = Block(ngf * 2, ngf * 4, block)
  block = Block(ngf, ngf * 2, block)
  return Block(3, ngf, block, input_nc=3, outermost=True)


def patchgan(in_ch=6, ndf=64):
  layers = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
  for cin, cout, stride in ((ndf, 2 * ndf, 2), (2 * ndf, 4 * ndf, 2), (4 * ndf, 8 * ndf, 1)):
    layers += [nn.Conv2d(cin, cout, 4, stride, 1, bias=False), nn.BatchNorm2d(cout),
               nn.LeakyReLU(0.2, True)]  # fmt: skip
  layers += [nn.Conv2d(8 * ndf, 1, 4, 1, 1)]
  return nn.Sequential(*layers)


def init_weights(net, gain=0.02):
  """The reference's `init_weights('normal', 0.02)`."""
  for m in net.modules():
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
      nn.init.normal_(m.weight, 0.0, gain)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
      nn.init.normal_(m.weight, 1.0, gain)
      nn.init.zeros_(m.bias)


def main():
  steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
  batch = int(sys.argv[2]) if len(sys.argv) > 2 else 1
  size = int(sys.argv[3]) if len(sys.argv) > 3 else 256
  ngf = int(sys.argv[4]) if len(sys.argv) > 4 else 64
  num_downs = int(sys.argv[5]) if len(sys.argv) > 5 else 8
  torch.manual_seed(0)
  g, d = unet256(ngf, num_downs), patchgan(6, ngf)
  init_weights(g)
  init_weights(d)
  g.train()
  d.train()
  opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
  real_a = torch.rand(batch, 3, size, size) * 2 - 1
  real_b = torch.rand(batch, 3, size, size) * 2 - 1
  bce = nn.BCEWithLogitsLoss()

  def step():
    fake_b = g(real_a)
    for p in d.parameters():
      p.requires_grad_(True)
    opt_d.zero_grad()
    pred_fake = d(torch.cat([real_a, fake_b.detach()], 1))
    pred_real = d(torch.cat([real_a, real_b], 1))
    loss_d = 0.5 * (
      bce(pred_fake, torch.zeros_like(pred_fake)) + bce(pred_real, torch.ones_like(pred_real))
    )
    loss_d.backward()
    opt_d.step()
    for p in d.parameters():
      p.requires_grad_(False)
    opt_g.zero_grad()
    pred = d(torch.cat([real_a, fake_b], 1))
    loss_g = bce(pred, torch.ones_like(pred)) + 100.0 * F.l1_loss(fake_b, real_b)
    loss_g.backward()
    opt_g.step()
    return float(loss_g.detach()) + float(loss_d.detach())

  step()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
  print(f'peer_torch pix2pix batch={batch} size={size} s_per_iter={statistics.median(times):.4f}')


if __name__ == '__main__':
  main()
