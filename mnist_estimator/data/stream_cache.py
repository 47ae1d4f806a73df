"""Decoded, resized images kept in TFRecord shards, so later epochs and runs skip decoding."""

import json
import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import images as images_lib
from mnist_estimator.data import stream

if TYPE_CHECKING:  # imported where used: this module loads without TensorFlow
  import tensorflow as tf

  from mnist_estimator.data import decode

SHARD_BYTES = 128 * 2**20  # per cache shard: few files, yet several to shuffle and interleave
# The cached route's shuffle buffer: its shards are shuffled already, so a small one. Peak
# memory grew by 2.5 times its bytes (128 MB: +320 MB), so 32 MB: 212 images of 224x224x3.
SHUFFLE_IMAGES, SHUFFLE_BYTES = 2048, 32 * 2**20
_COMPLETE = "COMPLETE"  # a cache folder's marker, written last: its shards and their sizes


def cache_folder() -> str:
  """The cache_dir of --cache_decoded: "shards" in the record cache's folder."""
  return os.path.join(images_lib.cache_folder(), "shards")


def build_cache(images: stream.FileImages, labels: Optional[npt.ArrayLike], cache_dir: str,
                shuffled: bool = False) -> List[str]:
  """Decodes the images once into shards in cache_dir/<key>/, unless they are there already.

  Args:
    images: the FileImages; the key covers their paths, sizes, mtimes and decoding.
    labels: int [N], or None.
    cache_dir: the folder of caches.
    shuffled: records in a fixed shuffled order (training: each shard a sample of every
      class), else in the images' order (evaluation reads them in order).

  Returns:
    The shards' paths, in record order.

  Raises:
    UsageError: a file that cannot be read or decoded (`stream.explain`), naming it.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  label_ids = stream.label_ids(images, labels)
  try:
    key = images_lib.cache_key("stream", images.decoding.as_dict(), shuffled,
                               label_ids.tobytes(), files=images.paths)
  except OSError as e:
    raise UsageError(f"cannot read {e.filename} ({e.strerror}); restore it, or run again "
                     "so the folder is listed anew") from None
  folder = os.path.join(cache_dir, key)
  shards = _complete_shards(folder)
  if shards is not None:
    return shards
  order: Union[np.ndarray, slice] = (
      np.random.RandomState(0).permutation(len(images)) if shuffled else slice(None))
  os.makedirs(cache_dir, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=cache_dir)
  try:
    try:
      names = _write_shards(images[order], label_ids[order], tmp, folder)
    except tf.errors.OpError as e:
      raise stream.explain(images, e) from None
    try:
      os.rename(tmp, folder)  # atomic: the folder appears complete or not at all
    except OSError:  # another process finished first
      if _complete_shards(folder) is None:
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return [os.path.join(folder, name) for name in names]


def _complete_shards(folder: str) -> Optional[List[str]]:
  """The shards of a complete cache folder, or None (a damaged one is removed)."""
  try:
    with open(os.path.join(folder, _COMPLETE)) as f:
      sizes = json.load(f)["shards"]
    if all(os.path.getsize(os.path.join(folder, n)) == size for n, size in sizes.items()):
      return [os.path.join(folder, name) for name in sizes]
  except (OSError, ValueError, KeyError, TypeError, AttributeError):
    if not os.path.isdir(folder):
      return None
  shutil.rmtree(folder, ignore_errors=True)
  return None


def _write_shards(images: stream.FileImages, labels: np.ndarray, folder: str,
                  final: str) -> List[str]:
  """Writes the decoded images as shards of SHARD_BYTES and the marker; the shards' names."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  count = len(images)
  per_shard = max(1, SHARD_BYTES // (stream.LABEL_BYTES + stream.memory_bytes(1, images.decoding)))
  names = [f"shard-{i:05d}-of-{-(-count // per_shard):05d}.tfrecord"
           for i in range(-(-count // per_shard))]
  listing = stream.write_listing(images.paths, labels, folder)
  print(f"caching {count:,} decoded images in {final}", file=sys.stderr)
  show, done = images_lib.progress(count, verb="caching"), 0
  writer: Any = None  # a tf.io.TFRecordWriter from the first image on
  batches = stream.from_files(listing, images, 64, False, None)
  for pixels, batch_labels in batches.with_options(stream.data_options()).as_numpy_iterator():
    for image, label in zip(pixels, batch_labels.tolist()):
      if done % per_shard == 0:
        if writer:
          writer.close()
        writer = tf.io.TFRecordWriter(os.path.join(folder, names[done // per_shard]))
      writer.write(stream.encode_record(label, image.tobytes()))
      done += 1
    show(done)
  if writer:
    writer.close()
  os.remove(listing)
  sizes = {name: os.path.getsize(os.path.join(folder, name)) for name in names}
  with open(os.path.join(folder, _COMPLETE), "w") as f:
    json.dump({"count": count, "shards": sizes}, f)
  return names


def from_shards(shards: Sequence[str], decoding: "decode.Decoding", batch_size: int,
                 train: bool, seed: Optional[int]) -> "tf.data.Dataset":
  """Batches (uint8 [B, H, W, C], int32 [B]) of a cache's shards (mixed for training)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if train:  # shard order, then a buffer over interleaved shards, anew each pass
    files = tf.data.Dataset.from_tensor_slices(shards)
    files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)
    cycle = min(4, len(shards))
    ds = files.interleave(tf.data.TFRecordDataset, cycle_length=cycle,
                          num_parallel_calls=cycle, deterministic=True)
    buffer = max(1, min(SHUFFLE_IMAGES, SHUFFLE_BYTES // stream.memory_bytes(1, decoding)))
    ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat()
  else:
    ds = tf.data.TFRecordDataset(shards)
  shape = [decoding.height, decoding.width, decoding.channels]

  def parse(records: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    labels, pixels = stream.split_records(records, batched=True)
    return tf.reshape(tf.io.decode_raw(pixels, tf.uint8), [-1, *shape]), labels
  return ds.batch(batch_size).map(tf.autograph.experimental.do_not_convert(parse),
                                  num_parallel_calls=stream.PARALLEL)
