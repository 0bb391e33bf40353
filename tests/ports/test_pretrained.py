"""Published models by name (`port-weights --pretrained`, `translate --pretrained`) against a local
HTTP server on 127.0.0.1: downloads, a truncated body, a server that dies mid-file, wrong sizes,
offline. The server serves tests/fixtures/pth/G.pth (a small junyanz ResNet generator) under the
reference's layout; the size range is that file's own tensor bytes, as it is for the real files.
"""

import http.server
import os
import socket
import struct
import threading

import jax
import numpy as np
import pytest
from PIL import Image

from jaxstyle import cli, models, networks
from jaxstyle.ports import junyanz, pretrained, torch_pth, weight_files

FIX = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'fixtures', 'pth')
G_PTH = os.path.join(FIX, 'G.pth')
URL_PATH = '/cyclegan/pretrained_models/horse2zebra.pth'


class _Handler(http.server.BaseHTTPRequestHandler):
  files: dict = {}  # url path -> (body, mode); mode 'ok' | 'truncate' | 'reset'
  hits: list = []

  def do_GET(self):  # noqa: N802 (http.server's name)
    self.hits.append(self.path)
    if self.path not in self.files:
      self.send_error(404)
      return
    body, mode = self.files[self.path]
    self.send_response(200)
    self.send_header('Content-Length', str(len(body)))
    self.end_headers()
    if mode == 'ok':
      self.wfile.write(body)
      return
    self.wfile.write(body[: len(body) // 2])
    self.wfile.flush()
    if mode == 'reset':  # the server dies: RST instead of FIN (linger 0)
      self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    self.close_connection = True

  def log_message(self, *args):
    pass


@pytest.fixture
def server(monkeypatch, tmp_path):
  """(files dict, hits list) of a live server; downloads allowed, the cache in tmp_path."""
  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  _Handler.files, _Handler.hits = {}, []
  monkeypatch.setenv(pretrained.BASE_URL_ENV, f'http://127.0.0.1:{httpd.server_address[1]}/')
  monkeypatch.setenv(weight_files.OFFLINE_ENV, '0')
  monkeypatch.setenv('JAXSTYLE_CACHE', str(tmp_path / 'cache'))
  # The size range of the served file: its float32 tensors, as TENSOR_BYTES is for the real ones.
  tensor_bytes = sum(v.nbytes for v in torch_pth.load_state_dict(G_PTH).values())
  monkeypatch.setitem(pretrained.TENSOR_BYTES, 'cyclegan', tensor_bytes)
  yield _Handler.files, _Handler.hits
  httpd.shutdown()
  httpd.server_close()


def _leftovers(tmp_path):
  folder = tmp_path / 'cache' / 'pretrained' / 'cyclegan'
  return sorted(os.listdir(folder)) if folder.exists() else []


def test_names_resolve_and_ambiguity():
  assert len(pretrained.CYCLEGAN_NAMES) == 18 and len(pretrained.PIX2PIX_NAMES) == 5
  assert pretrained.resolve('horse2zebra') == pretrained.Published('cyclegan', 'horse2zebra')
  assert pretrained.resolve('edges2shoes').family == 'pix2pix'
  assert pretrained.resolve('pix2pix/sat2map') == pretrained.Published('pix2pix', 'sat2map')
  with pytest.raises(pretrained.UnknownModelError, match='cyclegan/sat2map or pix2pix/sat2map'):
    pretrained.resolve('sat2map')
  with pytest.raises(pretrained.UnknownModelError, match='not one of the reference models'):
    pretrained.resolve('horse2unicorn')
  with pytest.raises(pretrained.UnknownModelError, match='not one of'):
    pretrained.resolve('pix2pix/horse2zebra')
  url = pretrained.Published('pix2pix', 'day2night').url(base_url='http://h/')
  assert url == 'http://h/pix2pix/models-pytorch/day2night.pth'
  assert pretrained.resolve('monet2photo').url().startswith(pretrained.BASE_URL)


def test_cyclegan_size_range_holds_the_reference_generator():
  """The architecture's float32 bytes, derived here from the network itself."""
  cfg = networks.reference_model()  # ResNet-9, ngf 64: what the published files are
  shapes = jax.eval_shape(
    lambda: models.make_generator(cfg).init(jax.random.key(0), np.zeros((1, 64, 64, 3)))
  )
  n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))
  low, high = pretrained.Published('cyclegan', 'horse2zebra').size_range()
  assert low == 4 * n and low < high < low * 1.1


def test_port_weights_pretrained_downloads_ports_and_reuses(server, tmp_path, capsys):
  files, hits = server
  files[URL_PATH] = (open(G_PTH, 'rb').read(), 'ok')
  assert cli.main(['port-weights', '--pretrained', 'horse2zebra']) == 0
  dest = tmp_path / 'cache' / 'pretrained' / 'cyclegan' / 'horse2zebra'
  assert (
    f'ported cyclegan/horse2zebra (junyanz-G, from {dest}.pth) -> {dest}' in capsys.readouterr().out
  )
  assert _leftovers(tmp_path) == ['horse2zebra', 'horse2zebra.pth', 'horse2zebra.pth.verified.json']
  from jaxstyle import checkpoint

  params, meta = checkpoint.load_params(str(dest))
  want, _ = junyanz.generator_from_pth(G_PTH)
  jax.tree.map(np.testing.assert_array_equal, params, want)
  assert meta['pretrained'] == 'cyclegan/horse2zebra' and meta['kind'] == 'junyanz-G'
  # Second call: nothing downloaded, the port is reused; -o writes a copy elsewhere.
  assert cli.main(['port-weights', '--pretrained', 'cyclegan/horse2zebra']) == 0
  assert 'already ported' in capsys.readouterr().out and hits == [URL_PATH]
  assert cli.main(['port-weights', '--pretrained', 'horse2zebra', '-o', str(tmp_path / 'x')]) == 0
  assert (tmp_path / 'x' / 'jaxstyle.json').exists() and hits == [URL_PATH]


def test_translate_pretrained_in_one_command(server, tmp_path, capsys):
  files, _ = server
  files[URL_PATH] = (open(G_PTH, 'rb').read(), 'ok')
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 256, (20, 24, 3), np.uint8)).save(tmp_path / 'in.png')
  args = [str(tmp_path / 'in.png'), '-o']
  assert cli.main(['translate', '--pretrained', 'horse2zebra', *args, str(tmp_path / 'a')]) == 0
  dest = tmp_path / 'cache' / 'pretrained' / 'cyclegan' / 'horse2zebra'
  assert f'downloaded and ported cyclegan/horse2zebra -> {dest}' in capsys.readouterr().out
  assert cli.main(['translate', '--weights', G_PTH, *args, str(tmp_path / 'b')]) == 0
  a = np.asarray(Image.open(tmp_path / 'a' / 'in.png'))
  np.testing.assert_array_equal(a, np.asarray(Image.open(tmp_path / 'b' / 'in.png')))
  assert a.shape == (20, 24, 3)


@pytest.mark.parametrize('mode', ['truncate', 'reset'])
def test_interrupted_download_leaves_nothing_trusted(server, tmp_path, capsys, mode):
  files, _ = server
  body = open(G_PTH, 'rb').read()
  files[URL_PATH] = (body, mode)
  assert cli.main(['port-weights', '--pretrained', 'horse2zebra']) == 2
  err = capsys.readouterr().err
  assert 'could not download cyclegan/horse2zebra' in err and '127.0.0.1' in err
  if mode == 'truncate':
    assert f'truncated: got {len(body) // 2:,} of {len(body):,} bytes' in err
  assert _leftovers(tmp_path) == []  # no .pth, no .part, no port
  files[URL_PATH] = (body, 'ok')  # the retry downloads it whole
  assert cli.main(['port-weights', '--pretrained', 'horse2zebra']) == 0


def test_wrong_size_refused_downloaded_or_cached(server, tmp_path, capsys):
  files, _ = server
  body = open(G_PTH, 'rb').read()
  files[URL_PATH] = (body[: len(body) // 2], 'ok')  # a short file served "complete"
  assert cli.main(['port-weights', '--pretrained', 'horse2zebra']) == 2
  assert 'outside the' in capsys.readouterr().err and _leftovers(tmp_path) == []
  # A file placed by hand under the cache name is checked too, and never ported.
  folder = tmp_path / 'cache' / 'pretrained' / 'cyclegan'
  folder.mkdir(parents=True, exist_ok=True)
  (folder / 'horse2zebra.pth').write_bytes(body + b'\0' * (2 << 20))
  assert cli.main(['port-weights', '--pretrained', 'horse2zebra']) == 2
  err = capsys.readouterr().err
  assert 'horse2zebra.pth' in err and 'Delete it and run again' in err
  assert _leftovers(tmp_path) == ['horse2zebra.pth']


def test_right_size_wrong_network_is_a_format_error(server, tmp_path, capsys, monkeypatch):
  files, _ = server
  files[URL_PATH] = (open(os.path.join(FIX, 'D.pth'), 'rb').read(), 'ok')
  d_bytes = sum(v.nbytes for v in torch_pth.load_state_dict(os.path.join(FIX, 'D.pth')).values())
  monkeypatch.setitem(pretrained.TENSOR_BYTES, 'cyclegan', d_bytes)
  assert cli.main(['port-weights', '--pretrained', 'horse2zebra']) == 2
  assert 'ResnetGenerator' in capsys.readouterr().err
  assert 'horse2zebra' not in _leftovers(tmp_path)  # no port folder


def test_offline_says_what_to_do(server, tmp_path, capsys, monkeypatch):
  monkeypatch.setenv(weight_files.OFFLINE_ENV, '1')
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'in.png')
  args = ['translate', '--pretrained', 'style_vangogh', str(tmp_path / 'in.png')]
  assert cli.main([*args, '-o', str(tmp_path / 'out')]) == 2
  err = capsys.readouterr().err
  dest = tmp_path / 'cache' / 'pretrained' / 'cyclegan' / 'style_vangogh.pth'
  assert 'downloads are disabled by JAXSTYLE_OFFLINE=1' in err and f'place it at {dest}' in err
  assert '--weights PATH' in err and 'jaxstyle port-weights PATH -o DIR' in err
  assert server[1] == []  # nothing was requested


def test_unknown_name_and_conflicting_flags(capsys):
  assert cli.main(['port-weights', '--pretrained', 'horse2unicorn']) == 2
  assert 'horse2zebra' in capsys.readouterr().err  # the list of names
  assert cli.main(['port-weights', G_PTH, '--pretrained', 'horse2zebra']) == 2
  assert 'takes no SRC' in capsys.readouterr().err
  assert cli.main(['port-weights', G_PTH]) == 2
  assert 'give SRC and -o DST' in capsys.readouterr().err


def test_pix2pix_by_name_ports_and_translates_in_both_modes(server, tmp_path, capsys, monkeypatch):
  files, hits = server
  pth = os.path.join(FIX, 'pix2pix_G.pth')  # U-Net-256 structure, ngf 4 (make_pix2pix_fixture.py)
  files['/pix2pix/models-pytorch/facades_label2photo.pth'] = (open(pth, 'rb').read(), 'ok')
  tensor_bytes = sum(v.nbytes for v in torch_pth.load_state_dict(pth).values())
  monkeypatch.setitem(pretrained.TENSOR_BYTES, 'pix2pix', tensor_bytes)
  assert cli.main(['port-weights', '--pretrained', 'facades_label2photo']) == 2  # ambiguous
  assert (
    'say cyclegan/facades_label2photo or pix2pix/facades_label2photo' in capsys.readouterr().err
  )
  assert cli.main(['port-weights', '--pretrained', 'pix2pix/facades_label2photo']) == 0
  assert '(pix2pix-G, from' in capsys.readouterr().out
  from jaxstyle import checkpoint
  from jaxstyle.ports import pix2pix

  dest = tmp_path / 'cache' / 'pretrained' / 'pix2pix' / 'facades_label2photo'
  variables, meta = checkpoint.load_params(str(dest))
  want, _ = pix2pix.generator_from_pth(pth)
  jax.tree.map(np.testing.assert_array_equal, variables, want)
  assert set(variables) == {'params', 'batch_stats'} and meta['model_cfg']['num_downs'] == 8
  # translate dispatches a pix2pix name to the pix2pix task: --eval against torch's image.
  with np.load(os.path.join(os.path.dirname(FIX), 'pix2pix_ref.npz')) as z:
    x, y_eval = z['x'][0], z['y_eval'][0]
  Image.fromarray(x).save(tmp_path / 'in.png')
  args = ['translate', '--pretrained', 'pix2pix/facades_label2photo', str(tmp_path / 'in.png')]
  assert cli.main([*args, '-o', str(tmp_path / 'e'), '--eval']) == 0
  assert 'facades_label2photo, --eval' in capsys.readouterr().out
  got = np.asarray(Image.open(tmp_path / 'e' / 'in.png')).astype(int)
  assert np.abs(got - y_eval).max() <= 1  # the port's error model (test_pix2pix_port.py)
  assert cli.main([*args, '-o', str(tmp_path / 'd')]) == 0  # the paper's mode: dropout on
  paper = np.asarray(Image.open(tmp_path / 'd' / 'in.png')).astype(int)
  assert paper.shape == got.shape and np.abs(paper - got).mean() > 1
  assert hits == ['/pix2pix/models-pytorch/facades_label2photo.pth']
