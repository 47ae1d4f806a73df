"""Reads images for prediction: PNG/JPEG/BMP/GIF files, MNIST IDX, .npz and .npy arrays."""

import gzip
import zipfile
import zlib

import numpy as np
import tensorflow as tf

from mnist_estimator.data import readers
from mnist_estimator.predict import checks as predict_checks
from mnist_estimator.common.errors import UsageError

INVERT_CHOICES = ("auto", "yes", "no")
_IDX_MAGICS = (b"\x00\x00\x08\x01", b"\x00\x00\x08\x03")  # unsigned-byte labels, images
# ITU-R BT.601 luma weights; they sum to 1, so a gray RGB image keeps its values.
_GRAY = np.array([[0.299], [0.587], [0.114]], np.float32)
_KINDS = "an image (PNG, JPEG, BMP, GIF) or a data file (MNIST IDX, .npz, .npy)"


def sniff(path):
  """The file's kind from its first bytes: "idx" (maybe gzipped), "npy", "npz" or "image"."""
  try:
    with open(path, "rb") as f:
      head = f.read(4)
    if head[:2] == b"\x1f\x8b":
      with gzip.open(path, "rb") as f:
        head = f.read(4)
      if head not in _IDX_MAGICS:
        raise UsageError(f"{path} is gzip-compressed but not an MNIST IDX file; pass {_KINDS}")
  except (OSError, EOFError, zlib.error) as e:
    raise UsageError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}; "
                     "check the path") from None
  if head in _IDX_MAGICS:
    return "idx"
  return {b"\x93NUM": "npy", b"PK\x03\x04": "npz"}.get(head, "image")


def read_array(path, kind, keys):
  """The array of an IDX, .npy or .npz file (for .npz: the first of `keys`, else the only one)."""
  if kind == "idx":
    return readers.read_idx(path)
  try:
    if kind == "npy":
      return np.load(path, allow_pickle=False)
    with np.load(path, allow_pickle=False) as data:
      names = [k for k in keys if k in data.files] or (data.files if len(data.files) == 1 else [])
      if not names:
        raise UsageError(f"{path} holds the arrays {', '.join(data.files) or 'none'}; save the "
                         f"one to use as {keys[0]} (or as its only array)")
      return data[names[0]]
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise UsageError(f"{path} is not a readable {kind} file ({type(e).__name__}: {e}); "
                     "re-create it with numpy.save or numpy.savez") from None


def _data_images(array, path, image_shape):
  """A data file's array as float32 [N, h, w, c] in 0..1 (integers are scaled from 0..255)."""
  a = np.asarray(array)
  if a.ndim == 2 and a.shape[1] == np.prod(image_shape):  # flat rows, as some MNIST copies are
    a = a.reshape(-1, *image_shape)
  elif a.ndim in (2, 3):  # one [H, W] image, or [N, H, W]
    a = a.reshape((-1,) * (a.ndim == 2) + a.shape + (1,))
  elif a.ndim != 4:
    raise UsageError(f"{path} holds an array of shape {list(a.shape)}, not images [N, H, W(, C)];"
                     " a labels file goes to --labels")
  low, high = (a.min(), a.max()) if a.size else (0, 0)
  if a.dtype.kind in "iub" and 0 <= low and high <= 255:
    return a.astype(np.float32) / 255.0
  if a.dtype.kind == "f" and 0 <= low and high <= 1:
    return a.astype(np.float32)
  raise UsageError(f"{path} holds {a.dtype} pixels from {low} to {high}; save uint8 0..255 or "
                   "floats 0..1")


def _decode_image(path):
  """An image file as float32 [1, h, w, c] in 0..1 (the first frame of an animated GIF)."""
  with open(path, "rb") as f:  # sniff has already opened it, so errors here are unlikely
    data = f.read()
  try:
    image = tf.io.decode_image(data, expand_animations=False).numpy()  # 16-bit PNG -> uint8
  except tf.errors.OpError:
    raise UsageError(f"{path} is not {_KINDS}; pass one of those") from None
  return image[np.newaxis].astype(np.float32) / 255.0


def _channels(images, channels, path):
  """Converts float images [n, h, w, c] to `channels` channels (RGB(A) <-> gray)."""
  have = images.shape[-1]
  if have == channels:
    return images
  if have in (2, 4):
    # Composite over paper: white under dark ink, black under light ink (a white digit).
    alpha = images[..., -1:]
    images = images[..., :-1] * alpha + (1.0 - alpha) * predict_checks.background(images[..., :-1],
                                                                            alpha)
  if images.shape[-1] == 3 and channels == 1:
    return images @ _GRAY
  if images.shape[-1] == 1 and channels == 3:
    return np.repeat(images, 3, axis=-1)
  if images.shape[-1] == channels:
    return images
  raise UsageError(f"{path} has {have} channels but the model takes {channels}; convert it to "
                   f"{'grayscale' if channels == 1 else 'RGB'}")


def _fit(images, path, is_image, image_shape, resize):
  """Gives float images [n, h, w, c] the model's channels and (with resize) its size."""
  height, width, channels = image_shape
  images = _channels(images, channels, path)
  h, w = images.shape[1:3]
  if (h, w) == (height, width):
    return images
  if not resize:
    what = f"{path} is" if is_image else f"{path} holds images of"
    raise UsageError(f"{what} {w}x{h} pixels but the model takes {width}x{height}; pass "
                     "--resize to scale it")
  # Area averages whole pixels when shrinking; bilinear interpolates when enlarging.
  method = "area" if h >= height and w >= width else "bilinear"
  resized = tf.image.resize(images, [height, width], method=method, antialias=True)
  return np.clip(resized.numpy(), 0.0, 1.0)


def load_files(paths, image_shape, invert="auto", resize=False):
  """Reads each file's images; see `load_images`.

  Returns:
    [(path, float32 [n, H, W, C] in 0..1, is_data_file)], one entry per path.
  """
  if invert not in INVERT_CHOICES:
    raise UsageError(f"unknown invert {invert!r}; choose from: {', '.join(INVERT_CHOICES)}")
  files = []
  for path in paths:
    kind = sniff(path)
    if kind == "image":
      images = _decode_image(path)
    else:
      images = _data_images(read_array(path, kind, ("x_test", "x")), path, image_shape)
    images = _fit(images, path, kind == "image", tuple(image_shape), resize)
    # MNIST is a white digit on black; a scan or a drawing is dark ink on light paper. A
    # colour model's photos are taken as they are.
    gray = image_shape[2] == 1
    if invert == "yes" or (invert == "auto" and gray and kind == "image" and images.mean() > 0.5):
      images = 1.0 - images
    files.append((path, images.astype(np.float32, copy=False), kind != "image"))
  return files


def load_images(paths, image_shape, invert="auto", resize=False):
  """Reads image files (PNG, JPEG, BMP, GIF) and data files (MNIST IDX (.gz), .npz, .npy).

  Args:
    paths: the files; a data file holds many images (.npz: x_test, else x, else its only array).
    image_shape: the model's (H, W, C); RGB(A) becomes gray for C=1, over a white background.
    invert: "auto" inverts an image file whose mean brightness is above 0.5 (dark on light)
      into MNIST's white on black, never a data file; "yes"/"no" invert all/none.
    resize: scale images of another size to H x W instead of refusing them.

  Returns:
    float32 [N, H, W, C] in 0..1, the files' images in order.

  Raises:
    UsageError: a file is missing, not an image or data file, or of another size or channels.
  """
  files = load_files(paths, image_shape, invert, resize)
  if not files:
    return np.zeros([0, *image_shape], np.float32)
  return np.concatenate([images for _, images, _ in files])


def load_labels(path):
  """Reads int labels [N] from an MNIST IDX labels file, an .npy, or an .npz (y_test, else y).

  Raises:
    UsageError: the file is missing or holds no 1-D integer array.
  """
  kind = sniff(path)
  labels = read_array(path, kind, ("y_test", "y")) if kind in ("idx", "npy", "npz") else None
  if labels is None or labels.ndim != 1 or labels.dtype.kind not in "iu":
    got = "no array" if labels is None else f"{labels.dtype} {list(labels.shape)}"
    raise UsageError(f"{path} holds {got}, not integer labels [N]; pass an IDX labels file, "
                     "an .npy, or an .npz with y_test")
  return labels.astype(np.int64)
