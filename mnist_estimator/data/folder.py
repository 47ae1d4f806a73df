"""`--dataset=folder:DIR`: class subfolders of images (Keras' and torchvision's convention)."""

import os

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import images as images_lib
from mnist_estimator.data.dataset import DatasetInfo


def _listdir(path):
  try:
    return sorted(os.listdir(path))
  except OSError as e:
    raise UsageError(f"cannot read the folder {path} ({e.strerror}); pass "
                     "--dataset=folder:DIR with class subfolders of images") from None


def class_files(root, classes=None):
  """{class name: [image paths]} of root's subfolders (in `classes`' order if given).

  Raises:
    UsageError: no subfolder, an empty class, or a class `classes` lacks.
  """
  if not os.path.isdir(root):
    raise UsageError(f"--dataset=folder:{root}: {root} is not a folder; pass a folder of "
                     "class subfolders (DIR/cat/*.png, DIR/dog/*.png)")
  found = {}
  for name in _listdir(root):
    folder = os.path.join(root, name)
    if os.path.isdir(folder) and not name.startswith("."):
      found[name] = [os.path.join(folder, f) for f in _listdir(folder)
                     if f.lower().endswith(images_lib.EXTENSIONS)]
  if not found:
    raise UsageError(f"{root} holds no class subfolders; put each class's images in a "
                     "folder of its own (DIR/cat/*.png, DIR/dog/*.png)")
  empty = [name for name, files in found.items() if not files]
  if empty:
    raise UsageError(f"the class folder {os.path.join(root, empty[0])} holds no PNG, JPEG, BMP "
                     "or GIF images; add some or remove the folder")
  if classes is not None:
    unknown = sorted(set(found) - set(classes))
    if unknown:
      raise UsageError(f"{root} has the class {unknown[0]}, which the training folder lacks; "
                       "a test class needs training images")
  return found


def _arrays(root, options):
  """The decoded images and labels of the folder, with train/test split (see load)."""
  train_root, test_root = os.path.join(root, "train"), os.path.join(root, "test")
  split_folders = os.path.isdir(train_root) and os.path.isdir(test_root)
  train = class_files(train_root if split_folders else root)
  names = list(train)
  test = class_files(test_root, names) if split_folders else {}
  paths = [p for name in names for p in train[name]]
  labels = [i for i, name in enumerate(names) for _ in train[name]]
  test_paths = [p for name in names for p in test.get(name, [])]
  test_labels = [i for i, name in enumerate(names) for _ in test.get(name, [])]
  shape = images_lib.choose_shape(paths + test_paths, options, root)
  key = images_lib.cache_key("folder", root, shape, options.skip_bad_images,
                             files=paths + test_paths)

  def build():
    x, kept, bad = images_lib.decode_all(paths + test_paths, shape, options.skip_bad_images,
                                         resize=options.image_size is not None)
    y = np.array(labels + test_labels, np.int32)[kept]
    is_test = np.array([0] * len(paths) + [1] * len(test_paths), np.int8)[kept]
    return {"x": x, "y": y, "is_test": is_test, "bad": np.array(len(bad))}

  arrays = images_lib.cached(key, build)
  return names, arrays, split_folders


def load(root, seed=0, options=None):
  """A Dataset of DIR/<class>/*.png (DIR/train and DIR/test when both are there).

  Without DIR/test, --validation_split of each class (seeded) is the test set. Images are
  decoded once into the record cache, keyed by the files' names, sizes and mtimes.

  Raises:
    UsageError: a missing or empty folder or class, one class only, a test class with no
      training images, an unreadable image (unless --skip_bad_images), mixed sizes.
  """
  options = options or images_lib.ImageOptions(seed=seed)
  root = os.path.abspath(os.path.expanduser(root))
  names, arrays, split_folders = _arrays(root, options)
  x, y, is_test = arrays["x"], arrays["y"], arrays["is_test"].astype(bool)
  if split_folders:
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
  else:
    train, test = images_lib.stratified_split(y, options.validation_split, options.seed)
  h, w, c = x.shape[1:]
  how = "train/ and test/" if split_folders else f"{options.validation_split:.0%} held out"
  skipped = int(arrays["bad"])
  source = (f"{root} ({len(names)} classes, {how}, {h}x{w}x{c}"
            + (f", {skipped} bad files skipped" if skipped else "") + ")")
  return images_lib.make_dataset(f"folder:{root}", x[train], y[train], x[test], y[test],
                                 names, source)


FOLDER = DatasetInfo("folder", load, takes_path=True, panel=None,
                     about="your images: DIR/<class>/*.png (DIR/train, DIR/test if there)")
