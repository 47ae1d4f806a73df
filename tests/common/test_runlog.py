"""runlog: TensorFlow's objects frozen out of the collector, or not; what the console shows."""

import gc
import logging
import subprocess
import sys

import helpers

from mnist_estimator.common import runlog


def test_tensorflows_objects_are_frozen_and_the_collector_left_on():
  # conftest imported TensorFlow through cli.import_tensorflow, as every command does.
  assert "tensorflow" in sys.modules
  assert gc.get_freeze_count() > 100_000  # about 400,000 objects with TF 2.15
  assert gc.isenabled()


def test_the_python_api_freezes_none_of_a_notebooks_objects():
  """In a user's process (the API's first call imports TensorFlow) nothing is frozen: an object
  of the notebook's that later becomes cyclic garbage must still be collected."""
  code = ("import gc, weakref, mnist_estimator as me\n"
          "class Cell: pass\n"
          "a, b = Cell(), Cell(); a.other, b.other = b, a; alive = weakref.ref(a)\n"
          "me.settings()\n"  # the API's first call: TensorFlow's import
          "import tensorflow\n"
          "del a, b; gc.collect()\n"
          "print(gc.get_freeze_count(), gc.isenabled(), alive() is None)\n")
  done = subprocess.run([sys.executable, "-c", code], env=helpers.cli_env(), capture_output=True,
                        text=True, timeout=120, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.split() == ["0", "True", "True"], done.stdout


def _record(message):
  return logging.LogRecord("tensorflow", logging.WARNING, "export_utils.py", 276, message,
                           None, None)


def test_the_console_leaves_out_tf_estimators_own_notices_only():
  assert not runlog.console_shows(_record(
      "Directory /m/export/best/1796467547 already exists; retrying (attempt 1/10)"))
  assert not runlog.console_shows(_record(
      "/x/dataset_ops.py:462: UserWarning: To make it possible to preserve tf.data options "
      "across serialization boundaries, their implementation has moved"))
  assert runlog.console_shows(_record("Directory /m already exists"))
  assert runlog.console_shows(_record("a user's own warning"))
