"""Writers of small MNIST files in the real formats (IDX, gzip or raw), for tests."""

import gzip

import numpy as np

from mnist_estimator import datasets

_IDX = datasets._IDX_FILES  # pylint: disable=protected-access


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
