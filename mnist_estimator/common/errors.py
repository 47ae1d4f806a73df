"""The one exception type for problems a user can cause and fix."""


class UsageError(Exception):
  """A bad flag, file or model_dir; the message says what is wrong and how to fix it.

  `main` prints the message on one line and exits non-zero, without a traceback.
  """
