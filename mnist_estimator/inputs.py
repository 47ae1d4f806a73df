"""input_fns that keep the data out of the graph: tf.data from a record file, or numpy feeding."""

import hashlib
import os
import tempfile

import numpy as np
import tensorflow as tf

from mnist_estimator import integrity
from mnist_estimator.errors import UsageError

INPUT_KINDS = ("tfdata", "numpy")
CACHE_ENV = "MNIST_ESTIMATOR_CACHE"


def cache_dir():
  """Where record files live: $MNIST_ESTIMATOR_CACHE, else a folder in the temp dir."""
  return os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(),
                                                   "mnist_estimator_cache")


def write_records(images, labels):
  """Writes (label byte, pixel bytes) fixed-length records to the cache, once per content.

  A record file is read by tf.data's C++ reader, so neither the arrays nor a
  Python generator sit in the training loop, and the graph holds only a path
  (a `from_tensor_slices` of the arrays would embed them in graph.pbtxt and
  every checkpoint's .meta).

  Args:
    images: uint8 [N, H, W, C] (a label byte, then the pixels), or float [N, ...] for a
      sequence data set (float32 label, then the float32 values).
    labels: int [N] with values 0..255, or None (all zeros are written).

  Returns:
    The path of the record file.
  """
  dtype = _record_dtype(images)
  images = np.ascontiguousarray(images, dtype=dtype).reshape(len(images), -1)
  labels = np.zeros(len(images), np.uint8) if labels is None else np.asarray(labels)
  if labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
    raise UsageError("labels must be within 0..255 to be written as records")
  records = np.concatenate([labels.astype(dtype)[:, None], images], axis=1)
  digest = hashlib.sha1(records.tobytes()).hexdigest()[:16]
  folder = cache_dir()
  os.makedirs(folder, exist_ok=True)
  kind = "" if dtype == np.uint8 else "f32-"
  path = os.path.join(folder, f"records-{kind}{records.shape[1]}-{len(records)}-{digest}.bin")
  if not integrity.file_matches(path, records.nbytes, digest):  # rebuilt when damaged
    tmp = f"{path}.{os.getpid()}.tmp"
    records.tofile(tmp)
    os.replace(tmp, path)  # atomic: concurrent processes never read half a file
  return path


def _record_dtype(images):
  """uint8 records for pixels; float32 records for float features (weather windows)."""
  return np.float32 if np.asarray(images).dtype.kind == "f" else np.uint8


def _decoder(image_shape, with_labels, dtype=np.uint8):
  def decode(batch):
    if dtype == np.float32:  # standardised features, used as they are
      raw = tf.io.decode_raw(batch, tf.float32)
      images = raw[:, 1:]
    else:
      raw = tf.io.decode_raw(batch, tf.uint8)
      images = tf.cast(raw[:, 1:], tf.float32) / 255.0
    features = {"x": tf.reshape(images, [-1, *image_shape])}
    if not with_labels:
      return features
    return features, tf.cast(raw[:, 0], tf.int32)

  return decode


def tfdata_input_fn(images, labels, batch_size, train, seed=None):
  """Returns an input_fn over a record file.

  Args:
    images: uint8 [N, H, W, C], raw pixels (scaled to 0..1 in the pipeline), or float
      [N, H, W, C] features (weather), fed as they are.
    labels: int [N], or None for a predict input_fn (features only).
    batch_size: examples per batch.
    train: shuffle over the whole set and repeat forever; otherwise one pass in
      order, every example exactly once (the last batch may be smaller).
    seed: shuffle seed, for a reproducible order.

  Returns:
    A no-argument input_fn returning a tf.data.Dataset.
  """
  path = write_records(images, labels)
  dtype = _record_dtype(images)
  record_bytes = (1 + int(np.prod(images.shape[1:]))) * np.dtype(dtype).itemsize
  decode = _decoder(tuple(images.shape[1:]), labels is not None, dtype)
  count = len(images)

  def input_fn():
    ds = tf.data.FixedLengthRecordDataset(path, record_bytes, buffer_size=1 << 20)
    if train:
      ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat()
    # Batch before decoding: one decode_raw per batch, not per example. Fixed parallelism
    # and autotune off: with tf.data's autotuning thread, closing the session at the end
    # of training sometimes waited idle for 2-17 s (4 of 15 runs; 0 of 9 without it).
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = ds.batch(batch_size).map(decode, num_parallel_calls=2)
    return ds.prefetch(2).with_options(options)

  return input_fn


def numpy_input_fn(images, labels, batch_size, train, seed=None):
  """The tutorial's `numpy_input_fn` (queue runners fed from numpy); same contract as tfdata."""
  del seed  # numpy_input_fn has no seed; its shuffle follows the graph seed
  scale = 1.0 if _record_dtype(images) == np.float32 else 255.0  # float features as they are
  x = {"x": images.astype(np.float32) / scale}
  y = None if labels is None else np.asarray(labels, np.int32)
  return tf.compat.v1.estimator.inputs.numpy_input_fn(
      x=x, y=y, batch_size=batch_size, num_epochs=None if train else 1, shuffle=train)


INPUT_FNS = {"tfdata": tfdata_input_fn, "numpy": numpy_input_fn}


def make_input_fn(kind, images, labels, batch_size, train, seed=None):
  """Builds an input_fn of the given kind ("tfdata" or "numpy").

  Raises:
    UsageError: for an unknown kind.
  """
  if kind not in INPUT_FNS:
    raise UsageError(f"unknown --input {kind!r}; choose from: {', '.join(INPUT_KINDS)}")
  return INPUT_FNS[kind](images, labels, batch_size, train, seed)
