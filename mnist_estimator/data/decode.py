"""One decoding of encoded images, the same ops for training, predict and the SavedModel.

Training decodes a folder's (or a TFRecord's) files with `decode`; the export's `image_bytes`
signature runs the very same function in its graph, and predict feeds that signature the
files' bytes. So a photo gets the same pixels whichever way it reaches the model, and TF
Serving, which runs the graph, gives the same answers as this package.
"""

import dataclasses
import functools
import io
import os
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple)

import numpy as np

from mnist_estimator.common import causes
from mnist_estimator.common.errors import UsageError

if TYPE_CHECKING:  # imported where used: this module loads without TensorFlow
  import tensorflow as tf

# What tf.io.decode_image reads itself; the others PIL reads and hands on as lossless PNG.
TF_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
CONVERTED_EXTENSIONS = (".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm")
EXTENSIONS = TF_EXTENSIONS + CONVERTED_EXTENSIONS
FORMATS = "PNG, JPEG, BMP, GIF, WebP, TIFF or PPM/PGM"
RESIZE_METHODS = ("bilinear", "area", "nearest", "bicubic")


@dataclasses.dataclass(frozen=True)
class Decoding:
  """How encoded images become a model's uint8 pixels [height, width, channels].

  Attributes:
    height, width, channels: the model's image; channels 1 (gray) or 3 (RGB).
    resize: the tf.image.resize method (antialiased) for an image of another size; training
      resized with it only under --image_size ("resized": True), but the graph resizes any.
    resized: training's images were resized (--image_size), so predict resizes without asking.
  """
  height: int
  width: int
  channels: int
  resize: str = "bilinear"
  resized: bool = False

  def describe(self) -> str:
    """One line for headers, the model_dir record and the export's metadata."""
    how = f"resized ({self.resize}, antialiased)" if self.resized else "of this size"
    return (f"tf.io.decode_image (first frame; 16-bit to 8), transparency flattened, "
            f"{'gray (BT.601)' if self.channels == 1 else 'RGB'}, {self.height}x{self.width} "
            f"{how}, uint8, then / 255")

  def as_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "Decoding":
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in (values or {}).items() if k in known})


def _flatten_alpha(image: "tf.Tensor") -> "tf.Tensor":
  """uint8 [h, w, 2|4] -> [h, w, 1|3]: composited over black under light ink, else white.

  A digit drawn white on a transparent background becomes MNIST's white on black; dark ink on
  a transparent one becomes ink on paper (then --invert's business). Opaque pixels keep
  their values exactly.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  pixels = tf.cast(image, tf.float32) / 255.0
  colors, alpha = pixels[..., :-1], pixels[..., -1:]
  ink = tf.reduce_sum(tf.reduce_mean(colors, axis=-1, keepdims=True) * alpha)
  background = tf.where(ink > 0.5 * tf.reduce_sum(alpha), 0.0, 1.0)
  flat = colors * alpha + (1.0 - alpha) * background
  return tf.cast(tf.round(tf.clip_by_value(flat, 0.0, 1.0) * 255.0), tf.uint8)


def _channels(image: "tf.Tensor", channels: int) -> "tf.Tensor":
  """uint8 [h, w, 1..4] -> [h, w, channels]: alpha flattened, RGB <-> gray (BT.601, rounded)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  count = tf.shape(image)[-1]
  image = tf.cond(tf.equal(count % 2, 0), lambda: _flatten_alpha(image), lambda: image)
  if channels == 1:
    gray = lambda: tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))),
                           tf.uint8)
    image = tf.cond(tf.equal(tf.shape(image)[-1], 3), gray, lambda: image)
  else:
    image = tf.cond(tf.equal(tf.shape(image)[-1], 1), lambda: tf.tile(image, [1, 1, 3]),
                    lambda: image)
  return tf.ensure_shape(image, [None, None, channels])


def _size(image: "tf.Tensor", decoding: Decoding) -> "tf.Tensor":
  """uint8 [h, w, c] -> [H, W, c], resized (antialiased, rounded) only if h, w differ."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  size = [decoding.height, decoding.width]

  def resize() -> "tf.Tensor":
    scaled = tf.image.resize(image, size, method=decoding.resize, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(scaled), 0, 255), tf.uint8)

  same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
  return tf.ensure_shape(tf.cond(same, lambda: image, resize),
                         [decoding.height, decoding.width, decoding.channels])


def decode(encoded: "tf.Tensor", decoding: Decoding) -> "tf.Tensor":
  """Encoded image bytes (a scalar string tensor) -> uint8 [H, W, C] as `decoding` says."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  image = tf.io.decode_image(encoded, channels=0, dtype=tf.uint8, expand_animations=False)
  return _size(_channels(image, decoding.channels), decoding)


def _decode_each(encoded: "tf.Tensor", decoding: Decoding,
                 parallel_iterations: Optional[int] = None) -> "tf.Tensor":
  """Encoded images [N] (strings) -> uint8 [N, H, W, C]: `decode` mapped over them.

  `decode` is plain TensorFlow (tf.cond where it branches): autograph's conversion of it
  would only cost time at every graph's construction.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  shape = [decoding.height, decoding.width, decoding.channels]
  return tf.map_fn(tf.autograph.experimental.do_not_convert(lambda one: decode(one, decoding)),
                   encoded, fn_output_signature=tf.TensorSpec(shape, tf.uint8),
                   parallel_iterations=parallel_iterations)


def decode_batch(encoded: "tf.Tensor", decoding: Decoding) -> "tf.Tensor":
  """Encoded images [N] (strings) -> float32 [N, H, W, C] in 0..1, as training's pipeline."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.cast(_decode_each(encoded, decoding), tf.float32) / 255.0


def file_bytes(path: str) -> bytes:
  """A file's bytes for `decode`: as they are, or (WebP, TIFF, PPM, ...) as PNG made by PIL.

  The conversion is lossless (16-bit gray stays 16-bit), so training and predict, which both
  read files through here, hand `decode` the same bytes.

  Raises:
    UsageError: the file cannot be read, or PIL cannot read a converted format.
  """
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise UsageError(f"cannot read {path} ({e.strerror}); check the path") from None
  if not path.lower().endswith(CONVERTED_EXTENSIONS):
    return data
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(io.BytesIO(data)) as opened:
      opened.seek(0)
      image: "Image.Image" = opened  # convert() gives a plain Image (typed Pillow >= 12)
      if image.mode in ("I", "I;16B", "I;16L"):  # 16-bit gray (PGM, TIFF): kept 16-bit
        image = image.convert("I;16")
      elif image.mode not in ("1", "L", "LA", "I;16", "RGB", "RGBA", "P"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
      out = io.BytesIO()
      image.save(out, "PNG")
  except Exception as e:  # pylint: disable=broad-except  # PIL raises many kinds
    raise UsageError(f"{path} does not decode as an image ({type(e).__name__}: {e}); pass "
                     f"{FORMATS} files") from None
  return out.getvalue()


def decode_files(paths: Sequence[str], decoding: Decoding, batch: int = 256) -> np.ndarray:
  """uint8 [N, H, W, C] of image files, decoded in parallel by `decode` (eager).

  Raises:
    UsageError: a file that does not decode (naming it); see `decode_files_keeping`.
  """
  images, bad = decode_files_keeping(paths, decoding, batch)
  if bad:
    path, why = bad[0]
    if why.startswith("cannot read "):  # gone or unreadable: not a matter of its format
      raise UsageError(why)
    raise UsageError(f"{path} does not decode as an image ({why}); pass {FORMATS} files")
  return images


def decode_files_keeping(
    paths: Sequence[str], decoding: Decoding, batch: int = 256,
    progress: Optional[Callable[[int], object]] = None,
) -> Tuple[np.ndarray, List[Tuple[str, str]]]:
  """(uint8 [n, H, W, C] of the files that decode, [(path, reason)] of those that do not).

  A batch that fails is decoded again file by file, so one bad file costs one batch.
  `progress(done)` is called after each batch.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out: List[np.ndarray] = []
  bad: List[Tuple[str, str]] = []
  for start in range(0, len(paths), batch):
    part = list(paths[start:start + batch])
    try:
      out.append(_decode_many(part, decoding))
    except (tf.errors.OpError, UsageError):
      for path in part:
        try:
          out.append(_decode_many([path], decoding))
        except UsageError as e:
          bad.append((path, str(e)))
        except tf.errors.OpError as e:
          bad.append((path, causes.tf_error_line(e.message)))
    if progress:
      progress(min(start + batch, len(paths)))
  shape = (0, decoding.height, decoding.width, decoding.channels)
  return (np.concatenate(out) if out else np.zeros(shape, np.uint8)), bad


def _decode_many(paths: Sequence[str], decoding: Decoding) -> np.ndarray:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return _compiled(decoding)(tf.constant([file_bytes(p) for p in paths], tf.string)).numpy()


@functools.lru_cache(maxsize=8)
def _compiled(decoding: Decoding) -> Callable[["tf.Tensor"], "tf.Tensor"]:
  """`decode` over a batch of strings as one graph (eager ops per image took 5 ms each)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
  def run(encoded: tf.Tensor) -> tf.Tensor:
    return _decode_each(encoded, decoding, parallel_iterations=os.cpu_count() or 2)
  return run


def border_mean(images: Optional[np.ndarray]) -> Optional[float]:
  """Mean brightness (0..1) of the images' one-pixel border: their background's polarity."""
  if images is None or not len(images) or images.ndim != 4 or min(images.shape[1:3]) < 3:
    return None
  x = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
  edges = [x[:, 0], x[:, -1], x[:, 1:-1, 0], x[:, 1:-1, -1]]
  return float(np.mean(np.concatenate([e.reshape(len(x), -1) for e in edges], axis=1)))


def decode_encoded_keeping(
    encoded: Iterable[bytes], decoding: Decoding) -> Tuple[np.ndarray, List[Tuple[int, str]]]:
  """(uint8 [n, H, W, C] of the encoded images that decode, [(index, reason)] of the rest).

  As `decode_files_keeping`, for bytes in memory (a TFRecord's image/encoded): one graph run
  for all, and file by file again only if one of them fails.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  encoded = list(encoded)
  try:
    return _compiled(decoding)(tf.constant(encoded, tf.string)).numpy(), []
  except tf.errors.OpError:
    pass
  out: List[np.ndarray] = []
  bad: List[Tuple[int, str]] = []
  for index, one in enumerate(encoded):
    try:
      out.append(_compiled(decoding)(tf.constant([one], tf.string)).numpy())
    except tf.errors.OpError as e:
      bad.append((index, causes.tf_error_line(e.message)))
  shape = (0, decoding.height, decoding.width, decoding.channels)
  return (np.concatenate(out) if out else np.zeros(shape, np.uint8)), bad


def convert(images: np.ndarray, decoding: Decoding) -> "tf.Tensor":
  """Pixel arrays [N, h, w, 1|3] -> [N, H, W, C] with `decode`'s channel and size steps.

  uint8 images get exactly what a decoded file gets (gray BT.601 rounded, gray tiled to RGB,
  resized antialiased and rounded only if h, w differ); float32 images (0..1) the same ops
  without the rounding, clipped to 0..1. A TF tensor of the images' dtype.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  images = tf.convert_to_tensor(images)
  integer = images.dtype == tf.uint8
  x = tf.cast(images, tf.float32)
  if decoding.channels == 1 and images.shape[-1] == 3:
    x = tf.image.rgb_to_grayscale(x)
    x = tf.round(x) if integer else x
  elif decoding.channels == 3 and images.shape[-1] == 1:
    x = tf.tile(x, [1, 1, 1, 3])
  if tuple(images.shape[1:3]) != (decoding.height, decoding.width):
    x = tf.image.resize(x, [decoding.height, decoding.width], method=decoding.resize,
                        antialias=True)
    x = tf.round(x) if integer else x
  x = tf.clip_by_value(x, 0.0, 255.0 if integer else 1.0)
  return tf.cast(x, images.dtype)
