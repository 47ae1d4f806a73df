"""`--dataset=npz:FILE`: your arrays x_train, y_train, x_test, y_test (uint8 or float)."""

import dataclasses
import os
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import decode
from mnist_estimator.data import headers as headers_lib
from mnist_estimator.data import images as images_lib
from mnist_estimator.data import readers
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.data.dataset import DatasetInfo


def _images(x: np.ndarray, where: str) -> np.ndarray:
  """NHW or NHWC uint8 / float images as [N, H, W, C]: uint8 as it is, floats in 0..1."""
  x = np.asarray(x)
  if x.ndim == 3:
    x = x[..., np.newaxis]
  if x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise UsageError(f"{where} has shape {list(x.shape)}; expected images [N, H, W] or "
                     "[N, H, W, 1|3]")
  if x.dtype == np.uint8:
    return x
  if x.dtype.kind in "iu":
    if x.min(initial=0) < 0 or x.max(initial=0) > 255:
      raise UsageError(f"{where} holds integers outside 0..255; save uint8 pixels")
    return x.astype(np.uint8)
  if x.dtype.kind != "f" or not np.all(np.isfinite(x)):
    raise UsageError(f"{where} holds {x.dtype} values that are not finite numbers; save uint8 "
                     "pixels or floats in 0..1")
  if x.min(initial=0) < 0 or x.max(initial=0) > 1:
    raise UsageError(f"{where} holds floats outside 0..1 ({x.min():.3g}..{x.max():.3g}); "
                     "save them scaled to 0..1, or as uint8 0..255")
  return x.astype(np.float32)  # fed as they are; uint8 are scaled to 0..1 by the pipeline


def _refuse(options: images_lib.ImageOptions, path: str) -> None:
  """--test_split and --skip_bad_images do not apply to arrays with their own split."""
  images_lib.refuse_test_split(options, f"npz:{path}", "x_test, y_test")
  if options.stream == "yes":
    raise UsageError(f"--stream=yes reads a folder's files as training goes; npz:{path} is "
                     "one array file, read into memory: drop --stream")
  if options.skip_bad_images:
    raise UsageError(f"--skip_bad_images applies to image files (folder:, tfrecord:); "
                     f"npz:{path} holds pixel arrays: drop --skip_bad_images")


def _reshaped(x: np.ndarray, decoding: decode.Decoding, chunk: int = 1024) -> np.ndarray:
  """The images with decode.py's channel and size steps (as a decoded file gets them)."""
  out = np.empty((len(x), decoding.height, decoding.width, decoding.channels), x.dtype)
  show = images_lib.progress(len(x), verb="resizing")
  for start in range(0, len(x), chunk):
    out[start:start + chunk] = decode.convert(x[start:start + chunk], decoding).numpy()
    show(min(start + chunk, len(x)))
  return out


def _apply(x_train: np.ndarray, x_test: np.ndarray, options: images_lib.ImageOptions,
           where: str) -> Tuple[np.ndarray, np.ndarray, str]:
  """(x_train, x_test, what changed) under --image_size and --channels."""
  h, w, c = x_train.shape[1:]
  decoding = decode.Decoding(*(options.image_size or (h, w)), options.channels or c)
  changed = []
  if (decoding.height, decoding.width) != (h, w):
    changed.append(f"resized from {h}x{w} ({decoding.resize}, antialiased)")
  if decoding.channels != c:
    changed.append("as gray" if decoding.channels == 1 else "as RGB")
  if not changed:
    return x_train, x_test, ""
  headers_lib.check_memory(len(x_train) + len(x_test), decoding, where)
  return (_reshaped(x_train, decoding), _reshaped(x_test, decoding),
          f", {', '.join(changed)}")


def _labels(a: Mapping[str, np.ndarray], path: str,
            counts: Sequence[Tuple[str, int]]) -> List[np.ndarray]:
  """[y_<split>] as int64 for each (split, count) of `counts`, one class id (0 and up) each."""
  labels = []
  for split, count in counts:
    y = np.asarray(a[f"y_{split}"])
    if y.ndim != 1 or len(y) != count or y.dtype.kind not in "iu":
      raise UsageError(f"{path}[y_{split}] must be {count} integer labels, one per image "
                       f"(it is {y.dtype} {list(y.shape)})")
    if y.min(initial=0) < 0:
      raise UsageError(f"{path} holds a negative label; labels are class ids "
                       "0..n_classes-1")
    labels.append(y.astype(np.int64))
  return labels


def load(path: str, seed: int = 0,
         options: Optional[images_lib.ImageOptions] = None) -> Dataset:
  """A Dataset of a keras-style npz of your own; n_classes is the largest label + 1.

  --image_size and --channels resize and convert the arrays with decode.py's ops, as an image
  file's pixels would be; the file's own test split is used as it is.

  Raises:
    UsageError: a missing key, images and labels that do not match, bad labels, an option
      that does not apply (--test_split, --skip_bad_images).
  """
  del seed  # the split is the file's
  options = options or images_lib.ImageOptions()
  path = os.path.abspath(os.path.expanduser(path))
  _refuse(options, path)
  if not os.path.isfile(path):
    raise UsageError(f"--dataset=npz:{path}: no such file; pass an .npz with x_train, "
                     "y_train, x_test, y_test")
  a = readers.read_npz(path, readers.NPZ_KEYS, optional=("x_val", "y_val"))
  n_val = _validation_count(path, a)
  x_train, x_test = _images(a["x_train"], f"{path}[x_train]"), _images(
      a["x_test"], f"{path}[x_test]")
  if n_val:  # x_val goes through every step beside x_test, and is split off at the end
    x_test = np.concatenate([x_test, _images(a["x_val"], f"{path}[x_val]")])
  if x_train.dtype != x_test.dtype:  # one uint8, one float: both as floats in 0..1
    x_train, x_test = (x if x.dtype == np.float32 else x.astype(np.float32) / 255
                       for x in (x_train, x_test))
  if x_train.shape[1:] != x_test.shape[1:]:
    raise UsageError(f"{path}: x_train images are {list(x_train.shape[1:])}, x_test"
                     f"{' or x_val' if n_val else ''} {list(x_test.shape[1:])}; save them "
                     "at one size")
  labels = _labels(a, path, [("train", len(x_train)), ("test", len(x_test) - n_val)]
                   + [("val", n_val)] * bool(n_val))
  labels = [labels[0], np.concatenate(labels[1:])]
  n_classes = int(max(labels[0].max(initial=0), labels[1].max(initial=0))) + 1
  x_train, x_test, changed = _apply(x_train, x_test, options, f"npz:{path}")
  h, w, c = x_train.shape[1:]
  n_test = len(x_test) - n_val
  data = images_lib.make_dataset(
      f"npz:{path}", x_train, labels[0], x_test[:n_test], labels[1][:n_test],
      [str(i) for i in range(n_classes)],
      f"{path} ({len(x_train):,} / {n_test:,} images of {h}x{w}x{c}{changed})")
  if not n_val:
    return data
  return dataclasses.replace(data, x_val=x_test[n_test:],
                             y_val=labels[1][n_test:].astype(np.int32),
                             validation_source=f"{os.path.basename(path)}'s x_val, y_val")


def _validation_count(path: str, a: Mapping[str, np.ndarray]) -> int:
  """The number of x_val images in the arrays `a` (0: none); one of the pair alone is refused."""
  present = [key for key in ("x_val", "y_val") if key in a]
  if len(present) == 1:
    raise UsageError(f"{path} has {present[0]} without its pair; save x_val and y_val "
                     "together, or neither")
  return len(a["x_val"]) if present else 0


NPZ = DatasetInfo("npz", load, takes_path=True, panel=None, usage="npz:FILE",
                  about="your arrays: an .npz with x_train, y_train, x_test, y_test (and "
                  "x_val, y_val)")
