"""Video in and out for fast-style inference: decode, stylize frame by frame, encode H.264.

Frames travel through imageio's ffmpeg plugin (the optional `jaxstyle[video]` extra, which brings
its own ffmpeg binary), so the rest of the package never needs either. Output is written to a
temporary file next to the destination and renamed when complete: an interrupted or failed run
never leaves a half-written video where the finished one belongs.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from jaxstyle.errors import BadInputError, UserError


class VideoUnavailableError(UserError, RuntimeError):
  """imageio or imageio-ffmpeg is not installed (video support is an optional extra)."""


class VideoNotFoundError(UserError, FileNotFoundError):
  """The input video does not exist (a FileNotFoundError too, for callers that catch those)."""


@dataclass(frozen=True)
class VideoInfo:
  """What stylizing needs before the first frame: the rate to keep, the size, a progress total."""

  fps: float
  n_frames: int | None  # None when ffmpeg could not count them
  width: int
  height: int


def _imageio():
  """imageio.v2 with its ffmpeg plugin, imported late so video stays an optional extra."""
  try:
    import imageio.v2 as iio
    import imageio_ffmpeg
  except ImportError as err:
    raise VideoUnavailableError(
      f'video needs imageio and imageio-ffmpeg ({err.name} is missing): '
      "pip install 'jaxstyle[video]'"
    ) from None
  return iio, imageio_ffmpeg


def _open_reader(path: str):
  """An imageio ffmpeg reader for `path`, or a UserError naming the file instead of ffmpeg's log."""
  iio, _ = _imageio()
  if not os.path.exists(path):
    what = 'is a symbolic link to a missing file' if os.path.islink(path) else 'does not exist'
    raise VideoNotFoundError(f'video {path!r} {what}')
  if os.path.isdir(path):
    raise BadInputError(f'video {path!r} is a directory; pass a video file')
  if not os.access(path, os.R_OK):
    raise BadInputError(f'video {path!r} is not readable (permissions)')
  if os.path.getsize(path) == 0:
    raise BadInputError(f'video {path!r} is empty')
  try:
    return iio.get_reader(path, format='FFMPEG')
  except Exception as err:  # noqa: BLE001 -- imageio raises OSError, IndexError, RuntimeError
    raise BadInputError(
      f'{path!r} is not a readable video ({type(err).__name__}; not a video, or cut short); '
      'check the file or convert it to MP4'
    ) from err


def _count_frames(path: str) -> int | None:
  """Frames of the first video stream by demuxing only (fast: no decoding), None if unknown.

  Counts packets, exact for constant-frame-rate files; it only sizes the progress bar."""
  _, imageio_ffmpeg = _imageio()
  cmd = [
    imageio_ffmpeg.get_ffmpeg_exe(),
    '-nostdin',
    '-hide_banner',
    '-i',
    path,
    '-map',
    '0:v:0',
    '-c',
    'copy',
    '-f',
    'null',
    '-',
  ]
  try:
    done = subprocess.run(cmd, capture_output=True, text=True, errors='replace', timeout=120)
  except (OSError, subprocess.TimeoutExpired):
    return None
  counts = re.findall(r'frame=\s*(\d+)', done.stderr)
  return int(counts[-1]) if done.returncode == 0 and counts else None


def probe(path: str) -> VideoInfo:
  """fps, frame count and size of `path`, read before any work so a bad input fails at once."""
  reader = _open_reader(path)
  try:
    meta = reader.get_meta_data()
  finally:
    reader.close()
  width, height = meta['size']  # imageio's own "nframes" is always inf for files: count instead
  return VideoInfo(float(meta['fps']), _count_frames(path), int(width), int(height))


def iter_frames(path: str) -> Iterator[np.ndarray]:
  """uint8 HxWx3 RGB frames of `path` in order, one at a time (a video may not fit in memory)."""
  reader = _open_reader(path)
  try:
    for frame in reader:
      yield np.asarray(frame, dtype=np.uint8)[..., :3]
  finally:
    reader.close()


def _even(frame: np.ndarray) -> np.ndarray:
  """`frame` padded to even sides by repeating its last row / column (yuv420p needs even sides)."""
  h, w = frame.shape[:2]
  if h % 2 == 0 and w % 2 == 0:
    return frame
  return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode='edge')


def write_video(path: str, frames: Iterable[np.ndarray], fps: float, *, crf: int = 18) -> int:
  """Encodes uint8 HxWx3 RGB `frames` (one size) as H.264 at `fps`; returns how many were written.

  `crf`: x264's constant rate factor (0 best, 18 visually lossless, 51 worst). yuv420p, which
  every player decodes, needs even sides, so an odd height / width gets its last row / column
  repeated once: HxW comes back (H + H % 2) x (W + W % 2). Even sizes come back exactly
  (imageio's resize to a multiple of 16 is off). Written to a hidden temporary file in the same
  folder (same extension: same container) and renamed when complete; on any error or Ctrl-C the
  temporary file is removed, so `path` never holds half a video.
  """
  iio, _ = _imageio()
  folder, name = os.path.split(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  stem, ext = os.path.splitext(name)
  tmp = os.path.join(folder, f'.{stem}.{secrets.token_hex(4)}.tmp{ext or ".mp4"}')
  n = 0
  try:
    writer = iio.get_writer(
      tmp,
      format='FFMPEG',
      fps=float(fps),
      codec='libx264',
      pixelformat='yuv420p',
      macro_block_size=1,
      quality=None,
      output_params=['-crf', str(int(crf))],
      ffmpeg_log_level='error',
    )
    try:
      for frame in frames:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
          raise ValueError(
            f'frame {n} of {path!r} must be uint8 HxWx3, got {frame.dtype} {frame.shape}'
          )
        writer.append_data(_even(frame))
        n += 1
    except BaseException:
      with contextlib.suppress(Exception):  # ffmpeg's complaint must not hide the real error
        writer.close()
      raise
    writer.close()
    if n == 0:
      raise ValueError(f'no frames to write to {path!r}')
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
  return n


_DONE = object()


def _put(out: queue.Queue, item: object, stop: threading.Event) -> bool:
  """Puts `item` unless `stop` is set first (the consumer has gone); True when it was put."""
  while not stop.is_set():
    with contextlib.suppress(queue.Full):
      out.put(item, timeout=0.1)
      return True
  return False


def _read_ahead(path: str, out: queue.Queue, stop: threading.Event) -> None:
  """Worker: decodes frames into `out` (bounded), then _DONE or the exception that stopped it."""
  frames = iter_frames(path)
  try:
    for frame in frames:
      if not _put(out, frame, stop):
        return
  except BaseException as err:  # noqa: BLE001 -- handed to the consumer, which re-raises it
    _put(out, err, stop)
    return
  finally:
    frames.close()
  _put(out, _DONE, stop)


def stylize_video(
  in_path: str,
  out_path: str,
  frame_fn: Callable[[np.ndarray], np.ndarray],
  *,
  progress: bool = True,
  crf: int = 18,
) -> dict:
  """Applies `frame_fn` (uint8 HxWx3 -> same) to every frame and writes the result at the input fps.

  The next frame is decoded in a worker thread while `frame_fn` runs, so decoding hides behind
  the model. Returns {'frames', 'seconds', 'frames_per_sec', 'fps', 'output'}; `seconds` is the
  wall time of the whole pass (decode, model, encode).
  """
  info = probe(in_path)  # fails on a missing or unreadable input before any thread starts
  start = time.perf_counter()
  frames: queue.Queue = queue.Queue(maxsize=2)
  stop = threading.Event()
  worker = threading.Thread(
    target=_read_ahead, args=(in_path, frames, stop), daemon=True, name='video-read-ahead'
  )

  def styled() -> Iterator[np.ndarray]:
    with tqdm(total=info.n_frames, unit='frame', desc='stylize', disable=not progress) as bar:
      while (item := frames.get()) is not _DONE:
        if isinstance(item, BaseException):
          raise item
        out = np.asarray(frame_fn(item))
        if out.shape != item.shape or out.dtype != np.uint8:
          raise ValueError(f'frame_fn must return uint8 {item.shape}, got {out.dtype} {out.shape}')
        yield out
        bar.update(1)

  worker.start()
  try:
    n = write_video(out_path, styled(), info.fps, crf=crf)
  finally:
    stop.set()
    worker.join()
  wall = time.perf_counter() - start
  return {
    'frames': n,
    'seconds': wall,
    'frames_per_sec': n / wall if wall > 0 else 0.0,
    'fps': info.fps,
    'output': out_path,
  }
