"""Reads windows of a sequence data set (weather weeks) for prediction: JSON, .npy, .npz."""

import json
from typing import Any, List, Sequence, Tuple

import numpy as np

from mnist_estimator.predict import image_files as images_lib
from mnist_estimator.common.errors import UsageError

_KINDS = "a JSON file of a list of rows, or an .npy/.npz array"


def _read_json(path: str) -> np.ndarray:
  try:
    with open(path) as f:
      return np.asarray(json.load(f), dtype=np.float64)
  except OSError as e:
    raise UsageError(f"cannot read {path}: {e.strerror or e}; check the path") from None
  except (ValueError, TypeError) as e:  # bad JSON, ragged or non-numeric rows
    raise UsageError(f"{path} is not a JSON list of equally long rows of numbers ({e}); write "
                     "it as [[rain, snow_depth, snowfall, high, low], ...]") from None


def _read(path: str) -> np.ndarray:
  """The file's array: JSON by its first character, else .npy/.npz as image_files.sniff tells."""
  try:
    with open(path, "rb") as f:
      head = f.read(64).lstrip()
  except OSError as e:
    raise UsageError(f"cannot read {path}: {e.strerror or e}; check the path") from None
  if head[:1] in (b"[", b"{"):
    return _read_json(path)
  kind = images_lib.sniff(path)
  if kind not in ("npy", "npz"):
    raise UsageError(f"{path} is not {_KINDS}; pass one of those")
  return images_lib.read_array(path, kind, ("x_test", "x"))


def as_windows(array: Any, path: str, shape: Sequence[int]) -> np.ndarray:
  """Turns an array of rows into windows of the model's shape.

  Args:
    array: [steps, features] (one window, or a longer series: every window of it, sliding
      by one row), [n, steps, features] or [n, steps, features, 1].
    path: the file, for messages.
    shape: the model's (steps, features, 1).

  Returns:
    float32 [n, steps, features, 1].

  Raises:
    UsageError: rows of another width, too few rows, another window, or non-finite values.
  """
  steps, width = shape[0], shape[1]
  a = np.asarray(array)
  if a.dtype.kind not in "iuf" or not np.all(np.isfinite(a)):
    raise UsageError(f"{path} holds {a.dtype} values that are not all finite numbers; "
                     "save the raw weekly values as numbers")
  if a.ndim == 4 and a.shape[-1] == 1:
    a = a[..., 0]
  if a.ndim not in (2, 3) or a.shape[-1] != width:
    raise UsageError(f"{path} holds an array of shape {list(a.shape)}; the model takes rows of "
                     f"{width} values: [{steps}, {width}] for one window, [n, {steps}, {width}], "
                     "or a longer series of rows")
  if a.ndim == 2:
    if len(a) < steps:
      raise UsageError(f"{path} holds {len(a)} rows but the model reads windows of {steps}; "
                       f"give at least {steps} rows")
    a = a[np.arange(len(a) - steps + 1)[:, None] + np.arange(steps)]
  elif a.shape[1] != steps:
    raise UsageError(f"{path} holds windows of {a.shape[1]} rows but the model reads {steps}; "
                     f"give windows of {steps} rows (or one series of rows)")
  return a.astype(np.float32)[..., np.newaxis]


def load_files(paths: Sequence[str],
               shape: Sequence[int]) -> List[Tuple[str, np.ndarray, bool]]:
  """Reads each file's windows, like images.load_files.

  Args:
    paths: JSON files (a list of rows, or a list of windows) or .npy/.npz arrays.
    shape: the model's (steps, features, 1).

  Returns:
    [(path, float32 [n, steps, features, 1], True)], one entry per path.
  """
  return [(path, as_windows(_read(path), path, shape), True) for path in paths]
