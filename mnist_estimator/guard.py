"""Checks before a run touches model_dir: paths, sizes, TF_CONFIG, the lock and checkpoints."""

import contextlib
import json
import os

import numpy as np
import tensorflow as tf

from mnist_estimator import checkpoints
from mnist_estimator import estimator as est_lib
from mnist_estimator import interrupts
from mnist_estimator import lock
from mnist_estimator.errors import UsageError

# Floats held per input pixel by a training step (activations, gradients, optimizer work),
# a generous bound for the models here: cnn's 32-channel first layer dominates.
_FLOATS_PER_PIXEL = 40


def check_argv(argv):
  """Refuses arguments and flagfiles that are not UTF-8 (absl would end in a traceback)."""
  for arg in argv[1:]:
    try:
      arg.encode("utf-8")
    except UnicodeEncodeError:
      shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
      raise UsageError(f"argument {shown} is not valid UTF-8; rename the file or folder "
                       "(e.g. convmv -f latin1 -t utf8) or pass another path") from None
    if arg.startswith(("--flagfile=", "-flagfile=")):
      _check_flagfile(arg.split("=", 1)[1])


def _check_flagfile(path):
  try:
    with open(path, "rb") as f:
      f.read().decode("utf-8")
  except OSError:
    return  # absl names a missing flagfile itself
  except UnicodeDecodeError as e:
    raise UsageError(f"--flagfile {path} is not UTF-8 text (byte {e.object[e.start]:#x} at "
                     f"offset {e.start}); save it as UTF-8 (iconv -f latin1 -t utf8)") from None


def memory_available():
  """Bytes of memory available to a new allocation (MemAvailable), or None if unknown."""
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError):
    pass
  return None


def check_sizes(spec, data):
  """Refuses batch sizes whose tensors cannot fit in memory, before TF allocates them."""
  per_image = int(np.prod(data.image_shape)) * 4 * _FLOATS_PER_PIXEL
  free = memory_available()
  if not free:
    return
  for flag, value in (("batch_size", spec.batch_size), ("eval_batch_size",
                                                          spec.eval_batch_size)):
    if value * per_image > free:
      raise UsageError(
          f"--{flag}={value} needs about {value * per_image / 2**30:.1f} GiB but "
          f"{free / 2**30:.1f} GiB of memory is free; pass at most "
          f"{max(1, free // per_image)} (the training set has {len(data.y_train)} images)")


def check_outputs(spec):
  """Refuses --weights_out / --weights_png_dir paths that cannot be written as named."""
  if spec.weights_out:
    if not spec.weights_out.endswith(".npz"):
      raise UsageError(f"--weights_out={spec.weights_out} must end in .npz (numpy would "
                       f"append it); pass --weights_out={spec.weights_out}.npz")
    folder = os.path.dirname(os.path.abspath(spec.weights_out))
    if not os.path.isdir(folder):
      raise UsageError(f"--weights_out={spec.weights_out}: the folder {folder} does not "
                       "exist; create it or pass another path")
  if spec.weights_png_dir and os.path.exists(spec.weights_png_dir) and not os.path.isdir(
      spec.weights_png_dir):
    raise UsageError(f"--weights_png_dir={spec.weights_png_dir} is a file; pass a folder")


def run_config_of_env():
  """The RunConfig TF_CONFIG describes; a bad TF_CONFIG is a UsageError."""
  try:
    return tf.estimator.RunConfig()
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise UsageError(f"TF_CONFIG is not a valid cluster description ({e}); fix it, e.g. "
                     '{"cluster": {"chief": ["host:port"]}, "task": {"type": "chief", '
                     '"index": 0}}, or unset it') from None


def check_record(model_dir):
  """Refuses a model_dir record that does not parse (a truncated or empty file)."""
  path = os.path.join(model_dir, est_lib.RECORD_FILE)
  if not os.path.isfile(path):
    return
  try:
    with open(path) as f:
      record = json.load(f)
    if not isinstance(record, dict):
      raise ValueError("not a JSON object")
  except (ValueError, UnicodeDecodeError) as e:
    raise UsageError(f"{path} is damaged ({e}); delete it and run the same command again "
                     "(it is rewritten once the checkpoint restores)") from None


@contextlib.contextmanager
def model_dir(spec, data, training):
  """Everything checked before the Estimator touches spec.model_dir; yields True if fresh.

  Training runs hold the model_dir lock (only a cluster's chief), then the record and
  checkpoints are verified (state file rebuilt, unreadable newest refused or skipped
  with spec.fallback_checkpoint).
  """
  check_outputs(spec)
  check_sizes(spec, data)
  config = run_config_of_env()
  is_file = os.path.exists(spec.model_dir) and not os.path.isdir(spec.model_dir)
  with lock.held(spec.model_dir, training and config.is_chief and not is_file):
    if not is_file:
      check_record(spec.model_dir)
      checkpoints.ensure(spec.model_dir, getattr(spec, "fallback_checkpoint", False))
    yield not checkpoints.exist(spec.model_dir)


class RecordHook(tf.compat.v1.train.SessionRunHook):
  """Writes the model_dir record once the session exists, i.e. the checkpoint has restored."""

  def __init__(self, model_dir, params):
    self._model_dir = model_dir
    self._params = params

  def after_create_session(self, session, coord):
    del session, coord
    est_lib.check_model_dir(self._model_dir, self._params, write=True)


def train_hooks(estimator):
  """The hooks every training run adds: stop on a signal, write the record after restore."""
  return [interrupts.StopOnSignal(), RecordHook(estimator.model_dir, estimator.params)]
