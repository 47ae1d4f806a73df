"""What several test modules share: repo root, subprocess runs, small runs, PNG and IDX files."""

import gzip
import os
import socket
import subprocess
import sys

import numpy as np

from mnist_estimator import datasets
from mnist_estimator.spec import RunSpec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cli_env(**extra):
  """The environment of a subprocess that imports this checkout's package."""
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, **extra)


def run_module(module, *argv, cwd=ROOT, timeout=300):
  """Runs `python -m MODULE ARGV` to the end; returns the CompletedProcess (text)."""
  return subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd, env=cli_env(),
                        capture_output=True, text=True, timeout=timeout)


def start_module(module, *argv, merge_stderr=True):
  """Starts `python -m MODULE ARGV` with text pipes (stderr into stdout if merge_stderr)."""
  return subprocess.Popen([sys.executable, "-m", module, *argv], cwd=ROOT, env=cli_env(),
                          stdout=subprocess.PIPE, text=True,
                          stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE)


def free_ports(count):
  """`count` distinct free TCP ports on 127.0.0.1."""
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def small_spec(model, model_dir, **overrides):
  """The model's defaults for a few-step run on the sample: 12 steps of 16, seeded, fp32.

  fp32 unless overridden: `auto` would train in bf16 on some CPUs and fp32 on others.
  """
  values = dict(model_dir=model_dir and str(model_dir), steps=12, batch_size=16,
                eval_batch_size=64, log_every_n_iter=5, seed=1, precision="fp32")
  values.update(overrides)
  return RunSpec.for_model(model, **values)


def read_png(path):
  """Asserts `path` is a plausible, non-blank PNG picture; returns its RGB pixels in [0, 1]."""
  import matplotlib.image  # pylint: disable=g-import-not-at-top
  with open(path, "rb") as f:
    assert f.read(8) == PNG_SIGNATURE, path
  pixels = matplotlib.image.imread(path)
  assert pixels.ndim == 3 and pixels.shape[2] in (3, 4), pixels.shape
  assert pixels.shape[0] > 100 and pixels.shape[1] > 100, pixels.shape
  assert pixels[..., :3].std() > 0
  return pixels[..., :3]


_IDX = datasets._IDX_FILES  # pylint: disable=protected-access


# Writers of small MNIST files in the real formats (IDX, gzip or raw).
def idx_bytes(array, magic=None):
  """Returns the IDX encoding of a uint8 array: magic, big-endian dims, then the bytes."""
  array = np.asarray(array, np.uint8)
  magic = 0x800 | array.ndim if magic is None else magic
  dims = np.array(array.shape, ">u4").tobytes()
  return magic.to_bytes(4, "big") + dims + array.tobytes()


def write_idx(path, array, gz=True, **kwargs):
  data = idx_bytes(array, **kwargs)
  with open(path, "wb") as f:
    f.write(gzip.compress(data) if gz else data)
  return str(path)


def fake_mnist(n_train=12, n_test=5, seed=1):
  rng = np.random.RandomState(seed)
  return (rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
          rng.randint(0, 10, n_train).astype(np.uint8),
          rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
          rng.randint(0, 10, n_test).astype(np.uint8))


def write_mnist_dir(folder, arrays=None, gz=True, skip=()):
  arrays = fake_mnist() if arrays is None else arrays
  for base, array in zip(_IDX, arrays):
    if base not in skip:
      write_idx(folder / (base + (".gz" if gz else "")), array, gz=gz)
  return arrays
