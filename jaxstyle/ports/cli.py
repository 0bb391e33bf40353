"""`jaxstyle port-weights SRC -o DST [--kind ...]`: public weights → jaxstyle's project format.

The output directory (`checkpoint.save_params`) stores the params plus a `jaxstyle.json` with the
model config, so `translate`/`evaluate` rebuild the right network without guessing flags, which
is the most common failure when loading reference checkpoints.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from jaxstyle import errors
from jaxstyle.errors import UserError

KINDS = (
  'junyanz-G',
  'junyanz-D',
  'vgg19-keras',
  'vgg19-torchvision',
  'inception-fid',
  'adain-decoder',
  'adain-vgg',
  'pix2pix-G',
  'cut-G',
  'cut-D',
  'cut-F',
)
# The converters are imported where used: they pull numpy, h5py or the jax stack, and
# `jaxstyle port-weights --help` (this module's only import-time work) stays instant.


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Registers the sub-command's flags (called by `jaxstyle.cli`)."""
  parser.add_argument('src', metavar='SRC', nargs='?', help='source weights (.pth or Keras .h5)')
  parser.add_argument(
    '-o',
    '--output',
    metavar='DST',
    help='output directory (project format; overwritten); with --pretrained, default: the cache',
  )
  parser.add_argument(
    '--pretrained',
    metavar='NAME',
    help='instead of SRC: download a published junyanz CycleGAN / pix2pix generator by name '
    '(horse2zebra, style_vangogh, pix2pix/facades_label2photo, ...) into the cache and port it',
  )
  parser.add_argument(
    '--kind',
    choices=KINDS,
    default=None,
    help='source network; default: guessed from the file extension and keys',
  )


def _guess_kind(src: str) -> str:
  """Extension first (.h5 is Keras); for .pth, the keys tell G, D, VGG and Inception apart."""
  if src.lower().endswith(('.h5', '.hdf5', '.keras')):
    return 'vgg19-keras'
  from jaxstyle.ports import adain, cut, inception_fid, torch_pth

  keys = torch_pth.load_state_dict(src).keys()
  keys = {k[len('module.') :] if k.startswith('module.') else k for k in keys}
  if inception_fid.is_inception_fid(keys):
    return 'inception-fid'
  if adain.is_decoder(keys):
    return 'adain-decoder'
  if adain.is_vgg(keys):
    return 'adain-vgg'
  if any(k.startswith('features.') for k in keys):
    return 'vgg19-torchvision'
  if cut.is_cut_generator(keys):  # before junyanz-G/D: CUT's nets add blur `.filt` buffers
    return 'cut-G'
  if cut.is_cut_discriminator(keys):
    return 'cut-D'
  if cut.is_patch_sampler(keys):
    return 'cut-F'
  if any('.conv_block.' in k for k in keys):
    return 'junyanz-G'
  if 'model.model.0.weight' in keys:  # the U-Net's outermost conv
    return 'pix2pix-G'
  if 'model.0.weight' in keys:
    return 'junyanz-D'
  raise UserError(f'{src}: cannot tell which network this is; pass --kind ({", ".join(KINDS)})')


def convert(src: str, kind: str) -> tuple[Any, dict]:
  """Loads `src` as `kind`; returns (params, meta) ready for `checkpoint.save_params`."""
  meta: dict[str, Any] = {'kind': kind, 'source': os.path.abspath(src)}
  if kind in ('junyanz-G', 'junyanz-D'):
    from jaxstyle.ports import junyanz

    load = junyanz.generator_from_pth if kind == 'junyanz-G' else junyanz.discriminator_from_pth
    params, model_cfg = load(src)
    meta['model_cfg'] = model_cfg.to_dict()
  elif kind == 'vgg19-keras':
    from jaxstyle.ports import keras_h5

    params = keras_h5.load_vgg19(src)
    meta['model_cfg'] = {'net': 'vgg19', 'weights': 'keras'}
  elif kind == 'vgg19-torchvision':
    from jaxstyle.ports import torchvision_vgg

    params = torchvision_vgg.load_vgg19(src)
    meta['model_cfg'] = {'net': 'vgg19', 'weights': 'torchvision'}
  elif kind == 'inception-fid':
    from jaxstyle.ports import inception_fid

    params = inception_fid.load_inception_fid(src)['params']
    meta['model_cfg'] = {'net': 'inception_fid'}
  elif kind in ('adain-decoder', 'adain-vgg'):
    from jaxstyle.ports import adain

    if kind == 'adain-decoder':  # `stylize --model DIR` runs it (with the VGG it was trained on)
      params, net = adain.load_decoder(src), adain.DECODER_NET
      meta['task'] = 'adain'
    else:
      params, net = adain.load_vgg(src), adain.VGG_NET
    meta['model_cfg'] = {'net': net, 'encoder': 'normalised'}
  elif kind in ('cut-G', 'cut-D', 'cut-F'):
    from jaxstyle.ports import cut

    load = {
      'cut-G': cut.generator_from_pth,
      'cut-D': cut.discriminator_from_pth,
      'cut-F': cut.patch_sampler_from_pth,
    }[kind]
    params, model_cfg = load(src)
    meta['model_cfg'] = model_cfg.to_dict()
  elif kind == 'pix2pix-G':  # {'params', 'batch_stats'}: the running statistics travel with it
    from jaxstyle.ports import pix2pix

    params, model_cfg = pix2pix.generator_from_pth(src)
    meta['model_cfg'] = model_cfg.to_dict()
  else:
    raise ValueError(f'unknown --kind {kind!r}; choose from {", ".join(KINDS)}')
  return params, meta


def _count(tree: Any) -> int:
  if isinstance(tree, dict):
    return sum(_count(v) for v in tree.values())
  return int(getattr(tree, 'size', 0))


def run(args: argparse.Namespace) -> int:
  """Converts and writes (a bad or unsafe source file is one error line from jaxstyle.cli)."""
  if getattr(args, 'pretrained', None):
    return _run_pretrained(args)
  if args.src is None or args.output is None:
    raise UserError('give SRC and -o DST (or --pretrained NAME)')
  errors.readable_file(args.src, 'source weights')
  errors.writable_dir(os.path.dirname(os.path.abspath(args.output)), 'output parent folder')
  kind = args.kind or _guess_kind(args.src)
  params, meta = convert(args.src, kind)
  from jaxstyle import checkpoint

  checkpoint.save_params(args.output, params, meta)
  cfg = meta['model_cfg']
  print(f'ported {args.src} ({kind}, {_count(params):,} params) -> {args.output}: {cfg}')
  return 0


def _run_pretrained(args: argparse.Namespace) -> int:
  """`--pretrained NAME`: download into the cache (once), port, and say where both went."""
  from jaxstyle.ports import pretrained

  if args.src is not None or args.kind is not None:
    raise UserError(
      '--pretrained NAME takes no SRC or --kind: the name says which file and network'
    )
  model = pretrained.resolve(args.pretrained)
  if args.output:
    errors.writable_dir(os.path.dirname(os.path.abspath(args.output)), 'output parent folder')
  dest, new = pretrained.port(model, args.output)
  src = pretrained.pth_path(model)
  done = 'ported' if new else 'already ported'
  print(f'{done} {model.qualified} ({model.kind}, from {src}) -> {dest}')
  return 0
