"""input_fns that keep the data out of the graph: tf.data from a record file, or numpy feeding."""

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


def _decoder(image_shape: Tuple[int, ...], with_labels: bool,
             dtype: Type[np.number] = np.uint8) -> Callable[[tf.Tensor], _Batch]:
  def decode(batch: tf.Tensor) -> _Batch:
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

  def input_fn() -> tf.data.Dataset:
    ds = tf.data.FixedLengthRecordDataset(path, record_bytes, buffer_size=1 << 20)
    if train:
      ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat()
    # Batch before decoding: one decode_raw per batch, not per example. Fixed parallelism
    # and autotune off: with tf.data's autotuning thread, closing the session at the end
    # of training sometimes waited idle for 2-17 s (4 of 15 runs; 0 of 9 without it).
    options = tf.data.Options()
    options.autotune.enabled = False
    # Plain TensorFlow, no Python control flow on tensors: autograph's conversion of it
    # would only cost time at every graph's construction.
    ds = ds.batch(batch_size).map(tf.autograph.experimental.do_not_convert(decode),
                                  num_parallel_calls=2)
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
