"""The validation set apart from the test set: the data's own, a built-in cut, or a share."""

import dataclasses
from typing import Optional

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import images as images_lib
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.data.dataset import DatasetInfo

# Your own data without a validation split of its own: this share of each class of train.
DEFAULT_SHARE = 0.1


def apply(data: Dataset, info: DatasetInfo, share: Optional[float], seed: int = 0) -> Dataset:
  """The data with its validation set: held out of the training images unless it has one.

  Args:
    data: a loaded Dataset (x_val set if the data brings its own validation split).
    info: its DatasetInfo (takes_path: data of your own; validation: a built-in cut).
    share: --validation_split: None for the default, 0 for none, else the share of each
      class of the training images (seeded by `seed`).
    seed: the carve's seed.

  Returns:
    The Dataset, its training images without the validation ones.

  Raises:
    UsageError: --validation_split where the data has its own validation split, or a share
      that leaves a class without training images.
  """
  if data.has_validation:
    if share is not None:
      raise UsageError(f"--validation_split={share:g} does not apply: {data.name} has its own "
                       f"validation set ({data.validation_source}); drop --validation_split")
    return data
  if info.series and share:
    raise UsageError(f"--validation_split does not apply to {data.name}, a series split by "
                     "time; drop --validation_split")
  if share == 0 or info.series:
    return data
  if share is None and info.takes_path:
    share = DEFAULT_SHARE
  if share is None:
    if not info.validation:
      return data
    count = _cut(info.validation, len(data.y_train))
    train, val = np.arange(len(data.y_train) - count), np.arange(len(data.y_train) - count,
                                                                   len(data.y_train))
    return _split(data, train, val, f"the last {count:,} training images")
  train, val = images_lib.stratified_split(data.y_train, share, seed)
  return _split(data, train, val, f"{share:.0%} of each training class, seed {seed}")


def _cut(count: int, n_train: int) -> int:
  """The built-in cut: `count`, or a tenth of a smaller set (MNIST's offline sample)."""
  return count if n_train >= 10 * count else max(1, n_train // 10)


def _split(data: Dataset, train: np.ndarray, val: np.ndarray, source: str) -> Dataset:
  """The data with the images at `val` moved from training to validation."""
  if not len(val):
    return data
  y_train = data.y_train[train]
  missing = sorted(set(np.unique(data.y_train).tolist()) - set(np.unique(y_train).tolist()))
  if missing:
    names = data.class_names or [str(i) for i in range(data.n_classes)]
    raise UsageError(f"{data.name}: after holding out the validation set, class "
                     f"{names[missing[0]]} has no training images; lower --validation_split "
                     "or add images")
  return dataclasses.replace(data, x_train=data.x_train[train], y_train=y_train,
                             x_val=data.x_train[val], y_val=data.y_train[val],
                             validation_source=source)


def describe(data: Dataset) -> str:
  """The header's words for the validation set, e.g. "5,000 validation (the last 5,000 ...)"."""
  if not data.has_validation or data.y_val is None:
    return "no validation set: periodic evaluations use the test set"
  return f"{len(data.y_val):,} validation images ({data.validation_source})"
