"""`--dataset=tfrecord:TRAIN_GLOB[,TEST_GLOB[,VAL_GLOB]]`: tf.Examples of encoded images, labels."""

import dataclasses
import glob
import os
from typing import (IO, Any, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple, cast)

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import decode
from mnist_estimator.data import headers as headers_lib
from mnist_estimator.data import images as images_lib
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.data.dataset import DatasetInfo

IMAGE_KEY = "image/encoded"       # PNG or JPEG bytes (tensorflow/models' image data sets)
LABEL_KEY = "image/class/label"   # int64
TEXT_KEY = "image/class/text"     # the class's name (optional)
_FIX = f"write tf.Examples with {IMAGE_KEY} (image bytes) and {LABEL_KEY} (one int64)"


def _files(pattern: str) -> List[str]:
  found = sorted(glob.glob(os.path.expanduser(pattern)))
  if not found:
    raise UsageError(f"--dataset=tfrecord:{pattern}: no file matches {pattern}; pass a glob "
                     "of TFRecord files (train-*.tfrecord)")
  return found


def _check_complete(f: IO[bytes], path: str) -> None:
  """Refuses a file that ends inside a record: TF's reader takes that as the end, silently.

  A record is its length (8 bytes), their CRC (4), the data and its CRC (4).
  """
  size, position, count = os.fstat(f.fileno()).st_size, 0, 0
  while position + 12 <= size:
    f.seek(position)
    position += 12 + int.from_bytes(f.read(8), "little") + 4
    count += position <= size
  if position != size:
    raise UsageError(f"{path} ends inside record {count:,} (truncated, or not a TFRecord "
                     "file); write it again, or leave it out of the glob")


def _records(path: str) -> Iterator[bytes]:
  """The serialized records of a TFRecord file (GZIP-compressed too); damage is one line."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    with open(path, "rb") as f:
      compression = "GZIP" if f.read(2) == b"\x1f\x8b" else ""
      if not compression:
        _check_complete(f, path)
  except OSError as e:
    raise UsageError(f"cannot read {path} ({e.strerror}); check the path") from None
  count = 0
  try:
    dataset = tf.data.TFRecordDataset([path], compression_type=compression).batch(256)
    for batch in dataset.as_numpy_iterator():
      for record in batch:
        yield record
        count += 1
  except tf.errors.OpError:
    raise UsageError(f"{path} cannot be read after record {count:,} (not a TFRecord file, or "
                     "truncated or damaged); write it again, or leave it out of the glob") from None


def _bytes_value(feature: Any, key: str) -> Optional[bytes]:
  """`feature`: a tf.train.Features' feature map."""
  """The one bytes value of feature[key], or None."""
  if key not in feature or feature[key].WhichOneof("kind") != "bytes_list":
    return None
  values = feature[key].bytes_list.value
  return values[0] if len(values) == 1 else None


def _example(record: bytes, name: str) -> Tuple[Optional[bytes], int, Optional[str]]:
  """(encoded bytes or None, label, class text or None) of one serialized tf.Example.

  Raises:
    UsageError: not a tf.Example, or no single non-negative int64 label.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from google.protobuf import message  # pylint: disable=g-import-not-at-top
  try:
    feature = tf.train.Example.FromString(record).features.feature
  except message.DecodeError:
    raise UsageError(f"{name} is not a tf.Example; {_FIX}") from None
  labels = (feature[LABEL_KEY].int64_list.value if LABEL_KEY in feature
            and feature[LABEL_KEY].WhichOneof("kind") == "int64_list" else [])
  if len(labels) != 1 or labels[0] < 0:
    found = f"label {labels[0]}" if len(labels) == 1 else f"{len(labels)} int64 labels"
    raise UsageError(f"{name} has {found} in {LABEL_KEY}; {_FIX}, a class id 0 and up")
  text = _bytes_value(feature, TEXT_KEY)
  return (_bytes_value(feature, IMAGE_KEY), int(labels[0]),
          None if text is None else text.decode("utf-8", "replace"))


class _Scan:
  """What the first pass over the records finds: labels, class texts, headers, bad images."""

  def __init__(self) -> None:
    self.names: List[str] = []
    self.labels: List[int] = []
    self.texts: List[Optional[str]] = []
    self.sizes: List[Tuple[int, int]] = []
    self.colour: List[bool] = []
    self.formats: List[Optional[str]] = []
    self.bad: List[Tuple[int, str]] = []

  def add(self, name: str, record: bytes) -> None:
    encoded, label, text = _example(record, name)
    found = (headers_lib.read_header(encoded) if encoded is not None
             else f"no {IMAGE_KEY} bytes")
    if isinstance(found, str):
      self.bad.append((len(self.names), found))
      found = (0, 0, False, None)
    self.names.append(name)
    self.labels.append(label)
    self.texts.append(text)
    self.sizes.append(found[:2])
    self.colour.append(found[2])
    self.formats.append(found[3])

  def headers(self) -> headers_lib.Headers:
    return headers_lib.Headers(np.array(self.sizes, np.int64).reshape(-1, 2),
                               np.array(self.colour, bool), self.formats, self.bad)


def _scan(files: Iterable[str], scan: _Scan) -> _Scan:
  """Adds the files' examples to the _Scan (no pixel decoded); returns it."""
  for path in files:
    for index, record in enumerate(_records(path)):
      scan.add(f"{path} example {index:,}", record)
  return scan


def class_names(labels: Sequence[int], texts: Sequence[Optional[str]],
                names: Sequence[str]) -> List[str]:
  """The class names: image/class/text where the examples give it, else the label numbers.

  Raises:
    UsageError: a label with two texts, a text with two labels, or texts on some only.
  """
  by_label: Dict[int, Tuple[str, int]] = {}  # label: (its text, the first example with it)
  by_text: Dict[str, Tuple[int, int]] = {}  # text: (its label, the first example with it)
  for i, (label, text) in enumerate(zip(labels, texts)):
    if text is None:
      continue
    first = by_label.setdefault(label, (text, i))
    other = by_text.setdefault(text, (label, i))
    if first[0] != text or other[0] != label:
      j = first[1] if first[0] != text else other[1]
      raise UsageError(f"{names[i]} has label {label} named {text!r} but {names[j]} has label "
                       f"{labels[j]} named {texts[j]!r}; give each label one {TEXT_KEY}")
  if by_label:
    missing = next((i for i, t in enumerate(texts) if t is None), None)
    if missing is not None:
      raise UsageError(f"{names[missing]} has no {TEXT_KEY} but others have; give every "
                       "example its class text, or none")
  count = max(labels, default=0) + 1
  return [by_label.get(k, (str(k),))[0] for k in range(count)]


def _decode(files: Iterable[str], keep: np.ndarray, scan: _Scan, decoding: decode.Decoding,
            skip_bad: bool) -> Tuple[np.ndarray, np.ndarray, List[Tuple[str, str]]]:
  """(uint8 [n, H, W, C], kept indices, bad) of the examples in `keep`, decoded by decode.py.

  The output is allocated once at its final size and filled a chunk at a time, so memory
  follows the decoded (resized) images, not the encoded ones.
  """
  out = np.empty((len(keep), decoding.height, decoding.width, decoding.channels), np.uint8)
  wanted = set(keep.tolist())
  kept: List[int] = []
  bad: List[Tuple[str, str]] = []
  chunk: List[Tuple[int, bytes]] = []  # (index, its encoded image)
  show, index, names, formats = images_lib.progress(len(keep)), 0, scan.names, scan.formats
  step = images_lib.chunk_size(decoding)

  def flush() -> None:
    images, failures = decode.decode_encoded_keeping([e for _, e in chunk], decoding)
    failed = {j for j, _ in failures}
    bad.extend((names[i], f"its {formats[i]} data is damaged, truncated or of a kind "
                          "tf.io.decode_image does not read")
               for j, (i, _) in enumerate(chunk) if j in failed)
    images_lib.check_bad(bad[:1], skip_bad)
    out[len(kept):len(kept) + len(images)] = images
    kept.extend(i for j, (i, _) in enumerate(chunk) if j not in failed)
    show(len(kept) + len(bad))
    chunk.clear()

  for path in files:
    for record in _records(path):
      if index in wanted:
        # A wanted example has its bytes: its header was read from them.
        chunk.append((index, cast(bytes, _example(record, names[index])[0])))
        if len(chunk) == step:
          flush()
      index += 1
  if chunk:
    flush()
  return out[:len(kept)], np.array(kept, np.int64), bad


def _build(train_files: List[str], test_files: List[str], options: images_lib.ImageOptions,
           where: str, val_files: Sequence[str] = ()) -> Dict[str, np.ndarray]:
  """The decoded arrays of the examples (what the cache keeps); two passes over the files.

  The first reads labels, class texts and the images' headers, so sizes, the memory check
  and class names are settled before any pixel is decoded; the second decodes.
  """
  files = train_files + test_files + list(val_files)
  scan = _scan(train_files, _Scan())
  n_train = len(scan.names)
  _scan(test_files, scan)
  n_test = len(scan.names) - n_train
  _scan(val_files, scan)
  if not scan.names:
    raise UsageError(f"{where} holds no examples; {_FIX}")
  headers = scan.headers()
  images_lib.check_bad([(scan.names[i], why) for i, why in headers.bad],
                       options.skip_bad_images)
  names = class_names(scan.labels, scan.texts, scan.names)
  decoding = headers_lib.choose(headers, options, where)
  good = headers.good()
  headers_lib.check_memory(len(good), decoding, where)
  x, kept, bad = _decode(files, good, scan, decoding, options.skip_bad_images)
  converted = headers.converted(good, options.channels)
  split = (kept >= n_train).astype(np.int8) + 2 * (kept >= n_train + n_test)  # 0, 1 test, 3 val
  return {"x": x, "y": np.array(scan.labels, np.int64)[kept], "split": split,
          "class_names": np.array(names), "texts": np.array(any(t is not None for t in scan.texts)),
          "bad": np.array(len(headers.bad) + len(bad)), "resized": np.array(decoding.resized),
          "converted": np.array(converted)}


def _source(train_glob: str, test_glob: str, count: int, options: images_lib.ImageOptions,
            a: Mapping[str, np.ndarray], val_glob: str = "") -> str:
  """The source line: the files, which became which split, what was changed."""
  split = (f"train: {train_glob}, test: {test_glob}" if test_glob else
           f"train: {train_glob}, test: {images_lib.held_out(options):.0%} of each class "
           "held out") + (f", validation: {val_glob}" if val_glob else "")
  parts = [f"{count} TFRecord file{'s' if count > 1 else ''}", split]
  parts += [f"class names from {TEXT_KEY}"] if bool(a["texts"]) else []
  parts += [f"{int(a['bad']):,} bad examples skipped"] if int(a["bad"]) else []
  parts += [f"resized to {a['x'].shape[1]}x{a['x'].shape[2]}"] if bool(a["resized"]) else []
  parts += [("as gray" if a["x"].shape[3] == 1 else "as RGB")] if bool(a["converted"]) else []
  return "; ".join(parts)


def load(patterns: str, seed: int = 0,
         options: Optional[images_lib.ImageOptions] = None) -> Dataset:
  """A Dataset of TFRecord tf.Examples: TRAIN_GLOB[,TEST_GLOB[,VAL_GLOB]].

  Without a TEST_GLOB, --test_split of each class of train is held out as the test set; a
  VAL_GLOB is the validation set (else data/validation.py carves one).

  Raises:
    UsageError: no file, a damaged file or example, contradicting class texts, mixed sizes
      without --image_size, a set too large for memory, --test_split with a TEST_GLOB.
  """
  options = options or images_lib.ImageOptions(seed=seed)
  where = f"tfrecord:{patterns}"
  train_glob, test_glob, val_glob = (patterns.split(",") + ["", ""])[:3]
  train_files = _files(train_glob)
  test_files = _files(test_glob) if test_glob else []
  val_files = _files(val_glob) if val_glob else []
  if test_glob:
    images_lib.refuse_test_split(options, where, test_glob)
  if options.stream == "yes":
    raise UsageError(f"--stream=yes applies to folders of image files; {where} is decoded "
                     "into memory (its memory check says when it is too large): drop --stream")
  key = images_lib.cache_key("tfrecord", options.image_size, options.channels,
                             options.skip_bad_images, len(train_files), len(test_files),
                             files=train_files + test_files + val_files)
  a = images_lib.cached(key, lambda: _build(train_files, test_files, options, where,
                                            val_files))
  x, y, split = a["x"], a["y"], a["split"]
  height, width, channels = x.shape[1:]
  train, val = np.flatnonzero(split == 0), np.flatnonzero(split == 3)
  if test_files:
    test = np.flatnonzero(split == 1)
  else:
    keep, test = images_lib.stratified_split(y[train], images_lib.held_out(options),
                                             options.seed)
    train, test = train[keep], train[test]
  data = images_lib.make_dataset(
      where, x[train], y[train], x[test], y[test], [str(n) for n in a["class_names"]],
      _source(train_glob, test_glob, len(train_files) + len(test_files) + len(val_files),
              options, a, val_glob),
      decode.Decoding(height, width, channels, resized=bool(a["resized"])))
  if not len(val):
    return data
  return dataclasses.replace(data, x_val=x[val], y_val=y[val].astype(np.int32),
                             validation_source=val_glob)


TFRECORD = DatasetInfo("tfrecord", load, takes_path=True, panel=None,
                       usage="tfrecord:TRAIN_GLOB[,TEST_GLOB[,VAL_GLOB]]",
                       about="your tf.Examples: image/encoded, image/class/label (and text)")
