"""The input_fn of streamed images: from their files, or from the shards of their decoded pixels."""

from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple, Union

import numpy.typing as npt

from mnist_estimator.data import images as images_lib
from mnist_estimator.data import stream
from mnist_estimator.data import stream_cache

if TYPE_CHECKING:  # imported where used: this module loads without TensorFlow
  import tensorflow as tf


def input_fn(images: stream.FileImages, labels: Optional[npt.ArrayLike], batch_size: int,
             train: bool, seed: Optional[int] = None, with_labels: bool = True,
             augment: Optional[Callable[["tf.data.Dataset"], "tf.data.Dataset"]] = None,
             cache_dir: Optional[str] = None) -> Callable[[], "tf.data.Dataset"]:
  """An input_fn decoding `images`' files as it goes: memory does not grow with their number.

  Args:
    images: the FileImages.
    labels: int [N] (class ids), or None for a predict input_fn.
    batch_size: images per batch.
    train: shuffle (seeded, anew each pass) and repeat forever; otherwise one pass in order,
      every image exactly once (the last batch may be smaller).
    seed: the shuffle seed.
    with_labels: False yields features only.
    augment: None, or `dataset -> dataset` over the batches ({"x": float32 0..1}, labels) (or
      {"x": ...} alone), applied before prefetch.
    cache_dir: None, or a folder of decoded shards (stream_cache.build_cache, run here if
      they are not there): then every pass and later run reads pixels, not files.

  Returns:
    A no-argument input_fn returning a tf.data.Dataset: {"x": float32 [B, H, W, C] in 0..1}
    and int32 labels [B] (with_labels and labels given), or the features alone.

  Raises:
    UsageError: building the cache met a file that does not read or decode (`stream.explain`).
  """
  keep_labels = with_labels and labels is not None
  label_ids = stream.label_ids(images, labels)
  source: Callable[[], tf.data.Dataset]
  if cache_dir:
    shards = stream_cache.build_cache(images, label_ids, cache_dir, shuffled=train)
    source = lambda: stream_cache.from_shards(shards, images.decoding, batch_size, train, seed)
  else:
    listing = stream.write_listing(images.paths, label_ids, images_lib.cache_folder())
    source = lambda: stream.from_files(listing, images, batch_size, train, seed)

  def make() -> "tf.data.Dataset":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    def finish(pixels: tf.Tensor,
               label: tf.Tensor) -> Union[Tuple[Dict[str, tf.Tensor], tf.Tensor],
                                          Dict[str, tf.Tensor]]:
      features = {"x": tf.cast(pixels, tf.float32) / 255.0}
      return (features, label) if keep_labels else features
    ds = source().map(tf.autograph.experimental.do_not_convert(finish),
                      num_parallel_calls=stream.PARALLEL)
    ds = augment(ds) if augment is not None else ds
    return ds.prefetch(2).with_options(stream.data_options())
  return make
