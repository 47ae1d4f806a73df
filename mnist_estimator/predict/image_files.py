"""Reads images for prediction: image files decoded as training decoded, IDX/.npz/.npy arrays."""

import collections
import dataclasses
import gzip
import io
from typing import Callable, List, Optional, Sequence, Tuple, cast
import zipfile
import zlib

import numpy as np
import tensorflow as tf

from mnist_estimator.data import decode as decode_lib
from mnist_estimator.data import readers
from mnist_estimator.common.errors import UsageError

INVERT_CHOICES = ("auto", "yes", "no")
_IDX_MAGICS = (b"\x00\x00\x08\x01", b"\x00\x00\x08\x03")  # unsigned-byte labels, images
# ITU-R BT.601 luma weights; they sum to 1, so a gray RGB image keeps its values.
_GRAY = np.array([[0.299], [0.587], [0.114]], np.float32)
_KINDS = (f"an image ({decode_lib.FORMATS}) or a data file (MNIST IDX, .npz, .npy)")
_CHUNK = 256  # image files decoded in one graph run

ImageShape = Tuple[int, int, int]  # a model's (H, W, C)


def sniff(path: str) -> str:
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


def read_array(path: str, kind: str, keys: Sequence[str]) -> np.ndarray:
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


def _data_images(array: np.ndarray, path: str, image_shape: ImageShape) -> np.ndarray:
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


def background(colors: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  """The background for transparent pixels, per image: black under light ink, else white.

  Args:
    colors: float [n, h, w, c] in 0..1, the colour channels.
    alpha: float [n, h, w, 1], the opacity.

  Returns:
    float [n, 1, 1, 1]: 0.0 where the visible ink is light (a white digit on a
    transparent background is MNIST's white on black), 1.0 where it is dark.
  """
  weight = alpha.sum(axis=(1, 2, 3), keepdims=True)
  ink = (colors.mean(axis=-1, keepdims=True) * alpha).sum(axis=(1, 2, 3), keepdims=True)
  light = ink > 0.5 * np.maximum(weight, 1e-6)
  return np.where(light, 0.0, 1.0).astype(np.float32)


def _channels(images: np.ndarray, channels: int, path: str) -> np.ndarray:
  """Converts a data file's float images [n, h, w, c] to `channels` channels (RGB(A) <-> gray)."""
  have = images.shape[-1]
  if have == channels:
    return images
  if have in (2, 4):
    # Composite over paper: white under dark ink, black under light ink (a white digit).
    alpha = images[..., -1:]
    images = images[..., :-1] * alpha + (1.0 - alpha) * background(images[..., :-1], alpha)
  if images.shape[-1] == 3 and channels == 1:
    return images @ _GRAY
  if images.shape[-1] == 1 and channels == 3:
    return np.repeat(images, 3, axis=-1)
  if images.shape[-1] == channels:
    return images
  raise UsageError(f"{path} has {have} channels but the model takes {channels}; convert it to "
                   f"{'grayscale' if channels == 1 else 'RGB'}")


def _fit_data(images: np.ndarray, path: str, decoding: decode_lib.Decoding,
              resize: bool) -> np.ndarray:
  """A data file's float images [n, h, w, c] with the model's channels and (resize) size."""
  images = _channels(images, decoding.channels, path)
  h, w = images.shape[1:3]
  if (h, w) == (decoding.height, decoding.width):
    return images
  if not resize:
    raise UsageError(f"{path} holds images of {w}x{h} pixels but the model takes "
                     f"{decoding.width}x{decoding.height}; pass --resize to scale them")
  resized = tf.image.resize(images, [decoding.height, decoding.width], method=decoding.resize,
                            antialias=True)
  return np.clip(resized.numpy(), 0.0, 1.0)


@dataclasses.dataclass
class File:
  """One input file as the model gets it.

  Attributes:
    path: the file.
    images: float32 [n, H, W, C] in 0..1.
    is_data: a data file (IDX, .npz, .npy), not an image file.
    encoded: an image file's bytes (data/decode.file_bytes) when `images` are what decoding
      them gives, so the model's image_bytes signature may take them instead; else None.
  """
  path: str
  images: np.ndarray
  is_data: bool
  encoded: Optional[bytes] = None


class Notes:
  """What predict did to the images, counted, said once per run (no silent transformation)."""

  def __init__(self) -> None:
    self.counts: "collections.Counter[str]" = collections.Counter()

  def add(self, what: str, count: int = 1) -> None:
    self.counts[what] += count

  def lines(self) -> List[str]:
    return [f"note: {what.format(n=n, s='' if n == 1 else 's')}"
            for what, n in self.counts.items() if n]


def polarity(border: Optional[float]) -> Optional[str]:
  """"dark" or "light" for a clear border brightness (0..1), else None."""
  if border is None:
    return None
  return "dark" if border < 0.35 else "light" if border > 0.65 else None


def _image_bytes(path: str, decoding: decode_lib.Decoding, resize: bool, notes: Notes) -> bytes:
  """An image file's bytes for decoding (data/decode.py), its size and mode checked, noted."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  data = decode_lib.file_bytes(path)
  width: Optional[int]
  height: Optional[int]
  mode: Optional[str]
  try:
    with Image.open(io.BytesIO(data)) as header:
      width, height, mode = header.size[0], header.size[1], header.mode
  except Exception:  # pylint: disable=broad-except  # refused below, when TF cannot decode it
    width = height = mode = None
  if (height, width) != (decoding.height, decoding.width) and width is not None:
    if not (resize or decoding.resized):
      raise UsageError(f"{path} is {width}x{height} pixels but the model takes "
                       f"{decoding.width}x{decoding.height}; pass --resize to scale it")
    notes.add(f"resized {{n}} image{{s}} to {decoding.height}x{decoding.width} "
              f"({decoding.resize}, antialiased)" + (", as training did" if decoding.resized
                                                     else " (--resize)"))
  gray = mode in ("1", "L", "I", "I;16", "F", "LA")
  if mode is not None and gray != (decoding.channels == 1) and mode != "P":
    target = "gray (BT.601)" if decoding.channels == 1 else "RGB"
    notes.add(f"converted {{n}} image{{s}} to {target}")
  if mode in ("LA", "RGBA", "PA"):
    notes.add("flattened the transparency of {n} image{s}")
  return data


def _decode(pending: Sequence[Tuple[int, str, bytes]],
            decoding: decode_lib.Decoding) -> np.ndarray:
  """uint8 [n, H, W, C] of pending [(index, path, bytes)], decoded in one graph run.

  A run per file cost 2 ms a file, 30 times as much (500 files/s).

  Raises:
    UsageError: a file that does not decode (the first).
  """
  pixels, bad = decode_lib.decode_encoded_keeping([data for _, _, data in pending], decoding)
  if bad:
    raise UsageError(f"{pending[bad[0][0]][1]} is not {_KINDS}; pass one of those")
  return pixels


def load_files(paths: Sequence[str], image_shape: ImageShape, invert: str = "auto",
               resize: bool = False, decoding: Optional[decode_lib.Decoding] = None,
               border_mean: Optional[float] = None, notes: Optional[Notes] = None,
               progress: Optional[Callable[[int], None]] = None) -> List[File]:
  """Reads each file's images as the model takes them; see `load_images`.

  Args:
    paths, image_shape, invert, resize: as for `load_images`.
    decoding: how training decoded its images (data/decode.Decoding); default: the model's
      size, no resizing unless `resize`.
    border_mean: the training images' border brightness: "auto" inverts an image file
      whose border is clearly the other way (unknown: no inversion).
    notes: a Notes that counts what was done to the images.
    progress: called with the number of files read so far, after each (a progress line).

  Returns:
    [File], one per path.
  """
  if invert not in INVERT_CHOICES:
    raise UsageError(f"unknown invert {invert!r}; choose from: {', '.join(INVERT_CHOICES)}")
  decoding = decoding or decode_lib.Decoding(*image_shape)
  notes = notes if notes is not None else Notes()
  trained = polarity(border_mean)
  files: List[Optional[File]] = [None] * len(paths)
  pending: List[Tuple[int, str, bytes]] = []  # image files, decoded a chunk at a time
  for done, path in enumerate(paths, 1):
    kind = sniff(path)
    if kind != "image":
      images = _data_images(read_array(path, kind, ("x_test", "x")), path, image_shape)
      files[done - 1] = File(path, _fit_data(images, path, decoding, resize).astype(
          np.float32), True)
    else:
      pending.append((done - 1, path, _image_bytes(path, decoding, resize, notes)))
    if pending and (len(pending) == _CHUNK or done == len(paths)):
      for (index, name, data), pixels in zip(pending, _decode(pending, decoding)):
        files[index] = _image_file(name, pixels[np.newaxis], data, invert, trained, notes)
      pending = []
    if progress:
      progress(done)
  return cast(List[File], files)  # every path's File, set above


def _image_file(path: str, pixels: np.ndarray, data: bytes, invert: str, trained: Optional[str],
                notes: Notes) -> File:
  """An image file as a File: its decoded pixels [1, H, W, C], inverted if it must be."""
  images = pixels.astype(np.float32) / 255.0
  seen = polarity(decode_lib.border_mean(pixels))
  flip = invert == "yes" or (invert == "auto" and trained and seen and seen != trained)
  if flip:
    images = 1.0 - images
    if invert == "auto":
      notes.add(f"inverted {{n}} image{{s}}: a {seen} background where the training "
                f"images' is {trained} (--invert=no keeps them)")
  return File(path, images, False, None if flip else data)


def load_images(paths: Sequence[str], image_shape: ImageShape, invert: str = "auto",
                resize: bool = False, decoding: Optional[decode_lib.Decoding] = None,
                border_mean: Optional[float] = None) -> np.ndarray:
  """Reads image files (PNG, JPEG, BMP, GIF, WebP, TIFF, PPM) and data files (MNIST IDX (.gz),
  .npz, .npy) as the model takes them.

  Image files are decoded by data/decode.py, as training decoded its own: the same pixels
  the SavedModel's image_bytes signature makes of them.

  Args:
    paths: the files; a data file holds many images (.npz: x_test, else x, else its only array).
    image_shape: the model's (H, W, C).
    invert: "auto" inverts an image file whose border is clearly the other polarity than the
      training images' (border_mean); never a data file. "yes"/"no" invert all/none.
    resize: scale images of another size to H x W instead of refusing them (a model trained
      with --image_size resizes without it).
    decoding, border_mean: as for `load_files`.

  Returns:
    float32 [N, H, W, C] in 0..1, the files' images in order.

  Raises:
    UsageError: a file is missing, not an image or data file, or of another size or channels.
  """
  files = load_files(paths, image_shape, invert, resize, decoding, border_mean)
  if not files:
    return np.zeros([0, *image_shape], np.float32)
  return np.concatenate([f.images for f in files])


def load_labels(path: str) -> np.ndarray:
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
