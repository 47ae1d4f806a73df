"""Readers of the MNIST formats (IDX, gzip or raw; keras-style npz) with every check."""

import glob
import gzip
import math
import os
import zipfile
import zlib
from typing import Dict, List, Mapping, Sequence, Tuple

from absl import logging
import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import checksums
from mnist_estimator.data.dataset import Dataset

IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1-D
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3-D
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
NPZ_NAMES = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist.npz"}
MNIST_HW = (28, 28)


def read_bytes(path: str) -> bytes:
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


def read_idx(path: str) -> np.ndarray:
  """Reads one IDX file of unsigned bytes (labels or images), gzipped or raw.

  Args:
    path: the file; gzip is detected by a .gz suffix or the gzip magic bytes 1f 8b.

  Returns:
    A uint8 array: [N] for a label file (magic 0x801), [N, H, W] for an image file (0x803).

  Raises:
    UsageError: the file is missing, unreadable, corrupt gzip, not IDX, truncated, or too long.
  """
  data = read_bytes(path)
  magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
  if magic not in (IDX_LABELS_MAGIC, IDX_IMAGES_MAGIC):
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


def check_split(x: np.ndarray, y: np.ndarray, n_classes: int, hw: Tuple[int, int], x_src: str,
                y_src: str) -> Tuple[np.ndarray, np.ndarray]:
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


def read_npz(path: str, keys: Sequence[str],
             optional: Sequence[str] = ()) -> Dict[str, np.ndarray]:
  """Returns {key: array} for `keys` (and those of `optional` it has) from an .npz file.

  Raises:
    UsageError: a key missing, or a file that is not an npz.
  """
  try:
    with np.load(path, allow_pickle=False) as npz:
      missing = [k for k in keys if k not in npz.files]
      if missing:
        raise UsageError(f"{path} lacks the key(s) {', '.join(missing)} (it has: "
                         f"{', '.join(npz.files) or 'none'}); save it with {', '.join(keys)}")
      return {k: npz[k] for k in (*keys, *optional) if k in npz.files}
  except UsageError:
    raise
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, AttributeError,
          TypeError) as e:
    # AttributeError/TypeError: a lone .npy loads as an ndarray (no .files, no `with`).
    raise UsageError(f"{path} is not a readable .npz file ({type(e).__name__}: {e}); "
                     "re-create it with numpy.savez") from None


def from_npz(name: str, path: str, source: str, n_classes: int = 10,
             hw: Tuple[int, int] = MNIST_HW) -> Dataset:
  """Builds a Dataset from a keras-style npz with x_train, y_train, x_test, y_test."""
  a = read_npz(path, NPZ_KEYS)
  x_train, y_train = check_split(a["x_train"], a["y_train"], n_classes, hw,
                                  f"{path}[x_train]", f"{path}[y_train]")
  x_test, y_test = check_split(a["x_test"], a["y_test"], n_classes, hw,
                                f"{path}[x_test]", f"{path}[y_test]")
  return Dataset(name, hw + (1,), n_classes, x_train, y_train, x_test, y_test, source)


def from_idx(name: str, paths: Mapping[str, str], data_dir: str, strict: bool = False) -> Dataset:
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
  splits: List[np.ndarray] = []  # x_train, y_train, x_test, y_test
  for prefix in ("train", "t10k"):
    x_src, y_src = paths[f"{prefix}-images-idx3-ubyte"], paths[f"{prefix}-labels-idx1-ubyte"]
    splits += check_split(arrays[f"{prefix}-images-idx3-ubyte"],
                           arrays[f"{prefix}-labels-idx1-ubyte"], 10, MNIST_HW, x_src, y_src)
  x_train, y_train, x_test, y_test = splits
  return Dataset(name, MNIST_HW + (1,), 10, x_train, y_train, x_test, y_test,
                 source=f"IDX files in {data_dir}")


def from_dir(name: str, data_dir: str, strict: bool = False) -> Dataset:
  """Loads mnist or fashion_mnist from the IDX files or a keras-style npz in data_dir."""
  wanted = (f"the four IDX files {', '.join(f + '[.gz]' for f in IDX_FILES)} or "
            f"{NPZ_NAMES[name]} with keys {', '.join(NPZ_KEYS)}")
  if not os.path.isdir(data_dir):
    raise UsageError(f"--data_dir {data_dir} does not exist or is not a directory; "
                     f"point it at a directory holding {wanted}")
  paths: Dict[str, str] = {}
  for base in IDX_FILES:
    # Raw first: if both exist the raw file is the already-unpacked copy and reads faster.
    for candidate in (base, base + ".gz"):
      if os.path.isfile(os.path.join(data_dir, candidate)):
        paths[base] = os.path.join(data_dir, candidate)
        break
  if len(paths) == len(IDX_FILES):
    return from_idx(name, paths, data_dir, strict)
  if paths:
    missing = [f + "[.gz]" for f in IDX_FILES if f not in paths]
    raise UsageError(f"--data_dir {data_dir} holds only some of the four IDX files: missing "
                     f"{', '.join(missing)}; copy the missing file(s) into it")
  named = os.path.join(data_dir, NPZ_NAMES[name])
  npzs = [named] if os.path.isfile(named) else sorted(glob.glob(os.path.join(data_dir, "*.npz")))
  if len(npzs) > 1:
    raise UsageError(f"--data_dir {data_dir} holds several .npz files ({', '.join(npzs)}) and no "
                     f"{NPZ_NAMES[name]}; rename the right one to {NPZ_NAMES[name]}")
  if not npzs:
    raise UsageError(f"--data_dir {data_dir} holds no {name} data; put {wanted} there")
  return from_npz(name, npzs[0], f"npz file {npzs[0]}")
