"""The model_dir record (mnist_estimator.json): what shapes the checkpoint's variables."""

import json
import os
from typing import Any, Dict, Mapping, Optional

import tensorflow as tf

from mnist_estimator.common.errors import UsageError

RECORD_FILE = "mnist_estimator.json"
# Kept, not compared: a model's source may change and still restore; when it does not, the
# run names the change (run/runner.py). The training run's settings and what its data means
# are checked by run/contract.py, not here.
ADVISORY = ("source_sha256", "settings", "data")
# What only training needs: evaluate, export and predict build no optimizer.
TRAINING_ONLY = ("optimizer",)


# The record: {key: JSON value}.
Record = Dict[str, Any]


def path_of(model_dir: str) -> str:
  return os.path.join(model_dir, RECORD_FILE)


def read(model_dir: str) -> Optional[Record]:
  """The record in model_dir, or None if it has none.

  Raises:
    UsageError: model_dir is a file, or the record does not parse (truncated, empty).
  """
  if os.path.exists(model_dir) and not os.path.isdir(model_dir):
    raise UsageError(f"--model_dir {model_dir} is a file, not a directory; "
                     "pass a directory path")
  path = path_of(model_dir)
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      record = json.load(f)
    if not isinstance(record, dict):
      raise ValueError("not a JSON object")
  except (ValueError, UnicodeDecodeError) as e:
    raise UsageError(f"{path} is damaged ({e}); move it aside (the checkpoints stay) and "
                     "run the same command again: it is rewritten once the checkpoint "
                     "restores") from None
  return record


def check(model_dir: str, found: Optional[Mapping[str, Any]], wanted: Mapping[str, Any],
          training: bool = True) -> None:
  """Refuses a run whose graph differs from the one model_dir's record describes.

  A key the record lacks (written by an older version) is not held against the run, nor,
  outside training, the optimizer.

  Raises:
    UsageError: naming every difference, and the flags that would match the record.
  """
  if found is None:
    return
  skip = ADVISORY + (() if training else TRAINING_ONLY)
  diffs = [(key, found[key], value) for key, value in wanted.items()
           if key in found and found[key] != value and key not in skip]
  if not diffs:
    return
  said = "; ".join(f"{key}={there!r} there, {here!r} here" for key, there, here in diffs)
  flags = [_flag(key, there) for key, there, _ in diffs]
  fix = (f"pass {' '.join(f for f in flags if f)} to use it, or " if all(flags) else "")
  raise UsageError(
      f"--model_dir {model_dir} holds a {found.get('model')} model that differs from this "
      f"{wanted['model']} run ({said}); {fix}use another --model_dir for this one")


def _flag(key: str, value: Any) -> Optional[str]:
  """The flags that make a run match the record's `key`, or None if no flag does."""
  if key == "image_shape":
    h, w, c = value
    return f"--image_size={h}x{w} --channels={c}"
  if key in ("model", "optimizer"):
    return f"--{key}={value}"
  if key == "hidden_units":
    return f"--hidden_units={','.join(map(str, value))}"
  return None


def update(model_dir: str, found: Optional[Mapping[str, Any]],
           record: Mapping[str, Any]) -> None:
  """Writes `record` over `found` (its graph keys checked equal): settings and data renewed."""
  write(model_dir, {**(found or {}), **record})


def write(model_dir: str, record: Mapping[str, Any]) -> None:
  """Writes the record atomically (cluster tasks may write at once).

  Raises:
    UsageError: model_dir cannot be written.
  """
  path = path_of(model_dir)
  try:
    os.makedirs(model_dir, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
      json.dump(record, f, indent=2)
    os.replace(tmp, path)
  except OSError as e:
    raise UsageError(f"cannot write to --model_dir {model_dir} ({e.strerror}); pass a "
                     "directory you can write to") from None


class RecordHook(tf.compat.v1.train.SessionRunHook):
  """Writes the record once the session exists, i.e. once the checkpoint has restored.

  So a run that fails to restore (another model's checkpoint) never claims model_dir.
  """

  def __init__(self, model_dir: str, record: Mapping[str, Any]) -> None:
    self._model_dir = model_dir
    self._record = record

  def after_create_session(self, session: tf.compat.v1.Session,
                           coord: tf.train.Coordinator) -> None:
    del session, coord
    found = read(self._model_dir)
    check(self._model_dir, found, self._record)
    update(self._model_dir, found, self._record)  # this training run's settings and data
