"""Command line: `python -m mnist_estimator.main --model=cnn --steps=20000`."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING: not for users

from mnist_estimator import runlog  # pylint: disable=g-import-not-at-top

runlog.import_tensorflow()  # before anything else imports it: its start-up lines go to the log

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from mnist_estimator import cli
from mnist_estimator import flagdefs
from mnist_estimator import guard
from mnist_estimator import runner
from mnist_estimator.errors import UsageError

flagdefs.define_flags()
flags.adopt_module_key_flags(flagdefs)


def main(argv):
  cli.quiet_tensorflow()
  runlog.start(verbose=flags.FLAGS.verbosity >= 1)
  with cli.one_line_errors(flags.FLAGS.verbose):
    if len(argv) > 1:
      raise UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag "
                       "(see --helpshort)")
    runner.run(flagdefs.run_spec())


def run():
  """Console-script entry point (`mnist-estimator`)."""
  with cli.one_line_errors():
    guard.check_argv(sys.argv)  # undecodable paths and flagfiles, before absl reads them
  app.run(main, argv=cli.expand_short_flags(sys.argv), flags_parser=flagdefs.parse_with_help)


if __name__ == "__main__":
  run()
