"""The reference repository's published generators by name: download on request, check, port.

junyanz/pytorch-CycleGAN-and-pix2pix publishes 18 CycleGAN generators
(`scripts/download_cyclegan_model.sh`: ResNet-9, ngf 64, instance norm) and 5 pix2pix generators
(`scripts/download_pix2pix_model.sh`: U-Net-256, ngf 64, batch norm). Three names exist in both
lists (sat2map, map2sat, facades_label2photo); those need the family: `pix2pix/sat2map`.

No checksums are published, so a download is checked three ways (docs/pix2pix.md, "Published
models"): the byte count against the server's Content-Length (a cut connection), a size range
derived from the architecture (its float32 tensor bytes, plus at most 5 % + 1 MiB of container),
and the format and architecture themselves (the restricted `.pth` reader, then the port's exact key
and shape check). The `.pth` and its ported folder live in `$JAXSTYLE_CACHE/pretrained/<family>/`;
both are written under a temporary name and renamed when complete, so an interrupted download or
port is never found and trusted later.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile

from jaxstyle.errors import UserError
from jaxstyle.ports import weight_files

log = logging.getLogger(__name__)

BASE_URL = 'http://efrosgans.eecs.berkeley.edu/'
BASE_URL_ENV = 'JAXSTYLE_PRETRAINED_URL'  # a mirror with the same layout (and the tests' server)
_FOLDERS = {'cyclegan': 'cyclegan/pretrained_models', 'pix2pix': 'pix2pix/models-pytorch'}
_KINDS = {'cyclegan': 'junyanz-G', 'pix2pix': 'pix2pix-G'}

CYCLEGAN_NAMES = (
  'apple2orange',
  'orange2apple',
  'summer2winter_yosemite',
  'winter2summer_yosemite',
  'horse2zebra',
  'zebra2horse',
  'monet2photo',
  'style_monet',
  'style_cezanne',
  'style_ukiyoe',
  'style_vangogh',
  'sat2map',
  'map2sat',
  'cityscapes_photo2label',
  'cityscapes_label2photo',
  'facades_photo2label',
  'facades_label2photo',
  'iphone2dslr_flower',
)
PIX2PIX_NAMES = ('edges2shoes', 'sat2map', 'map2sat', 'facades_label2photo', 'day2night')

# float32 bytes of the tensors each file must hold. CycleGAN: ResNet-9 (ngf 64), 11,378,179
# params. pix2pix: U-Net-256 (ngf 64, batch norm), 54,413,955 params plus 4,928 running means and
# as many variances; files from torch >= 0.4.1 add 13 int64 `num_batches_tracked` (in the margin).
# tests/ports/test_pretrained.py and test_pix2pix_port.py re-derive both from the networks.
TENSOR_BYTES = {'cyclegan': 4 * 11_378_179, 'pix2pix': 4 * (54_413_955 + 2 * 4_928)}


class UnknownModelError(UserError, KeyError):
  """A name that neither download script lists (or one that is ambiguous without its family)."""

  def __str__(self) -> str:  # KeyError would quote the message
    return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class Published:
  """One published generator: `family` ('cyclegan' | 'pix2pix') and its file's `name`."""

  family: str
  name: str

  @property
  def qualified(self) -> str:
    return f'{self.family}/{self.name}'

  @property
  def kind(self) -> str:
    """The `port-weights --kind` that converts it."""
    return _KINDS[self.family]

  def url(self, base_url: str | None = None) -> str:
    base = base_url or os.environ.get(BASE_URL_ENV) or BASE_URL
    return f'{base.rstrip("/")}/{_FOLDERS[self.family]}/{self.name}.pth'

  def size_range(self) -> tuple[int, int]:
    """Inclusive byte range a complete file may have (not published: from the architecture)."""
    low = TENSOR_BYTES[self.family]
    return low, int(low * 1.05) + (1 << 20)


def names() -> list[str]:
  """Every accepted name: bare where unambiguous, `family/name` always."""
  both = set(CYCLEGAN_NAMES) & set(PIX2PIX_NAMES)
  bare = [n for n in CYCLEGAN_NAMES + PIX2PIX_NAMES if n not in both]
  return bare + [f'cyclegan/{n}' for n in CYCLEGAN_NAMES] + [f'pix2pix/{n}' for n in PIX2PIX_NAMES]


def resolve(name: str) -> Published:
  """`horse2zebra` / `cyclegan/horse2zebra` / `pix2pix/facades_label2photo` -> Published.

  Raises:
    UnknownModelError: an unknown name (the message lists them), or one published by both.
  """
  family, _, bare = name.strip().rpartition('/')
  lists = {'cyclegan': CYCLEGAN_NAMES, 'pix2pix': PIX2PIX_NAMES}
  if family and family not in lists:
    raise UnknownModelError(f'--pretrained {name!r}: the family is cyclegan or pix2pix')
  found = [f for f in ([family] if family else lists) if bare in lists[f]]
  if not found:
    raise UnknownModelError(
      f'--pretrained {name!r} is not one of the reference models: '
      f'CycleGAN {", ".join(CYCLEGAN_NAMES)}; pix2pix {", ".join(PIX2PIX_NAMES)}'
    )
  if len(found) > 1:
    raise UnknownModelError(
      f'--pretrained {bare!r} is published as both a CycleGAN and a pix2pix generator: '
      f'say cyclegan/{bare} or pix2pix/{bare}'
    )
  return Published(found[0], bare)


def _hint(model: Published) -> weight_files.Hint:
  return weight_files.Hint(
    network=f'{model.qualified} generator',
    flag='--weights',
    alternative=(
      ' (translate), or convert it with `jaxstyle port-weights PATH -o DIR`; to let jaxstyle '
      f'download it, run online without {weight_files.OFFLINE_ENV}=1'
    ),
    logger=__name__,
  )


def pth_path(model: Published, cache: str | None = None) -> str:
  """Where the downloaded reference file is kept."""
  folder = os.path.join(weight_files.cache_dir(cache), 'pretrained', model.family)
  return os.path.join(folder, model.name + '.pth')


def fetch_pth(model: Published, *, cache: str | None = None, base_url: str | None = None) -> str:
  """The reference `.pth` in the cache, downloaded if missing; its size is checked either way.

  Raises:
    weight_files.WeightDownloadError: offline, HTTP error, truncated or out-of-range download.
    weight_files.WeightChecksumError: a cached file (e.g. placed by hand) of the wrong size.
  """
  dest, url, hint = pth_path(model, cache), model.url(base_url), _hint(model)
  low, high = model.size_range()
  if not os.path.exists(dest):
    if not weight_files.offline():  # offline, the error line says it all
      log.info('downloading %s (%d MB) from %s', model.qualified, low >> 20, url)
    return weight_files.download(url, dest, hint, size_range=(low, high))
  size = os.path.getsize(dest)
  if not low <= size <= high:
    raise weight_files.WeightChecksumError(
      f'{dest}: {size:,} bytes, outside the {low:,}-{high:,} a complete {model.qualified} '
      f'generator has (truncated or another file). Delete it and run again to re-download '
      f'it from {url}.'
    )
  return dest


def ported_path(model: Published, cache: str | None = None) -> str:
  """Where the ported (`port-weights` format) generator is kept."""
  return os.path.splitext(pth_path(model, cache))[0]


def port(
  model: Published,
  out: str | None = None,
  *,
  cache: str | None = None,
  base_url: str | None = None,
) -> tuple[str, bool]:
  """Downloads (if needed) and ports `model` into `out` (default: the cache); (folder, new).

  A complete ported folder in the cache is reused (`new` False): it has `jaxstyle.json`, which
  `checkpoint.save_params` writes last, and the whole folder was renamed into place.
  """
  from jaxstyle import checkpoint

  dest = out or ported_path(model, cache)
  if out is None and os.path.exists(os.path.join(dest, 'jaxstyle.json')):
    return dest, False
  src = fetch_pth(model, cache=cache, base_url=base_url)
  if model.family == 'cyclegan':
    from jaxstyle.ports.junyanz import generator_from_pth
  else:
    from jaxstyle.ports.pix2pix import generator_from_pth
  params, model_cfg = generator_from_pth(src)
  meta = {
    'kind': model.kind,
    'source': os.path.abspath(src),
    'model_cfg': model_cfg.to_dict(),
    'pretrained': model.qualified,
  }
  parent = os.path.dirname(os.path.abspath(dest))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=os.path.basename(dest) + '.', suffix='.part')
  try:
    checkpoint.save_params(tmp, params, meta)
    if os.path.exists(dest):
      shutil.rmtree(dest)
    os.replace(tmp, dest)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return dest, True
