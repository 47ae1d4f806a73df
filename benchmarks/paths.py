"""Where the checkout is (benchmarks/ lives in it, not in the installed package): flags/, data."""

import functools
import os
import subprocess

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flagfile(name):
  """The path of flags/<name>.flags in the checkout."""
  return os.path.join(REPO_ROOT, "flags", f"{name}.flags")


def child_env(**extra):
  """os.environ for a `python -m benchmarks.X` child: the checkout first on its PYTHONPATH."""
  python_path = filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])
  return dict(os.environ, PYTHONPATH=os.pathsep.join(python_path), **extra)


# `make torch`'s venv: PyTorch's own CPU build (MKL, oneDNN 3). Debian's python3-torch 1.13
# multiplies matrices with a generic BLAS: 1.6 steps/s on the cnn against 10.8 (2.13.0).
TORCH_VENV_PYTHON = os.path.join(REPO_ROOT, ".venv-torch", "bin", "python")


def torch_python():
  """The Python the PyTorch ports run under: `make torch`'s venv, else Debian's python3."""
  return TORCH_VENV_PYTHON if os.path.exists(TORCH_VENV_PYTHON) else "/usr/bin/python3"


@functools.lru_cache(maxsize=None)  # once per Python: each PyTorch variant asks every round
def has_torch(python):
  """Whether `python` runs and imports torch and numpy."""
  try:
    return subprocess.run([python, "-c", "import torch, numpy"], capture_output=True,
                          check=False, timeout=120).returncode == 0
  except OSError:
    return False
