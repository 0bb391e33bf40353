"""PyTorch peer for neural-style-transfer speed: Gatys/Keras-style losses on a VGG19 feature stack.

Random VGG19 weights (no pretrained file reaches this machine); speed does not depend on the values.
Content: block5_conv2; style: block1_conv1..block5_conv1 gram matrices; TV loss (power 1.25).
Optimizer: torch.optim.LBFGS, max_iter=20 evaluations per outer step (the book's maxfun=20).

usage: python peer_torch_nst.py [size=256] [outer_steps=3]
prints: 'peer_torch nst size=<px> s_per_eval=<median seconds per loss+grad evaluation>'
"""

import statistics
import sys
import time

import torch
import torch.nn as nn

CFG = [
  64,
  64,
  'M',
  128,
  128,
  'M',
  256,
  256,
  256,
  256,
  'M',
  512,
  512,
  512,
  512,
  'M',
  512,
  512,
  512,
  512,
]
STYLE = {'block1_conv1', 'block2_conv1', 'block3_conv1', 'block4_conv1', 'block5_conv1'}
CONTENT = 'block5_conv2'


class VGG19Features(nn.Module):
  def __init__(self):
    super().__init__()
    self.layers, self.names = nn.ModuleList(), []
    cin, block, conv = 3, 1, 0
    for v in CFG:
      if v == 'M':
        self.layers.append(nn.MaxPool2d(2))
        self.names.append(None)
        block, conv = block + 1, 0
      else:
        conv += 1
        self.layers.append(nn.Conv2d(cin, v, 3, padding=1))
        self.names.append(f'block{block}_conv{conv}')
        cin = v

  def forward(self, x):
    out = {}
    for layer, name in zip(self.layers, self.names):
      x = layer(x)
      if name:
        x = torch.relu(x)
        out[name] = x
    return out


def gram(f):
  c = f.shape[1]
  f = f.reshape(c, -1)
  return f @ f.T


def main():
  size = int(sys.argv[1]) if len(sys.argv) > 1 else 256
  outer = int(sys.argv[2]) if len(sys.argv) > 2 else 3
  torch.manual_seed(0)
  vgg = VGG19Features().eval()
  for p in vgg.parameters():
    p.requires_grad_(False)
  base = torch.rand(1, 3, size, size) * 255 - 128
  style = torch.rand(1, 3, size, size) * 255 - 128
  with torch.no_grad():
    fb, fs = vgg(base), vgg(style)
    content_t = fb[CONTENT]
    grams = {k: gram(fs[k]) for k in STYLE}
  x = base.clone().requires_grad_(True)
  opt = torch.optim.LBFGS([x], max_iter=20, history_size=10)
  evals = []

  def closure():
    t = time.perf_counter()
    opt.zero_grad()
    f = vgg(x)
    loss = 0.025 * ((f[CONTENT] - content_t) ** 2).sum()
    for k in STYLE:
      m = f[k].shape[2] * f[k].shape[3]
      loss = loss + (1.0 / len(STYLE)) * ((gram(f[k]) - grams[k]) ** 2).sum() / (4.0 * 9 * m * m)
    a = (x[:, :, :-1, :-1] - x[:, :, 1:, :-1]) ** 2
    b = (x[:, :, :-1, :-1] - x[:, :, :-1, 1:]) ** 2
    loss = loss + 1e-4 * ((a + b) ** 1.25).sum()
    loss.backward()
    evals.append(time.perf_counter() - t)
    return loss

  for _ in range(outer):
    opt.step(closure)
  print(
    f'peer_torch nst size={size} evals={len(evals)} s_per_eval={statistics.median(evals[2:]):.4f}'
  )


if __name__ == '__main__':
  main()
