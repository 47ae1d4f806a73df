"""Images streamed from their files: a lazy array of paths, read as batches of records."""

import hashlib
import os
from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from mnist_estimator.common import causes
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import decode
from mnist_estimator.data import headers as headers_lib
from mnist_estimator.data import images as images_lib

if TYPE_CHECKING:  # imported where used: this module loads without TensorFlow
  import tensorflow as tf

# Decoded bytes above which a set streams (or a quarter of free memory): the in-memory
# route's peak is ~2.7 times them (arrays, splits, the npz and record caches written), so
# 512 MiB decoded already costs ~1.4 GB; 6,000 photos at 224x224 (903 MB) stream.
STREAM_LIMIT = 2**29
PARALLEL = os.cpu_count() or 2  # fixed, as autotune is off (see data_options)
LABEL_BYTES = 4  # bytes of a record's label (int32, little-endian) before its path or pixels


class FileImages:
  """uint8 images [N, H, W, C] held as file paths, decoded only when asked (numpy-like).

  `x[i]` decodes one image; `x[a:b]`, `x[indices]` and `x[mask]` are FileImages over those
  files (nothing decoded); `np.asarray(x)` decodes all of them, for small selections only.
  """

  def __init__(self, paths: Sequence[str], decoding: decode.Decoding) -> None:
    self._paths = tuple(os.fspath(p) for p in paths)
    self._decoding = decoding

  @property
  def paths(self) -> Tuple[str, ...]:
    return self._paths

  @property
  def decoding(self) -> decode.Decoding:
    return self._decoding

  @property
  def dtype(self) -> np.dtype:
    return np.dtype(np.uint8)

  @property
  def ndim(self) -> int:
    return 4

  @property
  def shape(self) -> Tuple[int, int, int, int]:
    return (len(self), self._decoding.height, self._decoding.width, self._decoding.channels)

  def __len__(self) -> int:
    return len(self._paths)

  def __repr__(self) -> str:
    return f"FileImages({len(self):,} files, shape={self.shape})"

  @overload
  def __getitem__(self, index: Union[int, np.integer]) -> np.ndarray:
    ...

  @overload
  def __getitem__(self, index: Union[slice, Sequence[int], np.ndarray]) -> "FileImages":
    ...

  def __getitem__(self, index: Any) -> Union[np.ndarray, "FileImages"]:
    if isinstance(index, (int, np.integer)):
      if not -len(self) <= index < len(self):
        raise IndexError(f"index {index} is out of range for {len(self)} images")
      return self.decode([int(index)])[0]
    if isinstance(index, slice):
      return FileImages(self._paths[index], self._decoding)
    return self.take(index)

  def take(self, indices: npt.ArrayLike) -> "FileImages":
    """The images at `indices` (ints, or a boolean mask of len(self)), not decoded."""
    indices = np.asarray(indices)
    if indices.dtype == bool:
      if indices.shape != (len(self),):
        raise IndexError(f"a mask of {indices.shape} for {len(self)} images")
      indices = np.flatnonzero(indices)
    if indices.size and indices.dtype.kind not in "iu":
      raise IndexError(f"images are indexed by ints or a mask, not {indices.dtype}")
    return FileImages([self._paths[i] for i in indices.reshape(-1).tolist()], self._decoding)

  def decode(self, indices: Optional[npt.ArrayLike] = None) -> np.ndarray:
    """uint8 [n, H, W, C] of all the images, or of `indices` (as decode.decode_files).

    Raises:
      UsageError: a file that cannot be read or decoded, naming it.
    """
    paths = self._paths if indices is None else self.take(indices).paths
    return decode.decode_files(list(paths), self._decoding)

  def __array__(self, dtype: Optional[npt.DTypeLike] = None,
                copy: Optional[bool] = None) -> np.ndarray:
    del copy  # numpy 2's argument: the decoded array is always new
    images = self.decode()
    return images if dtype is None else images.astype(dtype)


def memory_bytes(count: int, decoding: decode.Decoding) -> int:
  """Bytes of `count` images decoded as `decoding` says (uint8 [count, H, W, C])."""
  return int(count) * decoding.height * decoding.width * decoding.channels


def should_stream(count: int, decoding: decode.Decoding, limit: Optional[int] = None) -> bool:
  """True if `count` images decoded as `decoding` says should stream rather than sit in RAM.

  Args:
    count: the images.
    decoding: how they are decoded.
    limit: decoded bytes kept in memory at most; None: STREAM_LIMIT or a quarter of
      MemAvailable, whichever is smaller (the in-memory route's peak grew by 2.7 times the
      decoded bytes: the arrays, their splits, the npz and record caches written).

  Returns:
    Whether memory_bytes(count, decoding) exceeds the limit.
  """
  if limit is None:
    free = headers_lib.memory_available()
    limit = min(STREAM_LIMIT, free // 4) if free else STREAM_LIMIT
  return memory_bytes(count, decoding) > limit


def explain(images: FileImages, error: BaseException) -> UsageError:
  """The UsageError for a tf.errors.OpError raised while streaming `images`: the file named.

  A file gone since the folder was listed: NotFoundError, which names it. A WebP/TIFF/PPM file
  PIL cannot read: UnknownError carrying decode.file_bytes' UsageError. Damaged data:
  InvalidArgumentError ("jpeg::Uncompress failed...") naming no file, so the files are
  decoded again, a chunk at a time, until one fails (find_bad).

  Args:
    images: the FileImages of the input_fn that failed.
    error: the tf.errors.OpError that Estimator.train, evaluate or predict raised.

  Returns:
    The UsageError to raise.
  """
  text = str(getattr(error, "message", error))
  for line in text.splitlines():
    if line.startswith("UsageError: "):
      return UsageError(line[len("UsageError: "):])
  why = causes.tf_error_line(text)
  if "ReadFile" in text:
    return UsageError(f"an image file cannot be read any more ({why}); restore it, or run "
                      "again so the folder is listed anew")
  bad = find_bad(images) if "DecodeImage" in text else None
  if bad:
    return UsageError(f"{bad[0]} does not decode as an image ({bad[1]}); remove or replace "
                      "it, then run again")
  return UsageError(f"reading {len(images):,} images failed ({why}); if it names a cache "
                    "file, delete that folder; run again")


def find_bad(images: FileImages) -> Optional[Tuple[str, str]]:
  """(path, reason) of the first file that does not read or decode, or None (all do)."""
  step = images_lib.chunk_size(images.decoding)
  show = images_lib.progress(len(images), verb="checking")
  for start in range(0, len(images), step):
    part = images.paths[start:start + step]
    _, bad = decode.decode_files_keeping(part, images.decoding, step)
    if bad:
      return bad[0]
    show(start + len(part))
  return None


def label_ids(images: FileImages, labels: Optional[npt.ArrayLike]) -> np.ndarray:
  """int32 [N] of the labels (zeros for None): a record's label field is always there."""
  if not isinstance(images, FileImages):
    raise TypeError(f"stream.input_fn takes FileImages, not {type(images).__name__}")
  ids = np.zeros(len(images), np.int32) if labels is None else np.asarray(labels, np.int32)
  if ids.shape != (len(images),):
    raise ValueError(f"{len(images)} images but labels of shape {ids.shape}")
  return ids


def data_options() -> "tf.data.Options":
  """Autotune off, as inputs/input_fns.py: it made closing a session wait idle for 2-17 s."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  options = tf.data.Options()
  options.autotune.enabled = False
  return options


def split_records(records: "tf.Tensor", batched: bool) -> Tuple["tf.Tensor", "tf.Tensor"]:
  """(int32 labels, payloads) of records of a little-endian int32 label then bytes."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  label = tf.io.decode_raw(tf.strings.substr(records, 0, LABEL_BYTES), tf.int32,
                           little_endian=True)
  rest = tf.strings.substr(records, LABEL_BYTES, -1)  # -1: to the end
  return (label[:, 0] if batched else label[0]), rest


def from_files(listing: str, images: FileImages, batch_size: int, train: bool,
               seed: Optional[int]) -> "tf.data.Dataset":
  """Batches (uint8 [B, H, W, C], int32 [B]) decoded from the files the listing names."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # Paths from a file, not a constant: the graph (TensorBoard's, each checkpoint's .meta)
  # stays small however many files there are.
  ds = tf.data.TFRecordDataset(listing)
  if train:  # a list of names is small: shuffled whole, each pass reads every file once
    ds = ds.shuffle(max(len(images), 1), seed=seed, reshuffle_each_iteration=True).repeat()
  pil = "|".join(e.lstrip(".") for e in decode.CONVERTED_EXTENSIONS)
  # Only if there are WebP, TIFF or PPM files: PIL converts them (decode.file_bytes) under
  # the GIL, in a Python op; TF reads the rest. As fast as TF alone for JPEGs (measured).
  some_pil = any(p.lower().endswith(decode.CONVERTED_EXTENSIONS) for p in images.paths)

  def load(record: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    label, path = split_records(record, batched=False)
    by_pil = lambda: tf.reshape(tf.numpy_function(
        lambda p: np.array(decode.file_bytes(os.fsdecode(p)), object), [path], tf.string,
        stateful=False), [])
    by_tf = lambda: tf.io.read_file(path)
    converted = tf.strings.regex_full_match(tf.strings.lower(path), rf".*\.({pil})")
    data = tf.cond(converted, by_pil, by_tf) if some_pil else by_tf()
    return decode.decode(data, images.decoding), label
  # No Python control flow on tensors (tf.cond is explicit): autograph would only cost time.
  return ds.map(tf.autograph.experimental.do_not_convert(load),
                num_parallel_calls=PARALLEL).batch(batch_size)


def write_listing(paths: Sequence[str], labels: np.ndarray, folder: str) -> str:
  """The path of a TFRecord file of (label, path) records, written once per content."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha1(labels.tobytes())
  for name in paths:  # one name at a time: no copy of the whole list as one string
    digest.update(os.fsencode(name) + b"\0")
  path = os.path.join(folder, f"listing-{digest.hexdigest()[:16]}.tfrecord")
  if not os.path.isfile(path):
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with tf.io.TFRecordWriter(tmp) as writer:
      for name, label in zip(paths, labels.tolist()):
        writer.write(encode_record(label, os.fsencode(name)))
    os.replace(tmp, path)  # atomic: a concurrent run never reads half a listing
  return path


def encode_record(label: int, payload: bytes) -> bytes:
  """A record: the label (int32, little-endian), then the payload (a path or pixels)."""
  return int(label).to_bytes(LABEL_BYTES, "little", signed=True) + payload
