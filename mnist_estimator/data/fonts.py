"""The fonts set of "Hands-on Deep Learning with TensorFlow" (36x36 letters, 5 classes)."""

import os
from typing import Optional

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import readers
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.data.dataset import DatasetInfo

_FONTS_FILE = "data_with_labels.npz"
_FONTS_HW = (36, 36)


def _load_fonts(data_dir: Optional[str] = None, seed: int = 0) -> Dataset:
  """The fonts set of "Hands-on Deep Learning with TensorFlow", split 90/10 as the book does."""
  path = os.path.join(data_dir, _FONTS_FILE) if data_dir is not None else None
  if path is None or not os.path.isfile(path):
    where = "no --data_dir was given" if path is None else f"{path} does not exist"
    raise UsageError(f"The fonts data set needs {_FONTS_FILE} but {where}; pass --data_dir=DIR "
                     f"for the directory that holds it (e.g. --data_dir=../shared/data/fonts)")
  a = readers.read_npz(path, ("arr_0", "arr_1"))
  x, y = readers.check_split(a["arr_0"], a["arr_1"], 5, _FONTS_HW, f"{path}[arr_0]",
                             f"{path}[arr_1]")
  # The book: np.random.seed(0); np.random.permutation(n); first 10% validation. A private
  # RandomState gives the same permutation without touching the global numpy RNG.
  perm = np.random.RandomState(seed).permutation(len(y))
  n_test = int(len(y) * 0.1)
  if n_test == 0:
    raise UsageError(f"{path} holds only {len(y)} images, too few for a 10% validation split; "
                     "use the full data_with_labels.npz (2790 images)")
  test, train = perm[:n_test], perm[n_test:]
  return Dataset("fonts", _FONTS_HW + (1,), 5, x[train], y[train], x[test], y[test],
                 source=f"{path} (seed {seed}: {len(train)} train / {n_test} validation)")


FONTS = DatasetInfo("fonts", _load_fonts,
                    dir_flag="fonts_dir", panel="fonts validation accuracy",
                    about="the book's fonts: 2,790 letters A-E in 36x36")
