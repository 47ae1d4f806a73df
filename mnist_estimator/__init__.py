"""mnist_estimator: the classic TensorFlow MNIST texts as one tf.estimator framework."""

import os as _os
from typing import Any as _Any
from typing import List as _List

from mnist_estimator.common import precision as _precision

__version__ = "0.1.0"

# Before anything imports TensorFlow: oneDNN's kernels on every CPU (see enable_onednn).
_precision.enable_onednn()

# Before anything imports grpcio (serve, the load test, Ray): without its fork handlers. This
# package forks only to exec (subprocess), and on Python 3.9, whose subprocess forks where 3.10+
# vfork, grpcio's handlers aborted the child about 7 times in 100 while a channel was busy.
GRPC_FORK_ENV = {"GRPC_ENABLE_FORK_SUPPORT": "0"}
for _name, _value in GRPC_FORK_ENV.items():
  _os.environ.setdefault(_name, _value)

# The Python API (api.py), imported on first use: `import mnist_estimator` stays light (no
# TensorFlow) until a notebook calls mnist_estimator.train(...).
_API = ("train", "evaluate", "export", "predict", "run", "settings", "load_data", "make_spec",
        "Result", "Predictions")


def __getattr__(name: str) -> _Any:
  if name in _API:
    from mnist_estimator import api  # pylint: disable=g-import-not-at-top,import-outside-toplevel
    return getattr(api, name)
  raise AttributeError(f"module 'mnist_estimator' has no attribute {name!r}")


def __dir__() -> _List[str]:
  return sorted({*globals(), *_API})
