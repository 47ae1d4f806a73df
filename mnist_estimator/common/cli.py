"""What every command line shares: a quiet TensorFlow import, --verbose, one-line errors."""

import contextlib
import os
import sys
import warnings
from typing import Any, Callable, Iterator, List, Optional, Sequence

from mnist_estimator.common import runlog

# The flags define_verbose adds to every command line.
COMMON_FLAGS = ("verbose",)


def import_tensorflow(freeze: bool = True) -> None:
  """An entry point's first call: imports TensorFlow without its C++ noise on the console.

  C++ INFO and WARNING lines are off (TF_CPP_MIN_LOG_LEVEL=2, unless set), and the
  start-up lines of the import (CUDA factories, ...) go to the run's log file.

  Args:
    freeze: freeze the objects alive after the import out of the cyclic collector
      (runlog.import_tensorflow); the Python API, in a user's process, passes False.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  runlog.import_tensorflow(freeze)


def define_verbose(flag_values: Any = None) -> None:
  """--verbose: Python tracebacks instead of one-line errors (safe to call again)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flag_values = flags.FLAGS if flag_values is None else flag_values
  if "verbose" not in flag_values:
    flags.DEFINE_bool("verbose", False, "Show Python tracebacks for errors.",
                      flag_values=flag_values)


def flags_parser(help_text: Callable[[], str]) -> Callable[[List[str]], List[str]]:
  """absl's flag parser for app.run, with --help (--helpshort, -h, -?) printing help_text().

  absl's own --help lists the flags of the __main__ module: none for a console script
  (mnist-estimator-predict) or a package's __main__.py that calls the command's module.
  """
  def parse(argv: List[str]) -> List[str]:
    from absl import app  # pylint: disable=g-import-not-at-top
    if any(arg in ("--help", "--helpshort", "-h", "-?") for arg in argv[1:]):
      print(help_text())
      sys.exit(0)
    return app.parse_flags_with_usage(argv)
  return parse


def module_help(usage: str, *modules: Any) -> str:
  """`usage`, then the flags each of `modules` defines (absl's text for them)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  return "\n".join([usage.strip()] + [flags.FLAGS.module_help(m) for m in modules])


def quiet_tensorflow() -> None:
  """One log stream (absl's), without TF's deprecation notices for tf.compat.v1 and tf.layers."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.util import deprecation  # pylint: disable=g-import-not-at-top
  deprecation._PRINT_DEPRECATION_WARNINGS = False  # pylint: disable=protected-access
  warnings.filterwarnings("ignore", message=".*is deprecated and will be removed.*")
  logger = tf.get_logger()
  for handler in list(logger.handlers):  # absl's handler already prints TF's records
    logger.removeHandler(handler)


def user_message(error: BaseException) -> Optional[str]:
  """A UsageError's first line, or the cause of an OpError, full disk, ...; None for others."""
  from mnist_estimator.common import causes  # pylint: disable=g-import-not-at-top
  from mnist_estimator.common.errors import UsageError  # pylint: disable=g-import-not-at-top
  if isinstance(error, UsageError):
    return str(error).splitlines()[0]
  return causes.message(error)


@contextlib.contextmanager
def one_line_errors(verbose: bool = False) -> Iterator[None]:
  """Turns a user's error into `error: <message>` on stderr and exit 2 (a traceback if verbose)."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except  # re-raised unless it is the user's
    message = user_message(e)
    if message is None or verbose:
      raise
    details = getattr(e, "details", None)  # the frames of a user's own model that raised
    if details:
      print(f"in your code:\n{details.rstrip()}", file=sys.stderr)
    print(f"{getattr(e, 'line_prefix', 'error: ')}{message}", file=sys.stderr)
    sys.exit(getattr(e, "exit_code", 2))
  except KeyboardInterrupt:
    if verbose:
      raise
    print("error: interrupted (Ctrl-C); nothing was saved since the last checkpoint",
          file=sys.stderr)
    sys.exit(130)


def expand_short_flags(argv: Sequence[str]) -> List[str]:
  """A bare `-v` means `--verbosity=1`: TensorFlow's own log on the console too."""
  return [("--verbosity=1" if arg == "-v" else arg) for arg in argv]
