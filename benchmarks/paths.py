"""Where the checkout is (benchmarks/ lives in it, not in the installed package): flags/, data."""

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flagfile(name):
  """The path of flags/<name>.flags in the checkout."""
  return os.path.join(REPO_ROOT, "flags", f"{name}.flags")


def child_env(**extra):
  """os.environ for a `python -m benchmarks.X` child: the checkout first on its PYTHONPATH."""
  python_path = filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])
  return dict(os.environ, PYTHONPATH=os.pathsep.join(python_path), **extra)
