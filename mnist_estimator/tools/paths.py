"""Where the repository's flagfiles are, for the tools that run them from a checkout."""

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def flagfile(name):
  """The path of flags/<name>.flags in the checkout."""
  return os.path.join(REPO_ROOT, "flags", f"{name}.flags")
