"""The record cache: data sets as fixed-length record files, checked (size, hash) before use."""

import hashlib
import os
import tempfile
from typing import Optional, Type

from absl import logging
import numpy as np
import numpy.typing as npt

from mnist_estimator.common.errors import UsageError

CACHE_ENV = "MNIST_ESTIMATOR_CACHE"


def file_matches(path: str, size: int, digest: str) -> bool:
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


def cache_dir() -> str:
  """Where record files live: $MNIST_ESTIMATOR_CACHE, else a folder in the temp dir."""
  return os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(),
                                                   "mnist_estimator_cache")


def write_records(images: np.ndarray, labels: Optional[npt.ArrayLike]) -> str:
  """Writes (label byte, pixel bytes) fixed-length records to the cache, once per content.

  A record file is read by tf.data's C++ reader, so neither the arrays nor a
  Python generator sit in the training loop, and the graph holds only a path
  (a `from_tensor_slices` of the arrays would embed them in the events' graph and
  every checkpoint's .meta).

  Args:
    images: uint8 [N, H, W, C] (a label byte, then the pixels), or float [N, ...] for a
      sequence data set (float32 label, then the float32 values).
    labels: int [N] with values 0..255, or None (all zeros are written).

  Returns:
    The path of the record file.
  """
  dtype = record_dtype(images)
  rows = np.ascontiguousarray(images, dtype=dtype).reshape(len(images), -1)
  ids = np.zeros(len(rows), np.uint8) if labels is None else np.asarray(labels)
  if ids.min(initial=0) < 0 or ids.max(initial=0) > 255:
    raise UsageError("labels must be within 0..255 to be written as records")
  records = np.concatenate([ids.astype(dtype)[:, None], rows], axis=1)
  digest = hashlib.sha1(records.tobytes()).hexdigest()[:16]
  folder = cache_dir()
  os.makedirs(folder, exist_ok=True)
  kind = "" if dtype == np.uint8 else "f32-"
  path = os.path.join(folder, f"records-{kind}{records.shape[1]}-{len(records)}-{digest}.bin")
  if not file_matches(path, records.nbytes, digest):  # rebuilt when damaged
    tmp = f"{path}.{os.getpid()}.tmp"
    records.tofile(tmp)
    os.replace(tmp, path)  # atomic: concurrent processes never read half a file
  return path


def record_dtype(images: npt.ArrayLike) -> Type[np.number]:
  """uint8 records for pixels; float32 records for float features (weather windows)."""
  return np.float32 if np.asarray(images).dtype.kind == "f" else np.uint8
