"""Command line: `python -m mnist_estimator.main --model=cnn --steps=20000`."""

import sys
from typing import Sequence

from mnist_estimator.common import cli  # pylint: disable=g-import-not-at-top

cli.import_tensorflow()  # first: its start-up lines go to the run log, not the console

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from mnist_estimator import api
from mnist_estimator import flagdefs
from mnist_estimator.common import runlog
from mnist_estimator.common.errors import UsageError
from mnist_estimator.run import guard
from mnist_estimator.run import spec as spec_lib

flagdefs.define_flags()
flags.adopt_module_key_flags(flagdefs)


def main(argv: Sequence[str]) -> None:
  cli.quiet_tensorflow()
  runlog.start(verbose=flags.FLAGS.verbosity >= 1)
  with cli.one_line_errors(flags.FLAGS.verbose):
    if len(argv) > 1:
      raise UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag "
                       "(see --helpshort)")
    settings = {name: flags.FLAGS[name].value for name in spec_lib.field_names()}
    # The Python API, which a notebook calls too.
    api.MODES[settings["mode"]](**settings)


def run() -> None:
  """Console-script entry point (`mnist-estimator`)."""
  with cli.one_line_errors():
    guard.check_argv(sys.argv)  # undecodable paths and flagfiles, before absl reads them
  app.run(main, argv=cli.expand_short_flags(sys.argv), flags_parser=flagdefs.parse_with_help)


if __name__ == "__main__":
  run()
