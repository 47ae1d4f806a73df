"""`--dataset=folder:DIR`: class subfolders of images (Keras' and torchvision's convention)."""

import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mnist_estimator.data import decode
from mnist_estimator.data import headers as headers_lib
from mnist_estimator.data import images as images_lib
from mnist_estimator.data import layout as layout_lib
from mnist_estimator.data import stream
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.data.dataset import DatasetInfo


TRAIN, TEST, VAL = 0, 1, 2  # a file's split, as the cache keeps it
# [(path, reason)] of the files that are not read.
Bad = List[Tuple[str, str]]
# What _probe found: (the headers, the Decoding they choose, the bad files).
Probed = Tuple[headers_lib.Headers, decode.Decoding, Bad]


def _listing(tree: layout_lib.Layout) -> Tuple[List[str], np.ndarray, np.ndarray]:
  """(paths, labels, splits) of the layout's images: TRAIN, TEST or VAL each, train first."""
  names = list(tree.train.classes)
  paths: List[str] = []
  labels: List[int] = []
  splits: List[int] = []
  for flag, split in ((TRAIN, tree.train), (TEST, tree.test), (VAL, tree.val)):
    for k, name in enumerate(names):
      files = split.classes.get(name, []) if split else []
      paths += files
      labels += [k] * len(files)
      splits += [flag] * len(files)
  return paths, np.array(labels, np.int32), np.array(splits, np.int8)


def decode_files(paths: Sequence[str], formats: Sequence[Optional[str]],
                 decoding: decode.Decoding,
                 skip_bad: bool) -> Tuple[np.ndarray, List[int], Bad]:
  """(uint8 [n, H, W, C], kept indices, [(path, reason)]) of the files, decoded by decode.py.

  The output is allocated once at its final size and filled a chunk at a time, so memory
  follows the decoded (resized) images, not the files' own sizes.

  Raises:
    UsageError: the first file that does not decode, unless skip_bad.
  """
  out = np.empty((len(paths), decoding.height, decoding.width, decoding.channels), np.uint8)
  done = 0
  bad: Bad = []
  kept: List[int] = []
  show, step = images_lib.progress(len(paths)), images_lib.chunk_size(decoding)
  for start in range(0, len(paths), step):
    part = paths[start:start + step]
    images, part_bad = decode.decode_files_keeping(part, decoding, len(part))
    failed = {path for path, _ in part_bad}
    bad += [(path, f"its {formats[start + i]} data is damaged, truncated or of a kind "
                   "tf.io.decode_image does not read")
            for i, path in enumerate(part) if path in failed]
    images_lib.check_bad(bad[:1], skip_bad)
    kept += [start + i for i, path in enumerate(part) if path not in failed]
    out[done:done + len(images)] = images
    done += len(images)
    show(start + len(part))
  return out[:done], kept, bad


def _probe(paths: List[str], bad: Bad, options: images_lib.ImageOptions, where: str) -> Probed:
  """(headers, decoding, bad files) from every file's header, before any pixel is decoded."""
  headers = headers_lib.probe(paths, headers_lib.converted_files(paths))
  bad = bad + [(paths[i], why) for i, why in headers.bad]
  images_lib.check_bad(bad, options.skip_bad_images)
  return headers, headers_lib.choose(headers, options, where), bad


def _streamed(paths: Sequence[str], labels: np.ndarray, splits: np.ndarray, probed: Probed,
              options: images_lib.ImageOptions) -> Dict[str, Any]:
  """The arrays of a folder read from its files as training goes (data/stream.py)."""
  headers, decoding, bad = probed
  good = headers.good()
  converted = headers.converted(good, options.channels)
  return {"x": stream.FileImages([paths[i] for i in good], decoding), "y": labels[good],
          "split": splits[good], "index": good, "bad": np.array(len(bad)),
          "resized": np.array(decoding.resized), "converted": np.array(converted)}


def _build(paths: List[str], labels: np.ndarray, splits: np.ndarray, bad: Bad,
           options: images_lib.ImageOptions, where: str,
           probed: Optional[Probed] = None) -> Dict[str, np.ndarray]:
  """The decoded arrays of the folder's files (what the cache keeps).

  Every file's header is read first (sizes, colour, which do not read), so the shape, the
  memory check and the bad files are settled before any pixel is decoded.
  """
  headers, decoding, bad = probed or _probe(paths, bad, options, where)
  good = headers.good()
  headers_lib.check_memory(len(good), decoding, where)
  x, kept, decode_bad = decode_files([paths[i] for i in good],
                                     [headers.formats[i] for i in good], decoding,
                                     options.skip_bad_images)
  chosen = good[kept]
  converted = headers.converted(good, options.channels)
  return {"x": x, "y": labels[chosen], "split": splits[chosen], "index": chosen,
          "bad": np.array(len(bad) + len(decode_bad)), "resized": np.array(decoding.resized),
          "converted": np.array(converted)}


def _source(tree: layout_lib.Layout, options: images_lib.ImageOptions,
            arrays: Dict[str, Any]) -> str:
  """The source line: the folder, which folder became which split, what was changed."""
  c = arrays["x"].shape[3]
  parts = [tree.describe(images_lib.held_out(options))]
  if tree.ignored:
    listed = ", ".join(f"{ext}: {n:,}" for ext, n in tree.ignored.most_common(3))
    parts.append(f"{sum(tree.ignored.values()):,} files that are not images ignored ({listed}"
                 + (", ..." if len(tree.ignored) > 3 else "") + ")")
  if int(arrays["bad"]):
    parts.append(f"{int(arrays['bad']):,} bad files skipped")
  if bool(arrays["resized"]):
    parts.append(f"resized to {arrays['x'].shape[1]}x{arrays['x'].shape[2]}")
  if bool(arrays["converted"]):
    parts.append("as gray" if c == 1 else "as RGB")
  if isinstance(arrays["x"], stream.FileImages):
    parts.append("streamed from the files")
  return f"{tree.root} ({'; '.join(parts)})"


def _arrays(key: str, paths: List[str], labels: np.ndarray, splits: np.ndarray, bad: Bad,
            options: images_lib.ImageOptions, where: str) -> Dict[str, Any]:
  """The folder's arrays: decoded (from the cache, else now) or streamed (--stream)."""
  build = lambda probed=None: _build(paths, labels, splits, bad, options, where, probed)
  if options.stream == "no" or (options.stream == "auto" and images_lib.is_cached(key)):
    return images_lib.cached(key, build)
  probed = _probe(paths, bad, options, where)
  if options.stream == "yes" or stream.should_stream(len(probed[0].good()), probed[1]):
    return _streamed(paths, labels, splits, probed, options)
  return images_lib.cached(key, lambda: build(probed))


def load(root: str, seed: int = 0,
         options: Optional[images_lib.ImageOptions] = None) -> Dataset:
  """A Dataset of DIR/<class>/**/*.png (DIR/train, with DIR/test and DIR/val if there).

  Without a test folder, --test_split of each class (seeded) is the test set. Images
  are decoded by decode.py's ops (as predict and the SavedModel decode them) once, into the
  record cache, keyed by the files' names, sizes and mtimes.

  Raises:
    UsageError: a missing or empty folder or class, one class only, a test class with no
      training images, a bad image (unless --skip_bad_images), mixed sizes without
      --image_size, a set too large for memory, --test_split beside a test folder.
  """
  options = options or images_lib.ImageOptions(seed=seed)
  root = os.path.abspath(os.path.expanduser(root))
  where = f"folder:{root}"
  tree = layout_lib.read(root)
  if tree.test:
    images_lib.refuse_test_split(options, where, tree.test.folder)
  paths, labels, splits = _listing(tree)
  bad: Bad = sum((split.bad for split in (tree.train, tree.test, tree.val) if split), [])
  key = images_lib.cache_key("folder", root, options.image_size, options.channels,
                             options.skip_bad_images, files=paths + [p for p, _ in bad])
  arrays = _arrays(key, paths, labels, splits, bad, options, root)
  x, y, split = arrays["x"], arrays["y"], arrays["split"]
  files = np.array(paths, object)[arrays["index"]]
  train, val = np.flatnonzero(split == TRAIN), np.flatnonzero(split == VAL)
  if tree.test:
    test = np.flatnonzero(split == TEST)
  else:
    keep, test = images_lib.stratified_split(y[train], images_lib.held_out(options),
                                             options.seed)
    train, test = train[keep], train[test]
  height, width, channels = x.shape[1:]
  decoding = decode.Decoding(height, width, channels, resized=bool(arrays["resized"]))
  data = images_lib.make_dataset(where, x[train], y[train], x[test], y[test],
                                 list(tree.train.classes), _source(tree, options, arrays),
                                 decoding)
  return dataclasses.replace(
      data, test_files=tuple(files[test]),
      **({"x_val": x[val], "y_val": y[val], "validation_source": os.path.relpath(
          tree.val.folder, root) + "/"} if tree.val else {}))


FOLDER = DatasetInfo("folder", load, takes_path=True, panel=None, usage="folder:DIR",
                     about="your images: DIR/<class>/*.png (DIR/train, DIR/test or val if there)")
