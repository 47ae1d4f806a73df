"""Training-time data augmentation (--augment): seeded, per-image, graph-mode tf.data ops."""

import collections
import math
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

import tensorflow as tf

from mnist_estimator.common.errors import UsageError

# What each name does, its default strength, the strength's upper bound (the lower one is
# "above 0"), and how the run header shows it.
_Op = collections.namedtuple("_Op", "about default upper show")
_OPS = collections.OrderedDict([
    ("flip", _Op("the probability of a left-right mirror", 0.5, 1.0,
                 lambda v: "flip" if v == 0.5 else f"flip p={v:g}")),
    ("shift", _Op("the largest shift, a fraction of the height and width (whole pixels)",
                  0.1, 0.5, lambda v: f"shift ±{v * 100:g}%")),
    ("rotate", _Op("the largest angle in degrees", 10.0, 180.0, lambda v: f"rotate ±{v:g}°")),
    ("zoom", _Op("the largest change of scale, a fraction", 0.1, 0.9,
                 lambda v: f"zoom ±{v * 100:g}%")),
    ("crop", _Op("the zero padding, a fraction of the size, cropped back at random", 0.125,
                 0.5, lambda v: f"crop (pad {v * 100:g}%)")),
    ("brightness", _Op("the largest change added to the 0..1 pixel values", 0.1, 1.0,
                       lambda v: f"brightness ±{v:g}")),
    ("contrast", _Op("the largest change of contrast, a fraction", 0.2, 1.0,
                     lambda v: f"contrast ±{v * 100:g}%")),
])
# The allowed names, in help order, which is also the order they are applied in.
NAMES = tuple(_OPS)
_GEOMETRIC = ("flip", "shift", "rotate", "zoom", "crop")  # one resampling for all of them

Names = Union[str, Iterable[str]]


def _split(names: Names) -> List[str]:
  """The entries of a tuple of names or of one comma-separated string; blanks dropped."""
  if isinstance(names, str):
    names = names.split(",")
  return [entry.strip() for entry in names or () if entry and entry.strip()]


def _strength(name: str, text: str) -> float:
  """A strength given as NAME:VALUE, checked against the name's bounds."""
  op = _OPS[name]
  try:
    value = float(text)
  except ValueError:
    value = math.nan
  if not 0 < value <= op.upper:  # also refuses NaN
    raise UsageError(f"--augment {name}:{text}: the strength is {op.about}; give a number "
                     f"above 0 and at most {op.upper:g}, e.g. {name}:{op.default:g}, or "
                     f"just {name}")
  return value


def parse(names: Names) -> "collections.OrderedDict[str, float]":
  """Each name's strength, in the order the augmentations are applied.

  Args:
    names: names from NAMES, each optionally NAME:STRENGTH (e.g. "shift:0.15"); a tuple or
      one comma-separated string.

  Returns:
    An OrderedDict {name: strength} in NAMES order (empty for no names).

  Raises:
    UsageError: an unknown name, a bad strength, or a name given twice.
  """
  given = {}
  for entry in _split(names):
    name, _, text = entry.partition(":")
    name = name.strip().lower()
    if name not in _OPS:
      raise UsageError(f"unknown --augment name {name!r}; choose from: {', '.join(NAMES)} "
                       "(comma-separated, each optionally NAME:STRENGTH, e.g. shift:0.15)")
    if name in given:
      raise UsageError(f"--augment gives {name} twice; give each name once")
    given[name] = _strength(name, text) if text.strip() else _OPS[name].default
  return collections.OrderedDict((name, given[name]) for name in NAMES if name in given)


def check(names: Names) -> None:
  """Raises UsageError for an unknown name or a bad strength (see `parse`)."""
  parse(names)


def describe(names: Names) -> str:
  """One short line for the run header, e.g. "flip, shift ±10%, rotate ±10°"; "none"."""
  chosen = parse(names)
  return ", ".join(_OPS[name].show(value) for name, value in chosen.items()) or "none"


def _uniform(seed: tf.Tensor, shape: Any, low: Any, high: Any,
             dtype: tf.dtypes.DType = tf.float32) -> tf.Tensor:
  return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high, dtype=dtype)


def _translation(chosen: Mapping[str, float], seeds: tf.Tensor, batch: tf.Tensor,
                 height: tf.Tensor, width: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Per-image whole-pixel shifts (dx, dy): "shift"'s and "crop"'s, added together."""
  dx = dy = tf.zeros([batch])
  if "shift" in chosen:
    most = tf.stack([width, height]) * chosen["shift"]
    step = tf.round(_uniform(seeds[NAMES.index("shift")], [2, batch], -1.0, 1.0)
                    * most[:, tf.newaxis])
    dx, dy = dx + step[0], dy + step[1]
  if "crop" in chosen:
    # Zero-padding by p and cropping back at a uniform offset is a whole-pixel shift
    # uniform in [-p, p] with zeros coming in: the same thing, without the padded copy.
    pad = tf.cast(tf.round(tf.stack([width, height]) * chosen["crop"]), tf.int32)
    seed = tf.random.experimental.stateless_split(seeds[NAMES.index("crop")], 2)
    dx += tf.cast(_uniform(seed[0], [batch], -pad[0], pad[0] + 1, tf.int32), tf.float32)
    dy += tf.cast(_uniform(seed[1], [batch], -pad[1], pad[1] + 1, tf.int32), tf.float32)
  return dx, dy


def transforms(batch: Union[int, tf.Tensor], height: Union[int, tf.Tensor],
               width: Union[int, tf.Tensor], mirror: tf.Tensor, angle: tf.Tensor,
               scale: tf.Tensor, dx: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
  """Per-image [batch, 8] matrices mapping output pixels to input pixels (the op's form).

  The image is mirrored, rotated and scaled about its centre, then shifted.

  Args:
    batch, height, width: the batch's size (scalar tensors or ints).
    mirror: [batch] bool, flip left-right.
    angle: [batch] radians, counter-clockwise as displayed.
    scale: [batch] factor (above 1 enlarges the content).
    dx, dy: [batch] shift in pixels, right and down.

  Returns:
    A float32 [batch, 8] tensor for tf.raw_ops.ImageProjectiveTransformV3.
  """
  cx = (tf.cast(width, tf.float32) - 1) / 2  # pixel centres are at whole coordinates
  cy = (tf.cast(height, tf.float32) - 1) / 2
  sign = tf.where(mirror, -1.0, 1.0)
  cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
  a0, a1, b0, b1 = sign * cos, -sign * sin, sin, cos
  ux, uy = cx + dx, cy + dy  # the output point where the input's centre lands
  zero = tf.zeros([batch])
  return tf.stack([a0, a1, cx - a0 * ux - a1 * uy, b0, b1, cy - b0 * ux - b1 * uy, zero, zero],
                  axis=1)


def _geometry(images: tf.Tensor, chosen: Mapping[str, float], seeds: tf.Tensor) -> tf.Tensor:
  """Flip, shift, rotate, zoom and crop in one bilinear resampling; zeros come in."""
  shape = tf.shape(images)
  batch, height, width = shape[0], shape[1], shape[2]
  size = [tf.cast(height, tf.float32), tf.cast(width, tf.float32)]
  mirror = tf.zeros([batch], tf.bool)
  if "flip" in chosen:
    mirror = _uniform(seeds[NAMES.index("flip")], [batch], 0.0, 1.0) < chosen["flip"]
  angle = tf.zeros([batch])
  if "rotate" in chosen:
    most = chosen["rotate"] * math.pi / 180
    angle = _uniform(seeds[NAMES.index("rotate")], [batch], -most, most)
  scale = tf.ones([batch])
  if "zoom" in chosen:
    scale = _uniform(seeds[NAMES.index("zoom")], [batch], 1 - chosen["zoom"],
                     1 + chosen["zoom"])
  dx, dy = _translation(chosen, seeds, batch, size[0], size[1])
  matrices = transforms(batch, height, width, mirror, angle, scale, dx, dy)
  return tf.raw_ops.ImageProjectiveTransformV3(
      images=images, transforms=matrices, output_shape=shape[1:3], fill_value=0.0,
      interpolation="BILINEAR", fill_mode="CONSTANT")


def _photometric(images: tf.Tensor, chosen: Mapping[str, float], seeds: tf.Tensor) -> tf.Tensor:
  """Per-image brightness (added) and contrast (scaled about each channel's mean)."""
  per_image = tf.stack([tf.shape(images)[0], 1, 1, 1])
  if "brightness" in chosen:
    most = chosen["brightness"]
    delta = _uniform(seeds[NAMES.index("brightness")], per_image, -most, most, images.dtype)
    images = tf.clip_by_value(images + delta, 0.0, 1.0)
  if "contrast" in chosen:
    most = chosen["contrast"]
    factor = _uniform(seeds[NAMES.index("contrast")], per_image, 1 - most, 1 + most,
                      images.dtype)
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    images = tf.clip_by_value((images - mean) * factor + mean, 0.0, 1.0)
  return images


def augment_batch(images: tf.Tensor, names: Names,
                  seed: Optional[Union[int, tf.Tensor]] = None) -> tf.Tensor:
  """Augments a batch of images, each with its own random parameters.

  Args:
    images: float [batch, H, W, C] in 0..1 (any H, W; C = 1 or 3 or more).
    names: names from NAMES (optionally NAME:STRENGTH), applied in NAMES order.
    seed: a [2] int tensor: stateless, the same seed gives the same batch (what
      `augment_dataset` hands in, one per batch). An int or None: a stateful op draws
      that per-call seed, so results repeat only in a sequential (not parallel) map.

  Returns:
    The augmented images: same shape, dtype, and range 0..1.

  Raises:
    UsageError: an unknown name or a bad strength.
  """
  chosen = parse(names)
  images = tf.convert_to_tensor(images)
  if not chosen:
    return images
  if not tf.is_tensor(seed):  # an int or None: a stateful draw per call (see Args)
    seed = tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64,
                             seed=None if seed is None else int(seed))
  # One seed per name, by its place in NAMES: adding a name leaves the others' draws alone.
  seeds = tf.random.experimental.stateless_split(seed, len(NAMES))
  out = images
  if any(name in chosen for name in _GEOMETRIC):
    out = _geometry(out, chosen, seeds)
    out = tf.clip_by_value(out, 0.0, 1.0)  # bilinear weights' rounding: a hair above 1
  out = _photometric(out, chosen, seeds)
  out.set_shape(images.shape)
  return out


def augment_dataset(ds: tf.data.Dataset, names: Names, seed: Optional[int] = None,
                    num_parallel_calls: int = 2) -> tf.data.Dataset:
  """Augments features["x"] of a batched dataset of (features, labels) or of features.

  Each batch gets its own stateless seed from `tf.data.Dataset.random(seed)`, zipped in
  before the map: the same seed gives the same batches even with a parallel map.

  Args:
    ds: batched; elements (features, labels) or features, features a dict with "x" (float
      [batch, H, W, C] in 0..1) or that tensor itself.
    names: names from NAMES (optionally NAME:STRENGTH); none leaves `ds` as it is.
    seed: an int for a repeatable stream, None for a random one.
    num_parallel_calls: the map's parallelism.

  Returns:
    The dataset with augmented images, elements of the same structure.

  Raises:
    UsageError: an unknown name or a bad strength.
  """
  if not parse(names):
    return ds
  seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)

  def apply(element: Any, pair: tf.Tensor) -> Any:
    """`element`: (features, labels...) or features; features a dict with "x" or a tensor."""
    features, rest = (element[0], element[1:]) if isinstance(element, tuple) else (element, ())
    if isinstance(features, dict):
      features = dict(features, x=augment_batch(features["x"], names, pair))
    else:
      features = augment_batch(features, names, pair)
    return (features, *rest) if rest or isinstance(element, tuple) else features

  # Python control flow on static choices only: autograph's conversion would only cost time.
  return tf.data.Dataset.zip((ds, seeds)).map(tf.autograph.experimental.do_not_convert(apply),
                                              num_parallel_calls=num_parallel_calls)


def strengths() -> Tuple[Tuple[str, float, float, str], ...]:
  """(name, default, upper bound, what the strength is) per name, for --augment's help."""
  return tuple((name, op.default, op.upper, op.about) for name, op in _OPS.items())
