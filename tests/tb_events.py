"""Reads TensorBoard event files without TensorBoard (not a dependency): tensorboardX's protos."""

import glob
import os
import struct


def read_events(workdir):
  """({tag: [(step, value)]} scalars, {tag: [(step, (H, W))]} images) of `{workdir}/tb/events.*`."""
  from tensorboardX.proto import event_pb2

  scalars, images = {}, {}
  for path in sorted(glob.glob(os.path.join(workdir, 'tb', 'events.out.tfevents.*'))):
    with open(path, 'rb') as f:
      data = f.read()
    pos = 0
    while pos < len(data):  # TFRecord: u64 length, u32 crc, payload, u32 crc
      (n,) = struct.unpack('<Q', data[pos : pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + n])
      pos += 12 + n + 4
      for v in event.summary.value:
        if v.HasField('image'):
          images.setdefault(v.tag, []).append((event.step, (v.image.height, v.image.width)))
        else:
          scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
  return scalars, images
