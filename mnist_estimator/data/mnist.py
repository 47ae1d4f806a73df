"""MNIST (from --data_dir, tf.keras or, offline, the bundled sample) and Fashion-MNIST."""

import dataclasses
import os
from typing import Any, Optional

from absl import logging

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import checksums
from mnist_estimator.data import readers
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.data.dataset import DatasetInfo

SAMPLE_PATH = os.path.join(os.path.dirname(__file__), "mnist_sample.npz")
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def _keras_mnist() -> Any:
  # Imported here so that importing this module stays fast and works without TensorFlow.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.keras.datasets.mnist.load_data()


def _keras_fashion_mnist() -> Any:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.keras.datasets.fashion_mnist.load_data()


# An indirection so tests can make tf.keras fail (as it does offline) without touching the network.
_KERAS_LOADERS = {"mnist": _keras_mnist, "fashion_mnist": _keras_fashion_mnist}


def _from_keras(name: str) -> Dataset:
  """Loads via tf.keras.datasets (its ~/.keras cache, or a download); Exception if that fails."""
  (x_train, y_train), (x_test, y_test) = _KERAS_LOADERS[name]()
  src = f"tf.keras.datasets.{name}"
  arrays = dict(zip(readers.IDX_FILES, (x_train, y_train, x_test, y_test)))
  wrong = checksums.mismatches(name, arrays)
  if wrong:
    raise UsageError(f"the tf.keras cache of {name} (~/.keras/datasets) is not the published "
                     f"data set: {', '.join(base for base, _, _ in wrong)} differ(s) in SHA-256; "
                     "delete the cached files so tf.keras fetches them again, or pass --data_dir")
  x_train, y_train = readers.check_split(x_train, y_train, 10, readers.MNIST_HW, src, src)
  x_test, y_test = readers.check_split(x_test, y_test, 10, readers.MNIST_HW, src, src)
  return Dataset(name, readers.MNIST_HW + (1,), 10, x_train, y_train, x_test, y_test,
                 source=f"{src} (~/.keras/datasets cache)")


def _load_mnist_sample(data_dir: Optional[str] = None, seed: int = 0) -> Dataset:
  """The MNIST sample that ships with the package; data_dir and seed are ignored."""
  del data_dir, seed  # the sample is fixed
  if not os.path.isfile(SAMPLE_PATH):
    raise UsageError(f"The bundled sample {SAMPLE_PATH} is missing; regenerate it with "
                     "python scripts/make_sample.py --data_dir=DIR_WITH_MNISTreaders.IDX_FILES")
  ds = readers.from_npz("mnist_sample", SAMPLE_PATH, "")
  source = f"bundled sample ({len(ds.y_train)} train / {len(ds.y_test)} test)"
  return dataclasses.replace(ds, source=source)


def _load_mnist(data_dir: Optional[str] = None, seed: int = 0) -> Dataset:
  """Full MNIST from data_dir, else tf.keras, else (offline) the bundled sample, loudly."""
  del seed  # MNIST has a fixed train/test split
  if data_dir is not None:
    return readers.from_dir("mnist", data_dir)
  try:
    return _from_keras("mnist")
  except UsageError:
    raise  # a cache that is there but wrong: named, never replaced by the sample
  except Exception as e:  # pylint: disable=broad-except  # offline, blocked or corrupt cache
    error = e
  sample = dataclasses.replace(_load_mnist_sample(), name="mnist")
  logging.warning(
      "!!! USING ONLY A SMALL SAMPLE OF MNIST (%d train / %d test images), NOT THE FULL "
      "60000/10000: tf.keras could not load MNIST (%s: %s). Accuracies will be lower than the "
      "published ones. Fix: --data_dir=DIR with the four MNIST IDX files, or connect once so "
      "tf.keras can cache it.",
      len(sample.y_train), len(sample.y_test), type(error).__name__, error)
  return sample


def _load_fashion_mnist(data_dir: Optional[str] = None, seed: int = 0) -> Dataset:
  """Fashion-MNIST from data_dir, else tf.keras; there is no bundled sample to fall back on."""
  del seed  # Fashion-MNIST has a fixed train/test split
  if data_dir is not None:
    return readers.from_dir("fashion_mnist", data_dir)
  if os.path.isdir(DEBIAN_FASHION_MNIST):  # Debian's package dataset-fashion-mnist
    return readers.from_dir("fashion_mnist", DEBIAN_FASHION_MNIST, strict=True)
  try:
    return _from_keras("fashion_mnist")
  except UsageError:
    raise
  except Exception as e:  # pylint: disable=broad-except  # offline, blocked or corrupt cache
    raise UsageError(f"tf.keras could not load Fashion-MNIST ({type(e).__name__}: {e}); pass "
                     "--data_dir=DIR with its four IDX files, or connect once so tf.keras can "
                     "cache it") from e


MNIST = DatasetInfo("mnist", _load_mnist,
                    dir_flag="mnist_dir", validation=5000,
                    about="MNIST: 60,000 / 10,000 handwritten digits")
SAMPLE = DatasetInfo("mnist_sample", _load_mnist_sample, validation=500,
                     about="the bundled 5,000 / 1,000 real-MNIST sample (offline)")
FASHION_MNIST = DatasetInfo(
    "fashion_mnist", _load_fashion_mnist,
    dir_flag="fashion_dir", validation=5000, about="Fashion-MNIST: 60,000 / 10,000 clothing images")
