"""The registry of data sets: --dataset names, what each is, and `load`."""

import os

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import fonts
from mnist_estimator.data import mnist
from mnist_estimator.data import weather
from mnist_estimator.data.dataset import Dataset  # noqa: F401  # the type every loader returns
from mnist_estimator.data.dataset import DatasetInfo  # noqa: F401


# The built-in data sets: one line each (a module's DatasetInfo).
DATASETS = {info.name: info for info in (
    mnist.MNIST,
    mnist.SAMPLE,
    mnist.FASHION_MNIST,
    fonts.FONTS,
    weather.WEATHER,
)}


def dataset_names():
  """Returns the names `load` accepts, sorted."""
  return sorted(DATASETS)


def load(name, data_dir=None, seed=0, window=None):
  """Loads a data set by registry name.

  Args:
    name: one of `dataset_names()`.
    data_dir: directory with the data files; None (or "") means the tf.keras cache for
      mnist/fashion_mnist, and is an error for fonts. Ignored by mnist_sample.
    seed: seed of the fonts train/validation split (0 reproduces the book).
    window: weeks per example of a sequence data set (None: its default).

  Returns:
    A `Dataset` with uint8 images [N, H, W, 1] (weather: float32 [N, window, 5, 1]) and int32
    labels.

  Raises:
    UsageError: unknown name, missing, incomplete or corrupt data files, or a window for an
      image data set.
  """
  entry = info(name)
  data_dir = os.path.expanduser(data_dir) if data_dir else None
  if entry.series:
    return entry.load(data_dir, seed, window)
  if window is not None:
    series = ", ".join(n for n, i in DATASETS.items() if i.series)
    raise UsageError(f"--window applies to series data sets ({series}), not {name}; "
                     "drop --window")
  return entry.load(data_dir, seed)


def info(name):
  """The DatasetInfo of a registered data set.

  Raises:
    UsageError: for an unknown name (listing the known ones).
  """
  if name not in DATASETS:
    raise UsageError(f"Unknown dataset {name!r}; use --dataset with one of: "
                     f"{', '.join(dataset_names())}")
  return DATASETS[name]


def majority_accuracy(data):
  """The majority-class baseline: the commonest training label, scored on the test set."""
  majority = int(np.argmax(np.bincount(data.y_train, minlength=data.n_classes)))
  return majority, float(np.mean(data.y_test == majority))
