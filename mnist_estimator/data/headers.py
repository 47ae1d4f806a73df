"""What images' headers say before a pixel is decoded: sizes, colour, the memory they need."""

import collections
import dataclasses
import io
import math
import warnings
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import decode

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.data.images import ImageOptions

# Formats tf.io.decode_image reads as they are (PIL calls some camera JPEGs MPO).
TF_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP")
_GRAY_MODES = ("1", "L", "LA", "La", "I", "F")
# The decoded set is in memory about three times at once: the array, then the record file's
# rows made from it and their bytes, hashed (inputs/record_cache.py).
_COPIES = 3
_LONG_SIDE = 256  # the largest side suggested for --image_size: the models here are small


@dataclasses.dataclass
class Headers:
  """Every image's header, in the order given.

  Attributes:
    sizes: int64 [N, 2], (height, width) of each image (0, 0 where unreadable).
    colour: bool [N]: the image has colour (not gray, not a gray palette).
    formats: PIL's format name of each image (None where unreadable).
    bad: [(index, reason)] of the images whose header does not read, or that TF cannot read.
  """
  sizes: np.ndarray
  colour: np.ndarray
  formats: List[Optional[str]]
  bad: List[Tuple[int, str]]

  def good(self) -> np.ndarray:
    """Indices of the images whose headers read."""
    return np.setdiff1d(np.arange(len(self.formats)), [i for i, _ in self.bad])

  def converted(self, indices: np.ndarray, channels: Optional[int]) -> bool:
    """--channels changes the colour of some image at `indices` (gray to RGB or back)."""
    return bool(channels) and bool(np.any(self.colour[indices] != (channels == 3)))


def _gray_palette(image: Any) -> bool:
  """`image`: an open PIL.Image."""
  """True if every entry of a P image's palette is gray (read from the header, not pixels)."""
  palette = image.palette
  if palette is None:
    return False
  raw = np.frombuffer(bytes(palette.palette), np.uint8)
  order = palette.rawmode or palette.mode or "RGB"  # a raw palette, e.g. BMP's BGRX
  if len(order) < 3 or len(raw) % len(order):
    return False
  entries = raw.reshape(-1, len(order))[:, [i for i, band in enumerate(order) if band in "RGB"]]
  return bool(len(entries)) and bool(np.all(entries.max(1) == entries.min(1)))


def _colour(image: Any) -> bool:
  if image.mode in ("P", "PA"):
    return not _gray_palette(image)
  return not (image.mode in _GRAY_MODES or image.mode.startswith("I;"))


def read_header(source: Union[str, bytes],
                converted: bool = False) -> Union[Tuple[int, int, bool, Optional[str]], str]:
  """(height, width, colour, format) of an image file or bytes; PIL reads the header only.

  Args:
    source: a path or the encoded bytes.
    converted: the bytes go through decode.file_bytes (WebP, TIFF, PPM): any PIL format.

  Returns:
    The tuple, or a string: why it cannot be read.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")  # DecompressionBombWarning: the memory check decides
      with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        if not converted and image.format not in TF_FORMATS:
          return f"{image.format} data, which tf.io.decode_image does not read"
        return image.size[1], image.size[0], _colour(image), image.format
  except OSError as e:
    if type(e).__name__ == "UnidentifiedImageError" or not e.strerror:
      return f"not a {decode.FORMATS} image"
    return e.strerror
  except Exception as e:  # pylint: disable=broad-except  # PIL raises many kinds on bad data
    return f"its header does not read ({type(e).__name__})"


def probe(sources: Sequence[Union[str, bytes]], converted: Iterable[int] = ()) -> Headers:
  """The Headers of image files or encoded bytes (`converted`: the indices to convert)."""
  count = len(sources)
  sizes, colour = np.zeros((count, 2), np.int64), np.zeros(count, bool)
  formats: List[Optional[str]] = [None] * count
  bad: List[Tuple[int, str]] = []
  to_convert = set(converted)
  for i, source in enumerate(sources):
    found = read_header(source, i in to_convert)
    if isinstance(found, str):
      bad.append((i, found))
    else:
      sizes[i], colour[i], formats[i] = found[:2], found[2], found[3]
  return Headers(sizes, colour, formats, bad)


def converted_files(paths: Sequence[str]) -> List[int]:
  """Indices of the files decode.file_bytes converts (by their names, as it does)."""
  return [i for i, p in enumerate(paths) if p.lower().endswith(decode.CONVERTED_EXTENSIONS)]


def choose(headers: Headers, options: "ImageOptions", where: str) -> decode.Decoding:
  """The Decoding of the images: --image_size and --channels, else what the headers say.

  Every header counts: 3 channels if any image has colour; one size, or --image_size.

  Raises:
    UsageError: the images have several sizes and no --image_size says which to use.
  """
  good = headers.good()
  if not len(good):
    raise UsageError(f"no image in {where} can be read; pass {decode.FORMATS} files")
  channels = options.channels or (3 if headers.colour[good].any() else 1)
  sizes = collections.Counter(map(tuple, headers.sizes[good].tolist()))
  if options.image_size:
    h, w = options.image_size
    return decode.Decoding(h, w, channels, resized=any(s != (h, w) for s in sizes))
  if len(sizes) > 1:
    (h, w), count = sizes.most_common(1)[0]
    listed = ", ".join(f"{a}x{b}: {n:,}" for (a, b), n in sizes.most_common(3))
    more = ", ..." if len(sizes) > 3 else ""
    raise UsageError(f"the {len(good):,} images in {where} have {len(sizes)} sizes ({listed}"
                     f"{more}); pass --image_size={h}x{w} (the most common, {count:,} images) "
                     "to resize them all")
  (h, w), = sizes
  return decode.Decoding(h, w, channels)


def memory_available() -> Optional[int]:
  """Bytes of memory available to a new allocation (MemAvailable), or None if unknown."""
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError):
    pass
  return None


def suggest_size(count: int, decoding: decode.Decoding, free: int) -> Tuple[int, int]:
  """(H, W) of decoding's aspect whose decoded set fits in half of `free` bytes.

  At most _LONG_SIDE on the long side, and never larger than decoding's size.
  """
  aspect = decoding.height / decoding.width
  per_pixel = count * decoding.channels * _COPIES
  pixels = max(1.0, free / 2 / per_pixel)
  long_side = min(_LONG_SIDE, max(decoding.height, decoding.width),
                  math.sqrt(pixels * max(aspect, 1 / aspect)))
  if aspect >= 1:
    return max(1, int(long_side)), max(1, int(long_side / aspect))
  return max(1, int(long_side * aspect)), max(1, int(long_side))


def check_memory(count: int, decoding: decode.Decoding, where: str) -> None:
  """Refuses a set whose decoded images would not fit in memory, before decoding any.

  Args:
    count: the images to decode.
    decoding: the Decoding they would be decoded with (its aspect is kept in the suggestion).
    where: the data set, for the message.

  Raises:
    UsageError: naming --image_size=HxW with a size that fits.
  """
  free = memory_available()
  one = decoding.height * decoding.width * decoding.channels
  need = count * one * _COPIES
  if not free or need <= free:
    return
  h, w = suggest_size(count, decoding, free)
  raise UsageError(f"the {count:,} images in {where} decoded at {decoding.height}x"
                   f"{decoding.width}x{decoding.channels} need about {need / 2**30:.1f} GiB "
                   f"({_COPIES} copies of {count * one / 2**30:.2f} GiB) but "
                   f"{free / 2**30:.1f} GiB of memory is free; pass --image_size={h}x{w} "
                   "to decode each image at that size")

