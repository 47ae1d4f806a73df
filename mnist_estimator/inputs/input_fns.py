"""input_fns that keep the data out of the graph: tf.data from a record file, or numpy feeding."""

import os
import random
from typing import Any, Callable, Dict, Optional, Tuple, Type, Union

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import dataset
from mnist_estimator.data import stream
from mnist_estimator.data import stream_cache
from mnist_estimator.data import stream_input
from mnist_estimator.inputs import augment as augment_lib
from mnist_estimator.inputs import record_cache

INPUT_KINDS = ("tfdata", "numpy")
# A no-argument input_fn, as Estimator.train, evaluate and predict take it.
InputFn = Callable[[], Any]
# A decoded batch: features {"x": [B, ...]}, and int32 labels [B] unless a predict's.
_Batch = Union[Dict[str, tf.Tensor], Tuple[Dict[str, tf.Tensor], tf.Tensor]]


# Training reads a record file of up to this many bytes into memory once, and gathers each
# batch from it by a permutation per epoch: work per batch, not per record. A bigger file is
# read record by record through a shuffle buffer of the whole set, as evaluation reads it.
TABLE_MAX_BYTES = 1 << 30


def _decoder(image_shape: Tuple[int, ...], with_labels: bool,
             dtype: Type[np.number] = np.uint8) -> Callable[[tf.Tensor], _Batch]:
  """Returns a function from a batch of records, as bytes [B, record bytes], to tensors."""
  def decode(records: tf.Tensor) -> _Batch:
    if dtype == np.float32:  # standardised features, used as they are
      raw = tf.bitcast(tf.reshape(records, [tf.shape(records)[0], -1, 4]), tf.float32)
      images = raw[:, 1:]
    else:
      raw = records
      images = tf.cast(raw[:, 1:], tf.float32) / 255.0
    features = {"x": tf.reshape(images, [-1, *image_shape])}
    if not with_labels:
      return features
    return features, tf.cast(raw[:, 0], tf.int32)

  return decode


def _shuffled_batches(path: str, count: int, record_bytes: int, batch_size: int, seed: int,
                      decode: Callable[[tf.Tensor], _Batch]) -> tf.data.Dataset:
  """Endless decoded batches of the records, each epoch a new permutation of them.

  Args:
    path: the record file, read into memory once.
    count: records in it.
    record_bytes: bytes per record.
    batch_size: records per batch; batches run on across epochs, as shuffle().repeat().batch().
    seed: with the epoch, it picks the epoch's permutation (index_shuffle, stateless).
    decode: from a batch of records, uint8 [B, record_bytes], to the batch's tensors.

  Returns:
    A tf.data.Dataset of decoded batches.
  """
  table = tf.data.Dataset.from_tensors(path).map(
      lambda p: tf.reshape(tf.io.decode_raw(tf.io.read_file(p), tf.uint8), [count, record_bytes]))

  def gather(records: tf.Tensor, step: tf.Tensor) -> _Batch:
    position = step * batch_size + tf.range(batch_size, dtype=tf.int64)
    epoch = position // count
    # One seed per example: a batch may straddle two epochs. (The public
    # tf.random.experimental.index_shuffle mis-shapes a batch of seeds in TF 2.15.)
    seeds = tf.stack([tf.fill([batch_size], tf.constant(seed, tf.int64)), epoch,
                      tf.zeros_like(epoch)], axis=1)
    order = tf.raw_ops.RandomIndexShuffle(index=position % count, seed=seeds,
                                          max_index=tf.constant(count - 1, tf.int64))
    return decode(tf.gather(records, order))

  # cache(): the file is read once, and every step gets the same table, not a copy.
  return tf.data.Dataset.zip((table.cache().repeat(), tf.data.Dataset.counter())).map(
      tf.autograph.experimental.do_not_convert(gather), num_parallel_calls=2)


def tfdata_input_fn(images: np.ndarray, labels: Optional[npt.ArrayLike], batch_size: int,
                    train: bool, seed: Optional[int] = None, with_labels: bool = True,
                    augment: augment_lib.Names = ()) -> Callable[[], tf.data.Dataset]:
  """Returns an input_fn over a record file.

  Args:
    images: uint8 [N, H, W, C], raw pixels (scaled to 0..1 in the pipeline), or float
      [N, H, W, C] features (weather), fed as they are.
    labels: int [N], or None for a predict input_fn (features only).
    batch_size: examples per batch.
    train: shuffle over the whole set and repeat forever; otherwise one pass in
      order, every example exactly once (the last batch may be smaller).
    seed: shuffle seed, for a reproducible order.
    with_labels: False yields features only, from the same record file as with labels
      (evaluation and the report's predictions share one cached file).
    augment: --augment's names: training batches are augmented (inputs/augment.py).

  Returns:
    A no-argument input_fn returning a tf.data.Dataset.
  """
  path = record_cache.write_records(images, labels)
  dtype = record_cache.record_dtype(images)
  record_bytes = (1 + int(np.prod(images.shape[1:]))) * np.dtype(dtype).itemsize
  decode = _decoder(tuple(images.shape[1:]), labels is not None and with_labels, dtype)
  count = len(images)

  in_memory = train and os.path.getsize(path) <= TABLE_MAX_BYTES

  def input_fn() -> tf.data.Dataset:
    if in_memory:  # an unseeded run draws its order afresh each time
      ds = _shuffled_batches(path, count, record_bytes, batch_size,
                             random.SystemRandom().randrange(2**62) if seed is None else seed,
                             decode)
    else:
      ds = tf.data.FixedLengthRecordDataset(path, record_bytes, buffer_size=1 << 20)
      if train:
        ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat()
      # Batch before decoding: one decode_raw per batch, not per example. Plain TensorFlow,
      # no Python control flow on tensors: autograph's conversion of it would only cost
      # time at every graph's construction.
      ds = ds.batch(batch_size).map(tf.autograph.experimental.do_not_convert(
          lambda b: decode(tf.io.decode_raw(b, tf.uint8))), num_parallel_calls=2)
    # Fixed parallelism and autotune off: with tf.data's autotuning thread, closing the
    # session at the end of training sometimes waited idle for 2-17 s (4 of 15 runs; 0 of 9
    # without it).
    options = tf.data.Options()
    options.autotune.enabled = False
    if train and augment:
      ds = augment_lib.augment_dataset(ds, augment, seed)
    return ds.prefetch(2).with_options(options)

  return input_fn


def numpy_input_fn(images: np.ndarray, labels: Optional[npt.ArrayLike], batch_size: int,
                   train: bool, seed: Optional[int] = None, with_labels: bool = True,
                   augment: augment_lib.Names = ()) -> InputFn:
  """The tutorial's `numpy_input_fn` (queue runners fed from numpy); same contract as tfdata."""
  del seed  # numpy_input_fn has no seed; its shuffle follows the graph seed
  if train and augment:
    raise UsageError("--augment runs in the tf.data pipeline; use --input=tfdata (the "
                     "default) with it")
  scale = 1.0 if record_cache.record_dtype(images) == np.float32 else 255.0  # float features as is
  x = {"x": images.astype(np.float32) / scale}
  y = None if labels is None or not with_labels else np.asarray(labels, np.int32)
  return tf.compat.v1.estimator.inputs.numpy_input_fn(
      x=x, y=y, batch_size=batch_size, num_epochs=None if train else 1, shuffle=train)


INPUT_FNS: Dict[str, Callable[..., InputFn]] = {"tfdata": tfdata_input_fn,
                                                "numpy": numpy_input_fn}


def make_input_fn(kind: str, images: dataset.Images, labels: Optional[npt.ArrayLike],
                  batch_size: int, train: bool, seed: Optional[int] = None,
                  with_labels: bool = True, augment: augment_lib.Names = (),
                  cache_decoded: bool = False) -> InputFn:
  """Builds an input_fn of the given kind ("tfdata" or "numpy").

  Images streamed from their files (a data.stream.FileImages) are read by tf.data from the
  files, whatever the kind asks for numpy arrays.

  Raises:
    UsageError: for an unknown kind, or numpy feeding of streamed images or with --augment.
  """
  if kind not in INPUT_FNS:
    raise UsageError(f"unknown --input {kind!r}; choose from: {', '.join(INPUT_KINDS)}")
  if isinstance(images, stream.FileImages):
    if kind != "tfdata":
      raise UsageError("--input=numpy feeds arrays in memory; these images stream from their "
                       "files: use --input=tfdata (the default), or --stream=no")
    augment_fn = ((lambda ds: augment_lib.augment_dataset(ds, augment, seed))
                  if train and augment else None)
    return stream_input.input_fn(
        images, labels, batch_size, train, seed, with_labels, augment=augment_fn,
        cache_dir=stream_cache.cache_folder() if cache_decoded else None)
  return INPUT_FNS[kind](images, labels, batch_size, train, seed, with_labels, augment)
