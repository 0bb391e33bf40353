"""fast_style.video: probe, frame round trips through H.264, atomic writes, errors, odd sizes."""

import os
import sys
import threading

import numpy as np
import pytest

from jaxstyle.errors import UserError
from jaxstyle.fast_style import video

FPS, N, H, W = 12, 8, 48, 64


def _clip(n=N, h=H, w=W):
  """Smooth gradients that move a few pixels per frame: easy for H.264, different every frame."""
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  frames = []
  for t in range(n):
    r = 40 + 160 * (xx + 3 * t) / (w + 3 * n)
    g = 50 + 150 * (yy + 2 * t) / (h + 2 * n)
    b = 128 + 60 * np.sin((xx + yy) / 12 + t / 2)
    frames.append(np.stack([r, g, b], -1).round().astype(np.uint8))
  return frames


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
  frames = _clip()
  path = str(tmp_path_factory.mktemp('clip') / 'in.mp4')
  assert video.write_video(path, iter(frames), FPS, crf=8) == N
  return path, frames


def _mae(a, b):
  return float(np.mean(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))


def test_probe_reports_fps_size_and_count(clip):
  info = video.probe(clip[0])
  assert info == video.VideoInfo(fps=FPS, n_frames=N, width=W, height=H)


def test_iter_frames_gives_uint8_rgb_close_to_what_was_written(clip):
  path, original = clip
  got = list(video.iter_frames(path))
  assert len(got) == N
  assert all(f.dtype == np.uint8 and f.shape == (H, W, 3) for f in got)
  assert max(_mae(a, b) for a, b in zip(got, original)) < 3


def test_identity_round_trip(clip, tmp_path):
  path, original = clip
  out = str(tmp_path / 'same.mp4')
  stats = video.stylize_video(path, out, lambda f: f, progress=False, crf=8)
  assert stats['frames'] == N and stats['fps'] == FPS and stats['output'] == out
  assert stats['seconds'] > 0 and stats['frames_per_sec'] == pytest.approx(N / stats['seconds'])
  got = list(video.iter_frames(out))
  assert len(got) == N and got[0].shape == (H, W, 3)
  assert max(_mae(a, b) for a, b in zip(got, original)) < 4  # two lossy encodes
  assert os.listdir(tmp_path) == ['same.mp4']


def test_inverting_frame_fn(clip, tmp_path):
  path, original = clip
  out = str(tmp_path / 'sub' / 'inv.mp4')  # a missing folder is created
  assert video.stylize_video(path, out, lambda f: 255 - f, progress=False, crf=8)['frames'] == N
  got = list(video.iter_frames(out))
  assert len(got) == N
  assert max(_mae(a, 255 - b) for a, b in zip(got, original)) < 4
  assert _mae(got[0], original[0]) > 50  # really inverted, not copied


def test_failing_frame_fn_leaves_no_file(clip, tmp_path):
  seen = []

  def fails_on_frame_3(frame):
    seen.append(frame)
    if len(seen) == 4:
      raise RuntimeError('model blew up')
    return frame

  with pytest.raises(RuntimeError, match='model blew up'):
    video.stylize_video(clip[0], str(tmp_path / 'out.mp4'), fails_on_frame_3, progress=False)
  assert os.listdir(tmp_path) == []
  assert not any(t.name == 'video-read-ahead' for t in threading.enumerate())  # reader stopped


def test_failure_keeps_an_existing_output(clip, tmp_path):
  out = tmp_path / 'out.mp4'
  out.write_bytes(b'previous result')

  def interrupted():
    yield from _clip(3)
    raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    video.write_video(str(out), interrupted(), FPS)
  assert os.listdir(tmp_path) == ['out.mp4'] and out.read_bytes() == b'previous result'


def test_reader_errors_surface(clip, tmp_path, monkeypatch):
  def broken(path):
    yield from _clip(2)
    raise OSError('disk went away')

  monkeypatch.setattr(video, 'iter_frames', broken)
  with pytest.raises(OSError, match='disk went away'):
    video.stylize_video(clip[0], str(tmp_path / 'out.mp4'), lambda f: f, progress=False)
  assert os.listdir(tmp_path) == []


def test_missing_and_non_video_inputs_are_user_errors(tmp_path):
  missing = str(tmp_path / 'nope.mp4')
  with pytest.raises(UserError, match='nope.mp4.*does not exist') as err:
    video.probe(missing)
  assert isinstance(err.value, FileNotFoundError)
  with pytest.raises(UserError, match='nope.mp4'):
    video.stylize_video(missing, str(tmp_path / 'o.mp4'), lambda f: f, progress=False)
  text = tmp_path / 'x.mp4'
  text.write_text('not a video\n')
  with pytest.raises(UserError, match='x.mp4.*not a readable video'):
    video.probe(str(text))
  with pytest.raises(UserError, match='x.mp4.*not a readable video'):
    list(video.iter_frames(str(text)))
  assert sorted(os.listdir(tmp_path)) == ['x.mp4']


def test_odd_sizes_are_padded_to_even_by_repeating_the_edge(tmp_path):
  frames = [f[:47, :63] for f in _clip(3)]
  path = str(tmp_path / 'odd.mp4')
  assert video.write_video(path, frames, FPS, crf=8) == 3
  info = video.probe(path)
  assert (info.height, info.width, info.n_frames) == (48, 64, 3)
  got = list(video.iter_frames(path))
  assert max(_mae(a[:47, :63], b) for a, b in zip(got, frames)) < 3
  # The added row / column copy the last real ones.
  assert max(_mae(a[47, :63], b[46]) for a, b in zip(got, frames)) < 4
  assert max(_mae(a[:47, 63], b[:, 62]) for a, b in zip(got, frames)) < 4


def test_bad_frames_are_rejected(tmp_path):
  with pytest.raises(ValueError, match='uint8 HxWx3'):
    video.write_video(str(tmp_path / 'f.mp4'), [np.zeros((8, 8, 3), np.float32)], FPS)
  with pytest.raises(ValueError, match='no frames'):
    video.write_video(str(tmp_path / 'e.mp4'), [], FPS)
  assert os.listdir(tmp_path) == []


def test_missing_imageio_says_how_to_install(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, 'imageio', None)
  monkeypatch.setitem(sys.modules, 'imageio.v2', None)
  with pytest.raises(video.VideoUnavailableError, match=r"pip install 'jaxstyle\[video\]'") as err:
    video.probe(str(tmp_path / 'a.mp4'))
  assert '\n' not in str(err.value)
