"""Load MNIST, Fashion-MNIST, the bundled MNIST sample and the book's fonts set as uint8 arrays."""

import dataclasses
import glob
import gzip
import math
import os
import zipfile
import zlib
from typing import Optional

from absl import logging
import numpy as np

from mnist_estimator import checksums
from mnist_estimator.errors import UsageError

_IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1-D
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3-D
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_NPZ_NAMES = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist.npz"}
_SAMPLE_PATH = os.path.join(os.path.dirname(__file__), "data", "mnist_sample.npz")
_FONTS_FILE = "data_with_labels.npz"
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
_MNIST_HW = (28, 28)
_FONTS_HW = (36, 36)


# eq=False: the generated __eq__/__hash__ would compare and hash numpy arrays, which fails.
@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """One data set as raw uint8 pixels [N, H, W, C] (0 = background) and int32 labels [N]."""
  name: str
  image_shape: tuple
  n_classes: int
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  source: str
  # Sequence data sets (weather): float32 x, names of the classes, and the (mean, std) of the
  # raw features that x was standardised with, so a SavedModel can take raw values.
  class_names: Optional[tuple] = None
  standardize: Optional[tuple] = None


def _keras_mnist():
  # Imported here so that importing this module stays fast and works without TensorFlow.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.keras.datasets.mnist.load_data()


def _keras_fashion_mnist():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.keras.datasets.fashion_mnist.load_data()


# An indirection so tests can make tf.keras fail (as it does offline) without touching the network.
_KERAS_LOADERS = {"mnist": _keras_mnist, "fashion_mnist": _keras_fashion_mnist}


def _read_bytes(path):
  """Returns the file's bytes, gunzipped if it is named .gz or starts with the gzip magic."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise UsageError(f"Cannot read {path}: {e.strerror or e}; check the path and its "
                     "permissions") from None
  if path.endswith(".gz") or data[:2] == b"\x1f\x8b":
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:  # bad CRC, bad header, cut-off stream
      raise UsageError(f"{path} is not a valid gzip file ({e}); re-download it or point "
                       "--data_dir at a complete copy") from None
  return data


def read_idx(path):
  """Reads one IDX file of unsigned bytes (labels or images), gzipped or raw.

  Args:
    path: the file; gzip is detected by a .gz suffix or the gzip magic bytes 1f 8b.

  Returns:
    A uint8 array: [N] for a label file (magic 0x801), [N, H, W] for an image file (0x803).

  Raises:
    UsageError: the file is missing, unreadable, corrupt gzip, not IDX, truncated, or too long.
  """
  data = _read_bytes(path)
  magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
  if magic not in (_IDX_LABELS_MAGIC, _IDX_IMAGES_MAGIC):
    got = f"magic 0x{magic:08x}" if magic is not None else f"only {len(data)} bytes"
    raise UsageError(f"{path} is not an IDX file ({got}); expected magic 0x00000801 (labels) or "
                     "0x00000803 (images) of unsigned bytes; point --data_dir at MNIST IDX files")
  ndim = magic & 0xFF
  header = 4 + 4 * ndim
  if len(data) < header:
    raise UsageError(f"IDX file {path} is truncated: it ends inside its {header}-byte header; "
                     "re-download it or point --data_dir at a complete copy")
  dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
  # math.prod on Python ints: a corrupt header's dims could overflow np.prod's int64.
  expected, held = math.prod(dims), len(data) - header
  what = f"{dims[0]} labels" if ndim == 1 else f"{dims[0]} images of {dims[1]}x{dims[2]}"
  if held < expected:
    raise UsageError(f"IDX file {path} is truncated: header says {what} ({expected} bytes) but it "
                     f"holds {held} bytes; re-download it or point --data_dir at a complete copy")
  if held > expected:
    raise UsageError(f"IDX file {path} has {held - expected} bytes after the {what} its header "
                     "promises; it is corrupt or not MNIST: re-download it")
  # Copy so callers get a writable array, not a view of an immutable bytes object.
  return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()


def _check_split(x, y, n_classes, hw, x_src, y_src):
  """Validates one images/labels pair; returns (uint8 [N,H,W,1] C-contiguous, int32 [N])."""
  x, y = np.asarray(x), np.asarray(y)
  if x.ndim != 3:
    raise UsageError(f"{x_src} holds an array of shape {x.shape}; expected images [N, height, "
                     "width]; check that images and labels are not swapped")
  if y.ndim != 1:
    raise UsageError(f"{y_src} holds an array of shape {y.shape}; expected labels [N]; "
                     "check that images and labels are not swapped")
  if tuple(x.shape[1:]) != hw:
    raise UsageError(f"{x_src} holds {x.shape[1]}x{x.shape[2]} images but this data set needs "
                     f"{hw[0]}x{hw[1]}; point --data_dir at the right data set")
  if not len(x):
    raise UsageError(f"{x_src} holds no images; re-create the file with the data set's images")
  if len(x) != len(y):
    raise UsageError(f"{x_src} holds {len(x)} images but {y_src} holds {len(y)} labels; "
                     "re-download them so that they match")
  if x.dtype != np.uint8 and not (x.dtype.kind in "iu" and 0 <= x.min(initial=0)
                                  and x.max(initial=0) <= 255):
    raise UsageError(f"{x_src} holds {x.dtype} pixels; expected uint8 values 0..255; "
                     "convert the file to raw uint8 pixels")
  if y.dtype.kind not in "iu":
    raise UsageError(f"{y_src} holds {y.dtype} labels; expected integers 0..{n_classes - 1}; "
                     "convert the labels to integers")
  bad = np.flatnonzero((y < 0) | (y >= n_classes))
  if bad.size:
    raise UsageError(f"{y_src} holds label {y[bad[0]]} at index {bad[0]}, outside "
                     f"[0, {n_classes}); it is corrupt or from another data set: re-download it")
  return np.ascontiguousarray(x.astype(np.uint8, copy=False)[..., np.newaxis]), y.astype(np.int32)


def _read_npz(path, keys):
  """Returns {key: array} for `keys` from an .npz file, or raises UsageError."""
  try:
    with np.load(path, allow_pickle=False) as npz:
      missing = [k for k in keys if k not in npz.files]
      if missing:
        raise UsageError(f"{path} lacks the key(s) {', '.join(missing)} (it has: "
                         f"{', '.join(npz.files) or 'none'}); save it with {', '.join(keys)}")
      return {k: npz[k] for k in keys}
  except UsageError:
    raise
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, AttributeError,
          TypeError) as e:
    # AttributeError/TypeError: a lone .npy loads as an ndarray (no .files, no `with`).
    raise UsageError(f"{path} is not a readable .npz file ({type(e).__name__}: {e}); "
                     "re-create it with numpy.savez") from None


def _from_npz(name, path, source, n_classes=10, hw=_MNIST_HW):
  """Builds a Dataset from a keras-style npz with x_train, y_train, x_test, y_test."""
  a = _read_npz(path, _NPZ_KEYS)
  x_train, y_train = _check_split(a["x_train"], a["y_train"], n_classes, hw,
                                  f"{path}[x_train]", f"{path}[y_train]")
  x_test, y_test = _check_split(a["x_test"], a["y_test"], n_classes, hw,
                                f"{path}[x_test]", f"{path}[y_test]")
  return Dataset(name, hw + (1,), n_classes, x_train, y_train, x_test, y_test, source)


def _from_idx(name, paths, data_dir, strict=False):
  """Builds a Dataset from the four IDX files, given as {base name: path}.

  Files that differ from the published data set are named: in a warning (a user's
  own files under the standard names), or with `strict` in a UsageError.
  """
  arrays = {base: read_idx(path) for base, path in paths.items()}
  for base, found, published in checksums.mismatches(name, arrays):
    message = (f"{paths[base]} is not the published {name} file (SHA-256 {found[:12]}..., "
               f"published {published[:12]}...)")
    if strict:
      raise UsageError(f"{message}; delete it and fetch it again, or pass --data_dir")
    logging.warning("%s; using it as given", message)
  splits = []
  for prefix in ("train", "t10k"):
    x_src, y_src = paths[f"{prefix}-images-idx3-ubyte"], paths[f"{prefix}-labels-idx1-ubyte"]
    splits += _check_split(arrays[f"{prefix}-images-idx3-ubyte"],
                           arrays[f"{prefix}-labels-idx1-ubyte"], 10, _MNIST_HW, x_src, y_src)
  return Dataset(name, _MNIST_HW + (1,), 10, *splits, source=f"IDX files in {data_dir}")


def _from_dir(name, data_dir, strict=False):
  """Loads mnist or fashion_mnist from the IDX files or a keras-style npz in data_dir."""
  wanted = (f"the four IDX files {', '.join(f + '[.gz]' for f in _IDX_FILES)} or "
            f"{_NPZ_NAMES[name]} with keys {', '.join(_NPZ_KEYS)}")
  if not os.path.isdir(data_dir):
    raise UsageError(f"--data_dir {data_dir} does not exist or is not a directory; "
                     f"point it at a directory holding {wanted}")
  paths = {}
  for base in _IDX_FILES:
    # Raw first: if both exist the raw file is the already-unpacked copy and reads faster.
    for candidate in (base, base + ".gz"):
      if os.path.isfile(os.path.join(data_dir, candidate)):
        paths[base] = os.path.join(data_dir, candidate)
        break
  if len(paths) == len(_IDX_FILES):
    return _from_idx(name, paths, data_dir, strict)
  if paths:
    missing = [f + "[.gz]" for f in _IDX_FILES if f not in paths]
    raise UsageError(f"--data_dir {data_dir} holds only some of the four IDX files: missing "
                     f"{', '.join(missing)}; copy the missing file(s) into it")
  named = os.path.join(data_dir, _NPZ_NAMES[name])
  npzs = [named] if os.path.isfile(named) else sorted(glob.glob(os.path.join(data_dir, "*.npz")))
  if len(npzs) > 1:
    raise UsageError(f"--data_dir {data_dir} holds several .npz files ({', '.join(npzs)}) and no "
                     f"{_NPZ_NAMES[name]}; rename the right one to {_NPZ_NAMES[name]}")
  if not npzs:
    raise UsageError(f"--data_dir {data_dir} holds no {name} data; put {wanted} there")
  return _from_npz(name, npzs[0], f"npz file {npzs[0]}")


def _from_keras(name):
  """Loads via tf.keras.datasets (its ~/.keras cache, or a download); Exception if that fails."""
  (x_train, y_train), (x_test, y_test) = _KERAS_LOADERS[name]()
  src = f"tf.keras.datasets.{name}"
  arrays = dict(zip(_IDX_FILES, (x_train, y_train, x_test, y_test)))
  wrong = checksums.mismatches(name, arrays)
  if wrong:
    raise UsageError(f"the tf.keras cache of {name} (~/.keras/datasets) is not the published "
                     f"data set: {', '.join(base for base, _, _ in wrong)} differ(s) in SHA-256; "
                     "delete the cached files so tf.keras fetches them again, or pass --data_dir")
  x_train, y_train = _check_split(x_train, y_train, 10, _MNIST_HW, src, src)
  x_test, y_test = _check_split(x_test, y_test, 10, _MNIST_HW, src, src)
  return Dataset(name, _MNIST_HW + (1,), 10, x_train, y_train, x_test, y_test,
                 source=f"{src} (~/.keras/datasets cache)")


def _load_mnist_sample(data_dir=None, seed=0):
  """The MNIST sample that ships with the package; data_dir and seed are ignored."""
  del data_dir, seed  # the sample is fixed
  if not os.path.isfile(_SAMPLE_PATH):
    raise UsageError(f"The bundled sample {_SAMPLE_PATH} is missing; regenerate it with "
                     "python scripts/make_sample.py --data_dir=DIR_WITH_MNIST_IDX_FILES")
  ds = _from_npz("mnist_sample", _SAMPLE_PATH, "")
  source = f"bundled sample ({len(ds.y_train)} train / {len(ds.y_test)} test)"
  return dataclasses.replace(ds, source=source)


def _load_mnist(data_dir=None, seed=0):
  """Full MNIST from data_dir, else tf.keras, else (offline) the bundled sample, loudly."""
  del seed  # MNIST has a fixed train/test split
  if data_dir is not None:
    return _from_dir("mnist", data_dir)
  try:
    return _from_keras("mnist")
  except UsageError:
    raise  # a cache that is there but wrong: named, never replaced by the sample
  except Exception as e:  # pylint: disable=broad-except  # offline, blocked or corrupt cache
    error = e
  sample = dataclasses.replace(_load_mnist_sample(), name="mnist")
  logging.warning(
      "!!! USING ONLY A SMALL SAMPLE OF MNIST (%d train / %d test images), NOT THE FULL "
      "60000/10000: tf.keras could not load MNIST (%s: %s). Accuracies will be lower than the "
      "published ones. Fix: --data_dir=DIR with the four MNIST IDX files, or connect once so "
      "tf.keras can cache it.",
      len(sample.y_train), len(sample.y_test), type(error).__name__, error)
  return sample


def _load_fashion_mnist(data_dir=None, seed=0):
  """Fashion-MNIST from data_dir, else tf.keras; there is no bundled sample to fall back on."""
  del seed  # Fashion-MNIST has a fixed train/test split
  if data_dir is not None:
    return _from_dir("fashion_mnist", data_dir)
  if os.path.isdir(DEBIAN_FASHION_MNIST):  # Debian's package dataset-fashion-mnist
    return _from_dir("fashion_mnist", DEBIAN_FASHION_MNIST, strict=True)
  try:
    return _from_keras("fashion_mnist")
  except UsageError:
    raise
  except Exception as e:  # pylint: disable=broad-except  # offline, blocked or corrupt cache
    raise UsageError(f"tf.keras could not load Fashion-MNIST ({type(e).__name__}: {e}); pass "
                     "--data_dir=DIR with its four IDX files, or connect once so tf.keras can "
                     "cache it") from e


def _load_fonts(data_dir=None, seed=0):
  """The fonts set of "Hands-on Deep Learning with TensorFlow", split 90/10 as the book does."""
  path = os.path.join(data_dir, _FONTS_FILE) if data_dir is not None else None
  if path is None or not os.path.isfile(path):
    where = "no --data_dir was given" if path is None else f"{path} does not exist"
    raise UsageError(f"The fonts data set needs {_FONTS_FILE} but {where}; pass --data_dir=DIR "
                     f"for the directory that holds it (e.g. --data_dir=../shared/data/fonts)")
  a = _read_npz(path, ("arr_0", "arr_1"))
  x, y = _check_split(a["arr_0"], a["arr_1"], 5, _FONTS_HW, f"{path}[arr_0]", f"{path}[arr_1]")
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


def _load_weather(data_dir=None, seed=0, window=None):
  """Seed 003's weekly weather series: windows of weeks labelled with a season (weather.py)."""
  del seed  # split by time, not at random
  from mnist_estimator import weather  # pylint: disable=g-import-not-at-top  # imports this
  return weather.load(data_dir, window)


DATASETS = {
    "mnist": _load_mnist,
    "mnist_sample": _load_mnist_sample,
    "fashion_mnist": _load_fashion_mnist,
    "fonts": _load_fonts,
    "weather": _load_weather,
}
# Data sets of windows over a series, which take --window.
SEQUENCE_DATASETS = ("weather",)


def dataset_names():
  """Returns the names `load` accepts, sorted."""
  return sorted(DATASETS)


def load(name, data_dir=None, seed=0, window=None):
  """Loads a data set by registry name.

  Args:
    name: one of `dataset_names()`.
    data_dir: directory with the data files; None (or "") means the tf.keras cache for
      mnist/fashion_mnist, and is an error for fonts. Ignored by mnist_sample.
    seed: seed of the fonts train/validation split (0 reproduces the book).
    window: weeks per example of a sequence data set (None: its default).

  Returns:
    A `Dataset` with uint8 images [N, H, W, 1] (weather: float32 [N, window, 5, 1]) and int32
    labels.

  Raises:
    UsageError: unknown name, missing, incomplete or corrupt data files, or a window for an
      image data set.
  """
  if name not in DATASETS:
    raise UsageError(f"Unknown dataset {name!r}; use --dataset with one of: "
                     f"{', '.join(dataset_names())}")
  data_dir = os.path.expanduser(data_dir) if data_dir else None
  if name in SEQUENCE_DATASETS:
    return DATASETS[name](data_dir=data_dir, seed=seed, window=window)
  if window is not None:
    raise UsageError(f"--window applies to sequence data sets ({', '.join(SEQUENCE_DATASETS)}), "
                     f"not {name}; drop --window")
  return DATASETS[name](data_dir=data_dir, seed=seed)
