"""`--dataset=tfrecord:TRAIN_GLOB[,TEST_GLOB]`: tf.Examples of encoded images and labels."""

import glob
import os

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import images as images_lib
from mnist_estimator.data.dataset import DatasetInfo

IMAGE_KEY = "image/encoded"       # PNG or JPEG bytes (tensorflow/models' image data sets)
LABEL_KEY = "image/class/label"   # int64


def _files(pattern):
  found = sorted(glob.glob(os.path.expanduser(pattern)))
  if not found:
    raise UsageError(f"--dataset=tfrecord:{pattern}: no file matches {pattern}; pass a glob "
                     "of TFRecord files (train-*.tfrecord)")
  return found


def _read(files, shape, skip_bad):
  """(uint8 images [N, H, W, C], int64 labels, bad count) of the files' tf.Examples."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  spec = {IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
          LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
  images, labels, bad = [], [], 0
  try:
    for record in tf.data.TFRecordDataset(files):
      example = tf.io.parse_single_example(record, spec)
      try:
        image = tf.io.decode_image(example[IMAGE_KEY], channels=shape[2],
                                   expand_animations=False)
        if tuple(image.shape[:2]) != tuple(shape[:2]):
          image = tf.cast(tf.image.resize(image, shape[:2]) + 0.5, tf.uint8)
      except tf.errors.InvalidArgumentError as e:
        if not skip_bad:
          raise UsageError(f"{files[0]}...: example {len(images) + bad} does not decode "
                           f"({e.message.splitlines()[0]}); pass --skip_bad_images") from None
        bad += 1
        continue
      images.append(image.numpy())
      labels.append(int(example[LABEL_KEY]))
  except tf.errors.OpError as e:
    raise UsageError(f"{files[0]}...: not TFRecord files of tf.Examples with {IMAGE_KEY} and "
                     f"{LABEL_KEY} ({e.message.splitlines()[0]})") from None
  return np.stack(images), np.array(labels, np.int64), bad


def _first_shape(files, channels):
  """(H, W, C) of the first example (a TFRecord's images are one size as a rule)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for record in tf.data.TFRecordDataset(files).take(1):
    example = tf.io.parse_single_example(record, {IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
    image = tf.io.decode_image(example[IMAGE_KEY], expand_animations=False)
    return int(image.shape[0]), int(image.shape[1]), channels or int(image.shape[2])
  raise UsageError(f"{files[0]} holds no examples")


def load(patterns, seed=0, options=None):
  """A Dataset of TFRecord tf.Examples; without a TEST_GLOB, --validation_split is held out."""
  options = options or images_lib.ImageOptions(seed=seed)
  train_glob, _, test_glob = patterns.partition(",")
  train_files = _files(train_glob)
  test_files = _files(test_glob) if test_glob else []
  h, w, c = _first_shape(train_files, options.channels)
  shape = (*(options.image_size or (h, w)), 1 if c == 1 else 3)
  key = images_lib.cache_key("tfrecord", shape, options.skip_bad_images,
                             files=train_files + test_files)

  def build():
    x, y, bad = _read(train_files, shape, options.skip_bad_images)
    out = {"x": x, "y": y, "bad": np.array(bad)}
    if test_files:
      out["x_test"], out["y_test"], test_bad = _read(test_files, shape, options.skip_bad_images)
      out["bad"] = np.array(bad + test_bad)
    return out

  a = images_lib.cached(key, build)
  if test_files:
    x, y, x_test, y_test = a["x"], a["y"], a["x_test"], a["y_test"]
  else:
    train, test = images_lib.stratified_split(a["y"], options.validation_split, options.seed)
    x, y, x_test, y_test = a["x"][train], a["y"][train], a["x"][test], a["y"][test]
  n_classes = int(max(y.max(initial=0), y_test.max(initial=0))) + 1
  return images_lib.make_dataset(
      f"tfrecord:{patterns}", x, y, x_test, y_test, [str(i) for i in range(n_classes)],
      f"{len(train_files) + len(test_files)} TFRecord files ({len(x):,} / {len(x_test):,} "
      f"images of {shape[0]}x{shape[1]}x{shape[2]})")


TFRECORD = DatasetInfo("tfrecord", load, takes_path=True, panel=None,
                       about="your tf.Examples: image/encoded and image/class/label")
