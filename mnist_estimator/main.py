"""Command line: `python -m mnist_estimator.main --model=cnn --steps=20000`."""

import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags as absl_flags
import tensorflow as tf

from mnist_estimator import flags
from mnist_estimator import runner
from mnist_estimator.errors import UsageError

flags.define_flags()


def _quiet_tensorflow():
  """One log stream (absl's), without TF's per-call deprecation notices for tf.compat.v1."""
  from tensorflow.python.util import deprecation  # pylint: disable=g-import-not-at-top
  deprecation._PRINT_DEPRECATION_WARNINGS = False  # pylint: disable=protected-access
  warnings.filterwarnings("ignore", message=".*is deprecated and will be removed.*")
  logger = tf.get_logger()
  for handler in list(logger.handlers):
    logger.removeHandler(handler)


def main(argv):
  _quiet_tensorflow()
  try:
    if len(argv) > 1:
      raise UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag "
                       "(see --helpshort)")
    runner.run(flags.run_spec())
  except (UsageError, tf.errors.OpError) as e:
    if absl_flags.FLAGS.verbose:
      raise
    message = e.message if isinstance(e, tf.errors.OpError) else str(e)
    print(f"error: {message.splitlines()[0]}", file=sys.stderr)
    sys.exit(2)


def run():
  """Console-script entry point (`mnist-estimator`)."""
  app.run(main)


if __name__ == "__main__":
  run()
