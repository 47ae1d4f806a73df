"""Cached files checked before use: their size and the content hash their name carries."""

import hashlib
import os

from absl import logging


def file_matches(path, size, digest):
  """True if `path` holds `size` bytes whose sha1 starts with `digest`.

  A file that exists but does not match (truncated, emptied, damaged) is removed
  with a warning, so the caller writes it again.
  """
  if not os.path.exists(path):
    return False
  sha1 = hashlib.sha1()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      sha1.update(block)
  have = os.path.getsize(path)
  if have == size and sha1.hexdigest().startswith(digest):
    return True
  logging.warning("record cache %s is damaged (%d bytes, %d expected, or another content); "
                  "writing it again", path, have, size)
  try:
    os.remove(path)
  except OSError:
    pass
  return False
