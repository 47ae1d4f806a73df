"""The Dataset a run trains on, and the DatasetInfo a data set registers itself with."""

import dataclasses
from typing import Any, Callable, Optional, Protocol, Sequence, Tuple, Union, overload

import numpy as np


class ImageFiles(Protocol):
  """What a split streamed from its files offers (data.stream.FileImages): numpy-like, it
  decodes only the image indexed. A protocol, so this module needs no import of stream.py
  (which imports this one)."""

  @property
  def dtype(self) -> np.dtype: ...

  @property
  def ndim(self) -> int: ...

  @property
  def shape(self) -> Tuple[int, int, int, int]: ...

  def __len__(self) -> int: ...

  @overload
  def __getitem__(self, index: Union[int, np.integer]) -> np.ndarray: ...

  @overload
  def __getitem__(self, index: Union[slice, Sequence[int], np.ndarray]) -> "ImageFiles": ...


# A split's images: a numpy array, or image files decoded as they are indexed.
Images = Union[np.ndarray, ImageFiles]


# eq=False: the generated __eq__/__hash__ would compare and hash numpy arrays, which fails.
@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """One data set as raw uint8 pixels [N, H, W, C] (0 = background) and int32 labels [N]."""
  name: str
  image_shape: Tuple[int, ...]
  n_classes: int
  x_train: Images
  y_train: np.ndarray
  x_test: Images
  y_test: np.ndarray
  source: str
  # Sequence data sets (weather): float32 x, names of the classes, and the (mean, std) of the
  # raw features that x was standardised with, so a SavedModel can take raw values.
  class_names: Optional[Tuple[str, ...]] = None
  standardize: Optional[Tuple[np.ndarray, np.ndarray]] = None
  # Data sets of encoded images (folder, tfrecord): how their files became x (a
  # data.decode.Decoding), which the model_dir record and the SavedModel's image_bytes
  # signature repeat. None for pixel arrays (MNIST's IDX, an npz).
  decoding: Optional[Any] = None
  # The validation set (train_and_evaluate's evaluations, early stopping, export/best): the
  # data's own or a cut of the training images (data/validation.py); None: there is none,
  # and those evaluations use the test set.
  x_val: Optional[Images] = None
  y_val: Optional[np.ndarray] = None
  # Where the validation set came from, for the header ("the last 5,000 training images").
  validation_source: str = ""
  # The test images' files (folder:), in x_test's order, so reports can name them.
  test_files: Optional[Tuple[str, ...]] = None

  @property
  def has_validation(self) -> bool:
    return self.y_val is not None and len(self.y_val) > 0


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the package knows about a data set besides its arrays.

  Attributes:
    name: the value of --dataset.
    load: `(data_dir, seed) -> Dataset`; a series takes `(data_dir, seed, window)`.
    kind: "images" (uint8 pixels) or "series" (float windows of a time series: they take
      --window, the SavedModel takes raw `sequences`, the report draws them as lines).
    dir_flag: the flag of benchmarks/reproduce that points at its files (e.g. mnist_dir).
    panel: the accuracy-curves panel its reproduction rows are drawn in (None: none).
    about: one line for --helpshort and the README.
    validation: a built-in data set's validation cut, the last N training images (a tenth
      where it has fewer than 10 x N); None: no validation set unless --validation_split.
    takes_path: named NAME:PATH (folder:DIR, npz:FILE, tfrecord:GLOB); its loader is
      `(path, seed, ImageOptions) -> Dataset`.
    usage: how a NAME:PATH one is written, e.g. "folder:DIR" (help and errors say it).
  """
  name: str
  load: Callable[..., Dataset]
  kind: str = "images"
  dir_flag: Optional[str] = None
  panel: Optional[str] = "MNIST / Fashion-MNIST test accuracy"
  about: str = ""
  takes_path: bool = False
  # The built-in validation cut: the last N training images (None: no cut by default).
  validation: Optional[int] = None
  usage: str = ""

  @property
  def series(self) -> bool:
    return self.kind == "series"
