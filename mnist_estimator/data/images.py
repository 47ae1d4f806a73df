"""Your own images: decoding (PNG/JPEG/BMP/GIF), one size and channel count, a cache, splits."""

import collections
import concurrent.futures
import dataclasses
import hashlib
import multiprocessing
import os
import sys
import time
from typing import Optional

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data.dataset import Dataset

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
CACHE_ENV = "MNIST_ESTIMATOR_CACHE"  # the record cache's folder (inputs/records.py)
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
_CHUNK = 512  # files per decoding task
_PARALLEL_FROM = 4000  # below this, worker processes cost more than they save
_PROBE = 256  # files whose headers decide the size and channels (opening all took 10 s / 70k)


@dataclasses.dataclass(frozen=True)
class ImageOptions:
  """How to read a data set of your own (the --image_size ... flags)."""
  image_size: Optional[tuple] = None  # (H, W); None: the size every image has
  channels: Optional[int] = None      # 1 or 3; None: 3 if any image has colour
  validation_split: float = 0.1
  skip_bad_images: bool = False
  seed: int = 0


def parse_size(text):
  """(H, W) of "HxW", or None if it is not that."""
  parts = str(text).lower().split("x")
  if len(parts) == 2 and all(p.strip().isdigit() and int(p) > 0 for p in parts):
    return int(parts[0]), int(parts[1])
  return None


def _decode(path, size, channels, resize):
  """One file as uint8 [H, W, channels]; (None, reason) if it does not decode or fit."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as image:
      if image.size != (size[1], size[0]):
        if not resize:
          return None, f"size {image.size[1]}x{image.size[0]}"
        image = image.resize((size[1], size[0]), Image.BILINEAR)
      image = image.convert("L" if channels == 1 else "RGB")
      array = np.asarray(image, np.uint8)
  except Exception as e:  # pylint: disable=broad-except  # PIL raises many kinds
    return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}"
  return (array[..., None] if channels == 1 else array), None


def _decode_chunk(paths, size, channels, resize):
  out, bad = [], []
  for path in paths:
    array, why = _decode(path, size, channels, resize)
    (bad.append((path, why)) if array is None else out.append(array))
  return out, bad


def probe(paths):
  """({(H, W): count}, any colour) from the files' headers (no pixels decoded)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  sizes, colour = collections.Counter(), False
  for path in paths:
    try:
      with Image.open(path) as image:
        sizes[(image.size[1], image.size[0])] += 1
        colour = colour or image.mode not in _GRAY_MODES and not (
            image.mode == "P" and _gray_palette(image))
    except Exception:  # pylint: disable=broad-except  # named when decoded
      continue
  return sizes, colour


def _gray_palette(image):
  palette = np.asarray(image.getpalette() or [], np.int32).reshape(-1, 3)
  return bool(len(palette)) and bool(np.all(palette.max(1) == palette.min(1)))


def choose_shape(paths, options, where):
  """(H, W, C) for the files: --image_size/--channels, else what a sample of them has.

  The headers of up to _PROBE files, spread over the set, decide: their common size, and 3
  channels if any has colour. A file of another size is found when it is decoded.

  Raises:
    UsageError: the sampled sizes differ and no --image_size says which to use.
  """
  step = max(1, len(paths) // _PROBE)
  sizes, colour = probe(paths[::step])
  channels = options.channels or (3 if colour else 1)
  if options.image_size:
    return (*options.image_size, channels)
  if not sizes:
    raise UsageError(f"no image in {where} can be read; pass PNG, JPEG, BMP or GIF files")
  if len(sizes) > 1:
    (h, w), count = sizes.most_common(1)[0]
    listed = ", ".join(f"{a}x{b}: {n}" for (a, b), n in sizes.most_common(3))
    raise UsageError(f"the images in {where} have {len(sizes)} sizes ({listed}, ...); pass "
                     f"--image_size={h}x{w} (the most common, {count} images) to resize all")
  (h, w), = sizes
  return h, w, channels


def _progress(done, total, start, out=sys.stderr):
  rate = done / max(time.time() - start, 1e-6)
  end = "\n" if done == total or not out.isatty() else ""
  prefix = "\r" if out.isatty() else ""
  if out.isatty() or done == total or done % (total // 10 or 1) < _CHUNK:
    out.write(f"{prefix}decoding {total:,} images: {done:,} ({100 * done // total}%), "
              f"{rate:,.0f} images/s{end}")
    out.flush()


def decode_all(paths, shape, skip_bad, resize=False):
  """uint8 [N, H, W, C] of the files (bad ones skipped and counted with skip_bad).

  Large sets are decoded in as many processes as there are cores, with a progress line.

  Args:
    paths: the image files.
    shape: (H, W, C) to make of them.
    skip_bad: skip files that do not decode, instead of refusing them.
    resize: scale other sizes to (H, W) (--image_size), instead of refusing them.

  Returns:
    (images, kept indices, bad [(path, reason)]).

  Raises:
    UsageError: a file that does not decode (unless skip_bad), or one of another size.
  """
  size, channels = shape[:2], shape[2]
  chunks = [paths[i:i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
  start, done, images, bad = time.time(), 0, [], []
  workers = min(os.cpu_count() or 1, len(chunks)) if len(paths) >= _PARALLEL_FROM else 1
  if workers > 1:  # fork: the children only run PIL and numpy
    pool = concurrent.futures.ProcessPoolExecutor(workers, multiprocessing.get_context("fork"))
    results = pool.map(_decode_chunk, chunks, *zip(*[(size, channels, resize)] * len(chunks)))
  else:
    pool, results = None, (_decode_chunk(c, size, channels, resize) for c in chunks)
  try:
    for chunk, (arrays, chunk_bad) in zip(chunks, results):
      images += arrays
      bad += chunk_bad
      done += len(chunk)
      if len(paths) >= 5000:
        _progress(done, len(paths), start)
  finally:
    if pool:
      pool.shutdown()
  other_size = [(path, why) for path, why in bad if why.startswith("size ")]
  if other_size:
    counts = collections.Counter(why[5:] for _, why in other_size)
    listed = ", ".join(f"{size_}: {n}" for size_, n in counts.most_common(3))
    raise UsageError(f"{len(other_size)} images are not {size[0]}x{size[1]} like the rest "
                     f"({listed}; e.g. {other_size[0][0]}); pass --image_size={size[0]}x"
                     f"{size[1]} to resize them all")
  if bad and not skip_bad:
    path, why = bad[0]
    raise UsageError(f"{path} does not decode as an image ({why}); remove it, or pass "
                     f"--skip_bad_images to skip it and {len(bad) - 1} other bad file(s)")
  bad_paths = {path for path, _ in bad}
  kept = [i for i, path in enumerate(paths) if path not in bad_paths]
  return np.stack(images) if images else np.zeros((0, *shape), np.uint8), kept, bad


def cache_key(*parts, files=()):
  """A hash of the files' names, sizes and mtimes and of `parts`: an edited set rebuilds."""
  digest = hashlib.sha1(repr(parts).encode())
  for path in files:
    stat = os.stat(path)
    digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
  return digest.hexdigest()[:16]


def cached(key, build):
  """The arrays `build()` returns, kept as an npz in the record cache under `key`."""
  import tempfile  # pylint: disable=g-import-not-at-top
  folder = os.environ.get(CACHE_ENV) or os.path.join(tempfile.gettempdir(),
                                                     "mnist_estimator_cache")
  path = os.path.join(folder, f"images-{key}.npz")
  if os.path.isfile(path):
    try:
      with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}
    except (OSError, ValueError):
      pass  # damaged: built again
  arrays = build()
  os.makedirs(folder, exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
  return arrays


def stratified_split(labels, share, seed):
  """(train indices, test indices): `share` of each class held out, at least one if any."""
  rng = np.random.RandomState(seed)
  train, test = [], []
  for cls in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == cls))
    n_test = int(round(len(members) * share))
    if share > 0 and len(members) > 1:
      n_test = min(max(n_test, 1), len(members) - 1)
    test += list(members[:n_test])
    train += list(members[n_test:])
  return np.sort(np.array(train, np.int64)), np.sort(np.array(test, np.int64))


def check_labels(name, y_train, y_test, class_names):
  """Refuses one class only, labels out of range, a test class with no training images."""
  n = len(class_names)
  for split, y in (("training", y_train), ("test", y_test)):
    bad = np.flatnonzero((y < 0) | (y >= n))
    if bad.size:
      raise UsageError(f"{name}: {split} label {y[bad[0]]} at index {bad[0]} is outside "
                       f"0..{n - 1}; labels are class ids 0..n_classes-1")
  present = set(np.unique(y_train).tolist())
  if len(present) < 2:
    raise UsageError(f"{name} has one class only ({class_names[int(y_train[0])]}) in its "
                     "training images; a classifier needs two or more classes")
  missing = sorted(set(np.unique(y_test).tolist()) - present)
  if missing:
    names = ", ".join(str(class_names[i]) for i in missing)
    raise UsageError(f"{name}: the test class(es) {names} have no training images; add "
                     "some, or remove them from the test set")


def make_dataset(name, images, labels, test_images, test_labels, class_names, source):
  """The Dataset of your own images, after the label checks."""
  labels, test_labels = np.asarray(labels, np.int32), np.asarray(test_labels, np.int32)
  check_labels(name, labels, test_labels, class_names)
  if not len(test_labels):
    raise UsageError(f"{name} has no test images; add DIR/test, or raise --validation_split")
  return Dataset(name, tuple(int(d) for d in images.shape[1:]), len(class_names),
                 np.ascontiguousarray(images), labels, np.ascontiguousarray(test_images),
                 test_labels, source, class_names=tuple(map(str, class_names)))
