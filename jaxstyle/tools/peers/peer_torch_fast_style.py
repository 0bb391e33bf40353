"""PyTorch peer for fast style transfer: pytorch/examples `fast_neural_style` TransformerNet.

The network is the example's `transformer_net.py` written out in plain torch (no torchvision, no
download), so its state_dict keys are those of the example's checkpoints (`conv1.conv2d.weight`,
`in1.weight`, `res1.conv1.conv2d.weight`, `deconv1.conv2d.weight`, ...; 1,679,235 parameters).
`TransformerNet(upsample='transpose')` swaps each UpsampleConvLayer for Johnson's original
ConvTranspose2d(k3, s2, padding 1, output_padding 1) under the same keys (weights (I, O, 3, 3)).
tests/fixtures/make_johnson_fixture.py imports these classes for the parity fixture.
Input: float32 NCHW RGB in [0, 255] (the example's `x.mul(255)`); output unbounded, no activation.
One unit: one forward in eval mode under torch.no_grad() (the example's `stylize`).
Random weights: speed does not depend on their values. Threads: torch's default (all cores).

usage: python peer_torch_fast_style.py [size=256] [steps=5] [batch=1] [upsample=resize]
prints: 'peer_torch_fast_style size=<px> batch=<n> upsample=<u> s_per_iter=<median seconds>'
"""
import statistics
import sys
import time

import torch
from torch import nn


class ConvLayer(nn.Module):
  def __init__(self, cin, cout, kernel_size, stride):
    super().__init__()
    self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
    self.conv2d = nn.Conv2d(cin, cout, kernel_size, stride)

  def forward(self, x):
    return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
  def __init__(self, channels):
    super().__init__()
    self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
    self.in1 = nn.InstanceNorm2d(channels, affine=True)
    self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
    self.in2 = nn.InstanceNorm2d(channels, affine=True)
    self.relu = nn.ReLU()

  def forward(self, x):
    out = self.relu(self.in1(self.conv1(x)))
    return self.in2(self.conv2(out)) + x


class UpsampleConvLayer(nn.Module):
  def __init__(self, cin, cout, kernel_size, stride, upsample=None):
    super().__init__()
    self.upsample = upsample
    self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
    self.conv2d = nn.Conv2d(cin, cout, kernel_size, stride)

  def forward(self, x):
    if self.upsample:
      x = nn.functional.interpolate(x, mode='nearest', scale_factor=self.upsample)
    return self.conv2d(self.reflection_pad(x))


class TransposeConvLayer(nn.Module):
  """Johnson's (Lua) SpatialFullConvolution(3, 3, 2, 2, 1, 1, 1, 1): doubles H and W."""

  def __init__(self, cin, cout):
    super().__init__()
    self.conv2d = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)

  def forward(self, x):
    return self.conv2d(x)


class TransformerNet(nn.Module):
  def __init__(self, upsample='resize'):
    super().__init__()
    self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
    self.in1 = nn.InstanceNorm2d(32, affine=True)
    self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
    self.in2 = nn.InstanceNorm2d(64, affine=True)
    self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
    self.in3 = nn.InstanceNorm2d(128, affine=True)
    self.res1 = ResidualBlock(128)
    self.res2 = ResidualBlock(128)
    self.res3 = ResidualBlock(128)
    self.res4 = ResidualBlock(128)
    self.res5 = ResidualBlock(128)
    if upsample == 'resize':
      self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
      self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
    elif upsample == 'transpose':
      self.deconv1 = TransposeConvLayer(128, 64)
      self.deconv2 = TransposeConvLayer(64, 32)
    else:
      raise ValueError(f'upsample must be resize or transpose, got {upsample!r}')
    self.in4 = nn.InstanceNorm2d(64, affine=True)
    self.in5 = nn.InstanceNorm2d(32, affine=True)
    self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)
    self.relu = nn.ReLU()

  def forward(self, x):
    y = self.relu(self.in1(self.conv1(x)))
    y = self.relu(self.in2(self.conv2(y)))
    y = self.relu(self.in3(self.conv3(y)))
    y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
    y = self.relu(self.in4(self.deconv1(y)))
    y = self.relu(self.in5(self.deconv2(y)))
    return self.deconv3(y)


def main():
  size = int(sys.argv[1]) if len(sys.argv) > 1 else 256
  steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
  batch = int(sys.argv[3]) if len(sys.argv) > 3 else 1
  upsample = sys.argv[4] if len(sys.argv) > 4 else 'resize'
  torch.manual_seed(0)
  net = TransformerNet(upsample).eval()
  images = torch.rand(batch, 3, size, size) * 255
  times = []
  with torch.no_grad():
    net(images)  # warm-up
    for _ in range(steps):
      t0 = time.perf_counter()
      out = net(images)
      times.append(time.perf_counter() - t0)
  assert out.shape == images.shape
  print(f'peer_torch_fast_style size={size} batch={batch} upsample={upsample} '
        f'threads={torch.get_num_threads()} s_per_iter={statistics.median(times):.5f}')


if __name__ == '__main__':
  main()
