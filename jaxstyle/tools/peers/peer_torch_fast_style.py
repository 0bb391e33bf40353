"""PyTorch peer for fast style transfer: pytorch/examples `fast_neural_style` TransformerNet.

The network is the example's `transformer_net.py` written out in plain torch (no torchvision, no
download), so its state_dict keys are those of the example's checkpoints (`conv1.conv2d.weight`,
`in1.weight`, `res1.conv1.conv2d.weight`, `deconv1.conv2d.weight`, ...; 1,679,235 parameters).
`TransformerNet(upsample='transpose')` swaps each UpsampleConvLayer for Johnson's original
ConvTranspose2d(k3, s2, padding 1, output_padding 1) under the same keys (weights (I, O, 3, 3)).
tests/fixtures/make_johnson_fixture.py imports these classes for the parity fixture, and
tests/fixtures/make_fast_style_loss_fixture.py imports them (and the loss below) for the loss one.
Input: float32 NCHW RGB in [0, 255] (the example's `x.mul(255)`). Output: `output='linear'`
(default) is the example's unbounded head `deconv3(...)`; `output='tanh'` is Johnson's
`127.5 + 150 * tanh(deconv3(...))` (same keys).

Perceptual loss ("johnson" normalisation): `VGG19Features(layers)` is torchvision's
`vgg19().features` (keys `features.{i}.weight` / `.bias`, conv indices 0,2 | 5,7 | 10,12,14,16 |
19,21,23,25 | 28,30,32,34), cut after the deepest requested post-ReLU layer (block1_conv2 = after
conv 2, block2_conv2 = 7, block3_conv3 = 14, block4_conv3 = 23). Its forward takes RGB [0, 255] and
applies Keras/Caffe preprocessing (RGB->BGR, minus (103.939, 116.779, 123.68), no /255).
`gram(F)` = F^T F / (C*h*w) per image. `perceptual_loss` per image: content = MSE of block3_conv3
features of y vs x (x's without gradient); style = sum_l w_l * mean((gram(F_l(y)) - T_l)^2) with
T_l = gram of the style image's features (`style_targets`); tv = sum((y[..,:-1,:-1] -
y[..,1:,:-1])^2 + (y[..,:-1,:-1] - y[..,:-1,1:])^2); total = 1.0 content + 5.0 style + 1e-6 tv by
default; the batch loss and reported terms are means over images.

Modes. forward: one unit is one forward in eval mode under torch.no_grad() (the example's
`stylize`), linear output. train: one unit is one optimiser step (TransformerNet forward with tanh
output, frozen VGG19 up to block4_conv3 on y and on x, loss against the targets of a seeded random
256x256 style image, backward, Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-8) on the net's params).
Timing: one warm-up unit, then the median of `steps` units.
Random weights: speed does not depend on their values. Threads: torch's default (all cores;
OMP_NUM_THREADS limits them).

usage: python peer_torch_fast_style.py [size=256] [steps=5] [batch=1] [upsample=resize]
                                       [mode=forward]     (mode: forward | train)
prints (forward): 'peer_torch_fast_style size=<px> batch=<n> upsample=<u> threads=<t>
                   s_per_iter=<median seconds>'
prints (train):   'peer_torch_fast_style mode=train size=<px> batch=<n> upsample=<u> threads=<t>
                   s_per_iter=<median seconds per step>'
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
  def __init__(self, upsample='resize', output='linear'):
    super().__init__()
    if output not in ('linear', 'tanh'):
      raise ValueError(f'output must be linear or tanh, got {output!r}')
    self.output = output
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
    y = self.deconv3(y)
    return 127.5 + 150.0 * torch.tanh(y) if self.output == 'tanh' else y


VGG19_CFG = (
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
  'M',
)
# post-ReLU layer name -> index of its ReLU in torchvision's vgg19().features
VGG19_LAYERS = {'block1_conv2': 3, 'block2_conv2': 8, 'block3_conv3': 15, 'block4_conv3': 24}
VGG_MEAN_BGR = (103.939, 116.779, 123.68)
CONTENT_LAYER = 'block3_conv3'
STYLE_LAYERS = ('block1_conv2', 'block2_conv2', 'block3_conv3', 'block4_conv3')


def vgg19_layout(n_convs=16):
  """[(key, shape)] of the first `n_convs` convs of torchvision's vgg19().features, in state-dict
  order (per conv index ascending: weight (O, I, 3, 3), then bias (O,))."""
  layout, cin, i = [], 3, 0
  for v in VGG19_CFG:
    if v == 'M':
      i += 1
      continue
    if len(layout) == 2 * n_convs:
      break
    layout += [(f'features.{i}.weight', (v, cin, 3, 3)), (f'features.{i}.bias', (v,))]
    cin, i = v, i + 2
  return layout


class VGG19Features(nn.Module):
  """torchvision vgg19().features cut after the deepest of `layers` (post-ReLU names above).

  forward(x RGB [0, 255] NCHW) -> {name: feature map}; Keras/Caffe preprocessing is applied inside.
  `state_dict` may hold all 16 convs (torchvision layout); keys past the cut are ignored.
  `pool`: 'max' (torchvision's) or 'avg' (Gatys et al.'s option; jaxstyle's `vgg.pool`).
  """

  def __init__(self, layers, state_dict=None, pool='max'):
    super().__init__()
    self.layers = tuple(layers)
    last = max(VGG19_LAYERS[n] for n in self.layers)
    mods, cin = [], 3
    for v in VGG19_CFG:
      if len(mods) > last:
        break
      if v == 'M':
        mods.append(nn.MaxPool2d(2, 2) if pool == 'max' else nn.AvgPool2d(2, 2))
      else:
        mods += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
        cin = v
    self.features = nn.Sequential(*mods[: last + 1])
    if state_dict is not None:
      own = self.state_dict()
      self.load_state_dict({k: torch.as_tensor(v) for k, v in state_dict.items() if k in own})
    self.requires_grad_(False)

  def forward(self, x):
    mean = torch.tensor(VGG_MEAN_BGR, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    h = x.flip(1) - mean  # RGB -> BGR, Caffe means (exact in float64), no /255
    want = {VGG19_LAYERS[n]: n for n in self.layers}
    out = {}
    for i, m in enumerate(self.features):
      h = m(h)
      if i in want:
        out[want[i]] = h
    return out


def gram(f):
  """(N, C, h, w) -> (N, C, C) normalised Gram F^T F / (C*h*w) per image."""
  n, c, h, w = f.shape
  f = f.reshape(n, c, h * w)
  return f @ f.transpose(1, 2) / (c * h * w)


def style_targets(vgg, style_image, layers=STYLE_LAYERS):
  """{layer: (C, C) Gram} of a (1, 3, H, W) RGB [0, 255] style image (no gradient)."""
  with torch.no_grad():
    feats = vgg(style_image)
  return {n: gram(feats[n])[0] for n in layers}


def perceptual_loss(
  y,
  x,
  targets,
  vgg,
  content_weight=1.0,
  style_weight=5.0,
  tv_weight=1e-6,
  content_layer=CONTENT_LAYER,
  style_layer_weights=None,
):
  """Johnson perceptual loss of net output y for content images x (both NCHW RGB [0, 255]).

  targets: {style layer: (C, C) Gram of the style image}; style_layer_weights: {layer: w}
  (default 1.0 each). Returns (total, {'content', 'style', 'tv'}), all means over the batch of
  the weighted per-image terms (total = their sum).
  """
  weights = style_layer_weights or {n: 1.0 for n in targets}
  fy = vgg(y)
  with torch.no_grad():
    fx = vgg(x)[content_layer]
  content = ((fy[content_layer] - fx) ** 2).flatten(1).mean(1)
  style = sum(weights[n] * ((gram(fy[n]) - t) ** 2).flatten(1).mean(1) for n, t in targets.items())
  a = (y[:, :, :-1, :-1] - y[:, :, 1:, :-1]) ** 2
  b = (y[:, :, :-1, :-1] - y[:, :, :-1, 1:]) ** 2
  tv = (a + b).flatten(1).sum(1)
  terms = {
    'content': content_weight * content.mean(),
    'style': style_weight * style.mean(),
    'tv': tv_weight * tv.mean(),
  }
  return terms['content'] + terms['style'] + terms['tv'], terms


def _median_time(fn, steps):
  fn()  # warm-up
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def main():
  size = int(sys.argv[1]) if len(sys.argv) > 1 else 256
  steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
  batch = int(sys.argv[3]) if len(sys.argv) > 3 else 1
  upsample = sys.argv[4] if len(sys.argv) > 4 else 'resize'
  mode = sys.argv[5] if len(sys.argv) > 5 else 'forward'
  if mode not in ('forward', 'train'):
    raise SystemExit(f'mode must be forward or train, got {mode!r}')
  torch.manual_seed(0)
  images = torch.rand(batch, 3, size, size) * 255
  threads = torch.get_num_threads()
  if mode == 'forward':
    net = TransformerNet(upsample).eval()
    with torch.no_grad():
      s_per_iter = _median_time(lambda: net(images), steps)
      assert net(images).shape == images.shape
    print(
      f'peer_torch_fast_style size={size} batch={batch} upsample={upsample} '
      f'threads={threads} s_per_iter={s_per_iter:.5f}'
    )
    return
  net = TransformerNet(upsample, output='tanh').train()
  vgg = VGG19Features(STYLE_LAYERS + (CONTENT_LAYER,)).eval()  # random init, frozen
  targets = style_targets(vgg, torch.rand(1, 3, 256, 256) * 255)
  opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

  def step():
    opt.zero_grad(set_to_none=True)
    loss, _ = perceptual_loss(net(images), images, targets, vgg)
    loss.backward()
    opt.step()
    return loss

  s_per_iter = _median_time(step, steps)
  print(
    f'peer_torch_fast_style mode=train size={size} batch={batch} upsample={upsample} '
    f'threads={threads} s_per_iter={s_per_iter:.5f}'
  )


if __name__ == '__main__':
  main()
