"""The model_dir record (mnist_estimator.json): what shapes the checkpoint's variables."""

import json
import os

import tensorflow as tf

from mnist_estimator.common.errors import UsageError

RECORD_FILE = "mnist_estimator.json"
# Kept, not compared: a model's source may change and still restore; when it does not, the
# run names the change (run/runner.py).
ADVISORY = ("source_sha256",)


def path_of(model_dir):
  return os.path.join(model_dir, RECORD_FILE)


def read(model_dir):
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
    raise UsageError(f"{path} is damaged ({e}); delete it and run the same command again "
                     "(it is rewritten once the checkpoint restores)") from None
  return record


def check(model_dir, found, wanted):
  """Refuses a run whose graph differs from the one model_dir's record describes.

  A key the record lacks (written by an older version) is not held against the run.

  Raises:
    UsageError: naming every difference.
  """
  if found is None:
    return
  diffs = [f"{key}={found[key]!r} there, {value!r} here" for key, value in wanted.items()
           if key in found and found[key] != value and key not in ADVISORY]
  if diffs:
    raise UsageError(
        f"--model_dir {model_dir} holds a {found.get('model')} model that differs from "
        f"this {wanted['model']} run ({'; '.join(diffs)}); use another --model_dir or "
        "delete that one")


def write(model_dir, record):
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

  def __init__(self, model_dir, record):
    self._model_dir = model_dir
    self._record = record

  def after_create_session(self, session, coord):
    del session, coord
    check(self._model_dir, read(self._model_dir), self._record)
    if read(self._model_dir) is None:
      write(self._model_dir, self._record)
