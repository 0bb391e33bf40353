"""PyTorch peer for the CUT / FastCUT training step (what a user of the reference would run).

Written from the paper and taesungp/contrastive-unpaired-translation's behaviour at its defaults:
the anti-aliased ResNet-9 (stride-1 convs + blur-pool down, blur upsample + conv up), the
anti-aliased 70x70 PatchGAN, PatchSampleF (two-layer MLP of width 256 per tap, 256 random
positions shared by the input's and the output's pass, L2-normalised), PatchNCE (T 0.07,
negatives from the same image), LSGAN, Adam 2e-4 (0.5, 0.999) for G, D and F. One iteration is
the reference's `optimize_parameters`: G on real A (and real B for CUT's identity NCE), D's step on
the detached fake, then G and F's step; the NCE keys come from a second encoder pass on the real
images, as the reference computes them.

usage: python peer_torch_cut.py [steps] [batch] [size] [ngf] [cut|fastcut]
prints: 'peer_torch cut ... s_per_iter=<median seconds>'
"""

import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NCE_LAYERS = (0, 4, 8, 12, 16)


def _filter(taps):
  a = torch.tensor(taps, dtype=torch.float32)
  f = a[:, None] * a[None, :]
  return f / f.sum()


class BlurDown(nn.Module):
  """Reflect pad 1, depthwise [1,2,1]^2/16, stride 2."""

  def __init__(self, c):
    super().__init__()
    self.register_buffer('filt', _filter([1.0, 2.0, 1.0])[None, None].repeat(c, 1, 1, 1))

  def forward(self, x):
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode='reflect'), self.filt, stride=2, groups=x.shape[1])


class BlurUp(nn.Module):
  """Replicate pad 1, depthwise transposed [1,3,3,1]^2/16 x 4, stride 2, cropped to 2x."""

  def __init__(self, c):
    super().__init__()
    self.register_buffer('filt', (_filter([1.0, 3.0, 3.0, 1.0]) * 4)[None, None].repeat(c, 1, 1, 1))

  def forward(self, x):
    y = F.conv_transpose2d(
      F.pad(x, (1, 1, 1, 1), mode='replicate'), self.filt, stride=2, padding=2, groups=x.shape[1]
    )
    return y[:, :, 1:-1, 1:-1]


class ResBlock(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.b = nn.Sequential(
      nn.ReflectionPad2d(1),
      nn.Conv2d(c, c, 3),
      nn.InstanceNorm2d(c),
      nn.ReLU(),
      nn.ReflectionPad2d(1),
      nn.Conv2d(c, c, 3),
      nn.InstanceNorm2d(c),
    )

  def forward(self, x):
    return x + self.b(x)


class Generator(nn.Module):
  def __init__(self, g=64, n_blocks=9):
    super().__init__()
    m = [nn.ReflectionPad2d(3), nn.Conv2d(3, g, 7), nn.InstanceNorm2d(g), nn.ReLU()]
    for i in range(2):
      c = g * 2**i
      m += [nn.Conv2d(c, 2 * c, 3, 1, 1), nn.InstanceNorm2d(2 * c), nn.ReLU(), BlurDown(2 * c)]
    m += [ResBlock(4 * g) for _ in range(n_blocks)]
    for i in range(2):
      c = g * 2 ** (2 - i)
      m += [BlurUp(c), nn.Conv2d(c, c // 2, 3, 1, 1), nn.InstanceNorm2d(c // 2), nn.ReLU()]
    m += [nn.ReflectionPad2d(3), nn.Conv2d(g, 3, 7), nn.Tanh()]
    self.model = nn.Sequential(*m)

  def forward(self, x, layers=None):
    if not layers:
      return self.model(x)
    feats = []
    for i, layer in enumerate(self.model):
      x = layer(x)
      if i in layers:
        feats.append(x)
        if i == layers[-1]:
          return feats
    return feats


def discriminator(d=64):
  m = [nn.Conv2d(3, d, 4, 1, 1), nn.LeakyReLU(0.2), BlurDown(d)]
  c = d
  for i in (1, 2):
    m += [nn.Conv2d(c, d * 2**i, 4, 1, 1), nn.InstanceNorm2d(d * 2**i), nn.LeakyReLU(0.2)]
    m += [BlurDown(d * 2**i)]
    c = d * 2**i
  m += [nn.Conv2d(c, 8 * d, 4, 1, 1), nn.InstanceNorm2d(8 * d), nn.LeakyReLU(0.2)]
  return nn.Sequential(*m, nn.Conv2d(8 * d, 1, 4, 1, 1))


class PatchSampleF(nn.Module):
  def __init__(self, channels, nc=256):
    super().__init__()
    self.mlps = nn.ModuleList(
      nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)) for c in channels
    )

  def forward(self, feats, num_patches, ids=None):
    out, ids_out = [], []
    for i, feat in enumerate(feats):
      flat = feat.permute(0, 2, 3, 1).flatten(1, 2)
      pid = ids[i] if ids is not None else torch.from_numpy(np.random.permutation(flat.shape[1]))
      pid = pid[: min(num_patches, flat.shape[1])]
      x = self.mlps[i](flat[:, pid, :].flatten(0, 1))
      out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-7))
      ids_out.append(pid)
    return out, ids_out


def patch_nce(q, k, batch, t=0.07):
  k = k.detach()
  n, dim = q.shape
  l_pos = (q * k).sum(1, keepdim=True)
  qb, kb = q.view(batch, -1, dim), k.view(batch, -1, dim)
  npatch = qb.shape[1]
  l_neg = torch.bmm(qb, kb.transpose(2, 1))
  l_neg = l_neg.masked_fill(torch.eye(npatch, dtype=torch.bool)[None], -10.0).view(-1, npatch)
  logits = torch.cat([l_pos, l_neg], 1) / t
  return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long), reduction='none')


def main():
  steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
  batch = int(sys.argv[2]) if len(sys.argv) > 2 else 1
  size = int(sys.argv[3]) if len(sys.argv) > 3 else 256
  ngf = int(sys.argv[4]) if len(sys.argv) > 4 else 64
  mode = sys.argv[5] if len(sys.argv) > 5 else 'cut'
  lambda_nce, nce_idt, flip = (1.0, True, False) if mode == 'cut' else (10.0, False, True)
  torch.manual_seed(0)
  np.random.seed(0)
  G, D = Generator(ngf), discriminator(ngf)
  a = torch.rand(batch, 3, size, size) * 2 - 1
  b = torch.rand(batch, 3, size, size) * 2 - 1
  with torch.no_grad():  # F's widths from the taps of a first pass (the reference's lazy init)
    channels = [f.shape[1] for f in G(a, NCE_LAYERS)]
  Fnet = PatchSampleF(channels)
  adam = lambda m: torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999))
  opt_g, opt_d, opt_f = adam(G), adam(D), adam(Fnet)

  def nce(src, tgt, flipped):
    feat_q = G(tgt, NCE_LAYERS)
    if flipped:
      feat_q = [torch.flip(f, [3]) for f in feat_q]
    feat_k = G(src, NCE_LAYERS)
    k_pool, ids = Fnet(feat_k, 256)
    q_pool, _ = Fnet(feat_q, 256, ids)
    total = sum(patch_nce(q, k, batch).mean() * lambda_nce for q, k in zip(q_pool, k_pool))
    return total / len(NCE_LAYERS)

  def step():
    real = torch.cat([a, b]) if nce_idt else a
    flipped = flip and np.random.random() < 0.5
    if flipped:
      real = torch.flip(real, [3])
    fake = G(real)
    fake_b = fake[:batch]
    for p in D.parameters():
      p.requires_grad_(True)
    pf, pr = D(fake_b.detach()), D(b)
    loss_d = 0.5 * (F.mse_loss(pf, torch.zeros_like(pf)) + F.mse_loss(pr, torch.ones_like(pr)))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    for p in D.parameters():
      p.requires_grad_(False)
    opt_g.zero_grad()
    opt_f.zero_grad()
    pg = D(fake_b)
    loss_g = F.mse_loss(pg, torch.ones_like(pg))
    loss_nce = nce(a, fake_b, flipped)
    if nce_idt:
      loss_nce = 0.5 * (loss_nce + nce(b, fake[batch:], flipped))
    (loss_g + loss_nce).backward()
    opt_g.step()
    opt_f.step()
    return float(loss_g.detach()) + float(loss_d.detach())

  step()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
  print(
    f'peer_torch cut mode={mode} batch={batch} size={size} s_per_iter={statistics.median(times):.4f}'
  )


if __name__ == '__main__':
  main()
