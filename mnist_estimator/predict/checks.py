"""Refusals and warnings that keep predictions from being silently wrong."""

import sys
from typing import TYPE_CHECKING, Iterable, Optional, TextIO

import numpy as np

from mnist_estimator.common.errors import UsageError

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.predict.image_files import File

_BLANK_STD = 0.5 / 255  # below half a gray level of spread: one flat colour


def check_blank(files: Iterable["File"], out: TextIO = sys.stderr) -> None:
  """Refuses an image file that is one flat colour after preprocessing; warns for data files.

  Args:
    files: image_files.File rows (path, float images [n, H, W, C], is_data).
    out: where a data file's warning goes.

  Raises:
    UsageError: a file holds no images, or an image file no digit after preprocessing.
  """
  for found in files:
    path, images, is_data = found.path, found.images, found.is_data
    if not len(images):
      raise UsageError(f"{path} holds no images; pass a file with at least one image")
    flat = images.reshape(len(images), -1).std(axis=1) < _BLANK_STD
    if not flat.any():
      continue
    if not is_data:
      raise UsageError(f"{path} is blank after preprocessing (every pixel "
                       f"{float(images.mean()):.2f}); there is no digit to predict: check "
                       "the file, its transparency, or --invert")
    print(f"warning: {path} holds {int(flat.sum())} blank images (one flat colour); their "
          "predictions mean nothing", file=out)


def check_labels(truth: Optional[np.ndarray], n_classes: int, path: Optional[str]) -> None:
  """Refuses labels outside the model's classes 0..n_classes-1."""
  if truth is None or not len(truth):
    return
  low, high = int(truth.min()), int(truth.max())
  if low < 0 or high >= n_classes:
    raise UsageError(f"{path} holds labels from {low} to {high} but the model has classes "
                     f"0..{n_classes - 1}; pass the labels of these images")
