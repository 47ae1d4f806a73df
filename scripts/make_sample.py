"""Cuts the bundled MNIST sample (first 5000 train / 1000 test images) out of the full IDX files.

Usage, from the project root:
  python scripts/make_sample.py --data_dir ../shared/data/mnist \
      --out mnist_estimator/data/mnist_sample.npz
"""

import argparse
import os
import sys

import numpy as np

# Run as a plain script, sys.path[0] is scripts/; the project root makes the package importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from mnist_estimator.data import readers
from mnist_estimator.common.errors import UsageError
# pylint: enable=g-import-not-at-top,wrong-import-position


def _idx_path(data_dir, base):
  """Returns data_dir/base.gz or data_dir/base, whichever exists; UsageError if neither."""
  for candidate in (base + ".gz", base):
    path = os.path.join(data_dir, candidate)
    if os.path.isfile(path):
      return path
  raise UsageError(f"{data_dir} has no {base}[.gz]; pass --data_dir with the four MNIST IDX files")


def _head(data_dir, prefix, n):
  """Returns the first n images [n, 28, 28] and labels [n] (both uint8) of one MNIST split."""
  images = readers.read_idx(_idx_path(data_dir, f"{prefix}-images-idx3-ubyte"))
  labels = readers.read_idx(_idx_path(data_dir, f"{prefix}-labels-idx1-ubyte"))
  if images.shape[1:] != (28, 28) or len(images) != len(labels) or len(labels) < n:
    raise UsageError(f"{data_dir}: {prefix} files hold images {images.shape} and labels "
                     f"{labels.shape}; need >= {n} matching 28x28 images: use the real MNIST files")
  return images[:n], labels[:n]


def make_sample(data_dir, out, n_train=5000, n_test=1000):
  """Writes the sample npz and prints its size and label counts.

  Args:
    data_dir: directory with the four full MNIST IDX files (.gz or raw).
    out: path of the .npz to write (keys x_train, y_train, x_test, y_test).
    n_train: how many leading training images to keep.
    n_test: how many leading test images to keep.

  Raises:
    UsageError: the IDX files are missing or invalid.
  """
  x_train, y_train = _head(data_dir, "train", n_train)
  x_test, y_test = _head(data_dir, "t10k", n_test)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  np.savez_compressed(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
  print(f"wrote {out}: {os.path.getsize(out)} bytes")
  for split, y in (("train", y_train), ("test", y_test)):
    counts = np.bincount(y, minlength=10)
    print(f"{split}: {len(y)} images; label counts 0..9: {' '.join(str(c) for c in counts)}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", required=True, help="directory with the full MNIST IDX files")
  parser.add_argument("--out", default=os.path.join("mnist_estimator", "data", "mnist_sample.npz"))
  parser.add_argument("--n_train", type=int, default=5000)
  parser.add_argument("--n_test", type=int, default=1000)
  args = parser.parse_args(argv)
  try:
    make_sample(args.data_dir, args.out, args.n_train, args.n_test)
  except UsageError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  main()
