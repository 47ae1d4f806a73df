"""Your own images: options, bad images, decoding in chunks, the decode cache, splits, labels."""

import dataclasses
import hashlib
import os
import sys
import time
from typing import (TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence, TextIO,
                    Tuple)

import numpy as np
import numpy.typing as npt

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.data.dataset import Images

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.data.decode import Decoding

CACHE_ENV = "MNIST_ESTIMATOR_CACHE"  # the record cache's folder (inputs/record_cache.py)
CACHE_VERSION = "decode.py-2"  # in every cache key: sets decoded another way are not reused
DEFAULT_TEST_SPLIT = 0.1
CHUNK = 256  # images per decoding graph run, at most
_CHUNK_BYTES = 64 * 2**20  # and at most this much decoded: big photos go a few at a time
_PROGRESS_AFTER = 2.0  # seconds of decoding before a progress line: short ones show none


@dataclasses.dataclass(frozen=True)
class ImageOptions:
  """How to read a data set of your own (the --image_size ... flags)."""
  image_size: Optional[Tuple[int, int]] = None  # (H, W); None: the size every image has
  channels: Optional[int] = None      # 1 or 3; None: 3 if any image has colour
  test_split: Optional[float] = None  # None: DEFAULT_TEST_SPLIT where it applies
  stream: str = "auto"  # a folder: from the files (yes), in memory (no), by its size (auto)
  skip_bad_images: bool = False
  seed: int = 0


def parse_size(text: object) -> Optional[Tuple[int, int]]:
  """(H, W) of "HxW", or None if it is not that."""
  parts = str(text).lower().split("x")
  if len(parts) == 2 and all(p.strip().isdigit() and int(p) > 0 for p in parts):
    return int(parts[0]), int(parts[1])
  return None


def held_out(options: ImageOptions) -> float:
  """The share of each class held out as the test set: --test_split, or the default."""
  return (DEFAULT_TEST_SPLIT if options.test_split is None
          else options.test_split)


def refuse_test_split(options: ImageOptions, where: str, why: str) -> None:
  """Refuses an explicit --test_split where the data has a test split of its own.

  Args:
    options: the ImageOptions.
    where: the data set, e.g. "folder:DIR".
    why: what its test split is, e.g. "DIR/test".
  """
  if options.test_split is not None:
    raise UsageError(f"--test_split={options.test_split:g} does not apply: "
                     f"{where} has its own test set ({why}); drop --test_split")


def check_bad(bad: Sequence[Tuple[object, str]], skip_bad: bool) -> None:
  """Refuses the first bad image unless --skip_bad_images.

  Args:
    bad: [(name, reason)]: a file, or a TFRecord's example, and why it is not read.
    skip_bad: --skip_bad_images.

  Raises:
    UsageError: naming the first one, and how many others.
  """
  if bad and not skip_bad:
    name, why = bad[0]
    others = f" and {len(bad) - 1:,} other bad image(s)" if len(bad) > 1 else ""
    raise UsageError(f"{name} does not decode as an image ({why}); remove it, or pass "
                     f"--skip_bad_images to skip it{others}")


def chunk_size(decoding: "Decoding") -> int:
  """Images per decoding run: CHUNK, fewer for large images (a run holds its whole output)."""
  one = decoding.height * decoding.width * decoding.channels
  return max(1, min(CHUNK, _CHUNK_BYTES // max(one, 1)))


def progress(total: int, out: Optional[TextIO] = None,
             verb: str = "decoding") -> Callable[[int], None]:
  """A `progress(done)` for `verb` `total` images: a line on stderr once it takes a while.

  On a terminal one live line; otherwise a line at each tenth, so logs stay short.
  """
  stream, start = out or sys.stderr, time.time()
  shown: List[Optional[int]] = [None]

  def show(done: int) -> None:
    elapsed, tenth, tty = time.time() - start, 10 * done // max(total, 1), stream.isatty()
    if shown[0] is None and elapsed < _PROGRESS_AFTER:
      return
    if not tty and tenth == shown[0] and done < total:
      return
    shown[0] = tenth
    end, prefix = ("\n" if done >= total or not tty else ""), ("\r" if tty else "")
    stream.write(f"{prefix}{verb} {total:,} images: {done:,} ({100 * done // max(total, 1)}%), "
                 f"{done / max(elapsed, 1e-6):,.0f} images/s{end}")
    stream.flush()
  return show


def cache_key(*parts: object, files: Iterable[str] = ()) -> str:
  """A hash of the files' names, sizes and mtimes and of `parts`: an edited set rebuilds."""
  digest = hashlib.sha1(repr((CACHE_VERSION, *parts)).encode())
  for path in files:
    stat = os.stat(path)
    digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
  return digest.hexdigest()[:16]


def cache_folder() -> str:
  """The record cache's folder: $MNIST_ESTIMATOR_CACHE, else <tmp>/mnist_estimator_cache."""
  import tempfile  # pylint: disable=g-import-not-at-top
  return os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(),
                                                   "mnist_estimator_cache")


def is_cached(key: str) -> bool:
  """`cached` has the arrays of `key` already (they load without decoding)."""
  return os.path.isfile(os.path.join(cache_folder(), f"images-{key}.npz"))


def cached(key: str, build: Callable[[], Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
  """The arrays `build()` returns, kept as an npz in the record cache under `key`."""
  folder = cache_folder()
  path = os.path.join(folder, f"images-{key}.npz")
  if os.path.isfile(path):
    try:
      with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}
    except (OSError, ValueError):
      pass  # damaged: built again
  arrays = build()
  os.makedirs(folder, exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
  return arrays


def stratified_split(labels: np.ndarray, share: float,
                     seed: int) -> Tuple[np.ndarray, np.ndarray]:
  """(train indices, test indices): `share` of each class held out, at least one if any."""
  rng = np.random.RandomState(seed)
  train: List[int] = []
  test: List[int] = []
  for cls in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == cls))
    n_test = int(round(len(members) * share))
    if share > 0 and len(members) > 1:
      n_test = min(max(n_test, 1), len(members) - 1)
    test += list(members[:n_test])
    train += list(members[n_test:])
  return np.sort(np.array(train, np.int64)), np.sort(np.array(test, np.int64))


def check_labels(name: str, y_train: np.ndarray, y_test: np.ndarray,
                 class_names: Sequence[object]) -> None:
  """Refuses one class only, labels out of range, a test class with no training images."""
  n = len(class_names)
  for split, y in (("training", y_train), ("test", y_test)):
    bad = np.flatnonzero((y < 0) | (y >= n))
    if bad.size:
      raise UsageError(f"{name}: {split} label {y[bad[0]]} at index {bad[0]} is outside "
                       f"0..{n - 1}; labels are class ids 0..n_classes-1")
  present = set(np.unique(y_train).tolist())
  if len(present) < 2:
    raise UsageError(f"{name} has one class only ({class_names[int(y_train[0])]}) in its "
                     "training images; a classifier needs two or more classes")
  missing = sorted(set(np.unique(y_test).tolist()) - present)
  if missing:
    names = ", ".join(str(class_names[i]) for i in missing)
    raise UsageError(f"{name}: the test class(es) {names} have no training images; add "
                     "some, or remove them from the test set")


def make_dataset(name: str, images: Images, labels: npt.ArrayLike, test_images: Images,
                 test_labels: npt.ArrayLike, class_names: Sequence[object], source: str,
                 decoding: Optional["Decoding"] = None) -> Dataset:
  """The Dataset of your own images, after the label checks (decoding: a decode.Decoding)."""
  labels, test_labels = np.asarray(labels, np.int32), np.asarray(test_labels, np.int32)
  check_labels(name, labels, test_labels, class_names)
  if not len(test_labels):
    raise UsageError(f"{name} has no test images; add a test split (DIR/test, a TEST_GLOB), "
                     "or raise --test_split")
  contiguous = lambda x: np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x
  return Dataset(name, tuple(int(d) for d in images.shape[1:]), len(class_names),
                 contiguous(images), labels, contiguous(test_images),
                 test_labels, source, class_names=tuple(map(str, class_names)),
                 decoding=decoding)
