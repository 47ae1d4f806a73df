"""The registry of data sets: --dataset names, what each is, and `load`."""

import os
from typing import List, Optional, Tuple

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import arrays
from mnist_estimator.data import folder
from mnist_estimator.data import fonts
from mnist_estimator.data import images
from mnist_estimator.data import mnist
from mnist_estimator.data import tfrecord
from mnist_estimator.data import validation
from mnist_estimator.data import weather
from mnist_estimator.data.dataset import Dataset  # noqa: F401  # the type every loader returns
from mnist_estimator.data.dataset import DatasetInfo  # noqa: F401


# The built-in data sets: one line each (a module's DatasetInfo).
DATASETS = {info.name: info for info in (
    mnist.MNIST,
    mnist.SAMPLE,
    mnist.FASHION_MNIST,
    fonts.FONTS,
    weather.WEATHER,
    folder.FOLDER,
    arrays.NPZ,
    tfrecord.TFRECORD,
)}
ImageOptions = images.ImageOptions
parse_size = images.parse_size


def dataset_names() -> List[str]:
  """The built-in data sets' names, sorted (the NAME:PATH ones are in path_kinds())."""
  return sorted(name for name, entry in DATASETS.items() if not entry.takes_path)


def path_kinds() -> List[str]:
  """The NAME of the NAME:PATH data sets of your own (folder, npz, tfrecord)."""
  return [name for name, entry in DATASETS.items() if entry.takes_path]


def own_forms() -> str:
  """How the NAME:PATH kinds are written: "folder:DIR, npz:FILE or tfrecord:..." (for errors)."""
  forms = [DATASETS[kind].usage for kind in path_kinds()]
  return ", ".join(forms[:-1]) + f" or {forms[-1]}" if len(forms) > 1 else "".join(forms)


def own_kinds() -> str:
  """The NAME:PATH kinds as a reader sees them in a sentence: "folder:, npz:, tfrecord:"."""
  return ", ".join(f"{kind}:" for kind in path_kinds())


def help_text() -> str:
  """--dataset's help, from the registry: each data set's name or form and its one line."""
  builtin = "; ".join(f"{name} - {DATASETS[name].about}" for name in dataset_names())
  own = "; ".join(f"{DATASETS[kind].usage} - {DATASETS[kind].about}" for kind in path_kinds())
  return f"Data set: {builtin}. Or your own: {own}."


def known(name: str) -> bool:
  """A built-in name, or NAME:PATH of a kind that takes a path."""
  kind, sep, path = str(name).partition(":")
  return (name in DATASETS and not DATASETS[name].takes_path) or (
      bool(sep) and bool(path) and kind in path_kinds())


def load(name: str, data_dir: Optional[str] = None, seed: int = 0, window: Optional[int] = None,
         options: Optional[images.ImageOptions] = None, validation_split: Optional[float] = None,
         validation_seed: Optional[int] = None) -> Dataset:
  """Loads a data set by registry name.

  Args:
    name: one of `dataset_names()`.
    data_dir: directory with the data files; None (or "") means the tf.keras cache for
      mnist/fashion_mnist, and is an error for fonts. Ignored by mnist_sample.
    seed: seed of the fonts train/validation split (0 reproduces the book).
    window: weeks per example of a sequence data set (None: its default).
    options: ImageOptions for a data set of your own (folder:, npz:, tfrecord:).
    validation_split: the share of each training class held out for validation (None: the
      data's own validation split, else its built-in cut or 0.1; 0: none); see
      data/validation.py.
    validation_seed: the seed of that share's draw (None: `seed`, or the options' seed).

  Returns:
    A `Dataset` with uint8 images [N, H, W, 1] (weather: float32 [N, window, 5, 1]) and int32
    labels.

  Raises:
    UsageError: unknown name, missing, incomplete or corrupt data files, or a window for an
      image data set.
  """
  entry = info(name)
  data = _load(entry, name, data_dir, seed, window, options)
  if validation_seed is None:
    validation_seed = options.seed if options is not None else seed
  return validation.apply(data, entry, validation_split, validation_seed)


def _load(entry: DatasetInfo, name: str, data_dir: Optional[str], seed: int,
          window: Optional[int], options: Optional[images.ImageOptions]) -> Dataset:
  """The data set as its loader gives it (train and test; its own validation split if any)."""
  data_dir = os.path.expanduser(data_dir) if data_dir else None
  if entry.takes_path:
    if data_dir:
      raise UsageError(f"--data_dir applies to the built-in data sets; --dataset={name} "
                       "names its own files: drop --data_dir")
    return entry.load(name.partition(":")[2], seed, options or ImageOptions(seed=seed))
  _refuse_image_options(name, options)
  if entry.series:
    return entry.load(data_dir, seed, window)
  if window is not None:
    series = ", ".join(n for n, i in DATASETS.items() if i.series)
    raise UsageError(f"--window applies to series data sets ({series}), not {name}; "
                     "drop --window")
  return entry.load(data_dir, seed)


def info(name: str) -> DatasetInfo:
  """The DatasetInfo of a registered data set, or of the kind of a NAME:PATH one.

  Raises:
    UsageError: for an unknown name (listing the known ones and the NAME:PATH forms).
  """
  if not known(name):
    raise UsageError(f"Unknown dataset {name!r}; use --dataset with one of: "
                     f"{', '.join(dataset_names())}, or your own as {own_forms()}")
  return DATASETS[str(name).partition(":")[0] if ":" in str(name) else name]


def _refuse_image_options(name: str, options: Optional[images.ImageOptions]) -> None:
  """--image_size, --channels, --skip_bad_images and --test_split: your own data only."""
  if options is None:
    return
  given = [flag for flag, value in (("--image_size", options.image_size),
                                    ("--channels", options.channels),
                                    ("--skip_bad_images", options.skip_bad_images)) if value]
  if given:
    raise UsageError(f"{', '.join(given)} apply to your own images ({own_kinds()}), "
                     f"not {name}; drop them")
  if options.stream == "yes":
    raise UsageError(f"--stream=yes reads a folder's files as training goes; {name} is read "
                     "into memory: drop --stream")
  if options.test_split is not None:
    raise UsageError(f"--test_split applies to your own images without a test split "
                     f"(folder:, tfrecord:); {name} has its own test set: drop "
                     "--test_split")


def majority_accuracy(data: Dataset) -> Tuple[int, float]:
  """The majority-class baseline: the commonest training label, scored on the test set."""
  majority = int(np.argmax(np.bincount(data.y_train, minlength=data.n_classes)))
  return majority, float(np.mean(data.y_test == majority))
