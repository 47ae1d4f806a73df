"""A run's own log file: TensorFlow's start-up lines and INFO records go there, not the console."""

import gc
import logging as pylogging
import os
import re
import sys
import tempfile
from logging import handlers as pyhandlers
from typing import Any, Dict, List, Optional

from absl import logging

LOG_NAME = "mnist_estimator.log"
# Printed by every `import tensorflow` of the CPU wheel on a machine without CUDA
# (tensorflow/tensorflow#62075) or about CPU features: noise there, kept in the log file.
HARMLESS = re.compile(
    r"Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning|Could not find cuda drivers|"
    r"oneDNN custom operations are on|This TensorFlow binary is optimized|"
    r"rebuild TensorFlow with the appropriate compiler flags|cuda_executor|"
    r"^To enable the following instructions")
# tf.estimator's own warnings that need nothing of the user: exports of evaluations less than
# a second apart (a timestamped folder taken), and tf.distribute reading a dataset's options.
# Kept in the log file, not shown on the console.
CONSOLE_HARMLESS = re.compile(
    r"Directory .* already exists; retrying|"
    r"To make it possible to preserve tf.data options across serialization boundaries")

# startup: the lines import_tensorflow caught; buffer: a MemoryHandler until attach(); file:
# the FileHandler of the run's log.
_state: Dict[str, Any] = {"startup": [], "buffer": None, "file": None}


def import_tensorflow(freeze: bool = True) -> List[str]:
  """Imports TensorFlow with its C++ start-up lines caught at the file-descriptor level.

  Lines matching HARMLESS are kept for the log file (see attach); any other line,
  a real error among them, still goes to stderr at once.

  Args:
    freeze: move every object alive after the import out of the cyclic collector's reach
      (gc.freeze). A command's own objects are few and live as long as it does; a notebook's
      are the user's, and a frozen one is never collected, so the Python API passes False.

  Returns:
    The lines caught.
  """
  if "tensorflow" in sys.modules:
    return []
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as caught:
    os.dup2(caught.fileno(), 2)
    # TensorFlow's import makes about 400,000 objects that live as long as the process.
    # Python's cyclic collector walked them during the import and in every full collection
    # after it (0.5 s of a 1-step cnn run on an AVX2 EPYC); off during the import, and
    # frozen after it, it leaves them out.
    collecting = gc.isenabled()
    gc.disable()
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top,unused-import,import-outside-toplevel  # noqa: F401
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      if freeze:
        gc.freeze()
      if collecting:
        gc.enable()
    caught.seek(0)
    lines = caught.read().decode("utf-8", "replace").splitlines()
  for line in lines:
    if not HARMLESS.search(line):
      print(line, file=sys.stderr)
  _state["startup"] += lines
  return lines


def start(verbose: bool = False) -> None:
  """Console: warnings and errors only (everything with `verbose`); INFO waits for attach().

  Call once absl has parsed the flags (its handler is installed then).
  """
  handler = logging.get_absl_handler()
  handler.setLevel(pylogging.DEBUG if verbose else pylogging.WARNING)
  if not verbose:
    handler.addFilter(console_shows)  # once: addFilter skips a filter it already has
    pylogging.captureWarnings(True)  # Python's warnings as records: the same filter and file
  root = pylogging.getLogger()
  if _state["buffer"] is None and _state["file"] is None:
    # Records from before the model_dir is known (and accepted) wait here.
    buffer = pyhandlers.MemoryHandler(capacity=10**6, flushLevel=pylogging.CRITICAL + 1)
    _state["buffer"] = buffer
    root.addHandler(buffer)


def console_shows(record: pylogging.LogRecord) -> bool:
  """Whether the console shows a record (all go to the log file): not CONSOLE_HARMLESS's."""
  return not CONSOLE_HARMLESS.search(record.getMessage())


def attach(model_dir: str, name: str = LOG_NAME) -> Optional[str]:
  """Sends this process' log to model_dir/<name> from now on (with what came before).

  A no-op (None) unless start() was called: library use and tests keep Python's
  logging as it is.

  Returns:
    The log file's path, or None.
  """
  if _state["buffer"] is None and _state["file"] is None:
    return None
  path = os.path.join(model_dir, name)
  if _state["file"] is not None:
    if _state["file"].baseFilename == os.path.abspath(path):
      return path
    _close_file()
  try:
    os.makedirs(model_dir, exist_ok=True)
    handler = pylogging.FileHandler(path, mode="a", encoding="utf-8")
  except OSError:
    return None  # the run itself reports an unwritable model_dir
  handler.setFormatter(logging.PythonFormatter())
  handler.setLevel(pylogging.DEBUG)
  for line in _state["startup"]:
    handler.stream.write(line + "\n")
  _state["startup"] = []
  root = pylogging.getLogger()
  buffered = _state["buffer"]
  if buffered is not None:
    buffered.setTarget(handler)
    buffered.flush()
    root.removeHandler(buffered)
    _state["buffer"] = None
  root.addHandler(handler)
  _state["file"] = handler
  return path


def _close_file() -> None:
  pylogging.getLogger().removeHandler(_state["file"])
  _state["file"].close()
  _state["file"] = None
