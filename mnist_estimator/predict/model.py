"""A model loaded for prediction (a SavedModel, .tflite or .onnx, through runtime): shape, calls."""

from typing import Any, List, Tuple, cast

import numpy as np

from mnist_estimator import runtime
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import decode as decode_lib


class Model(runtime.Classifier):
  """A loaded model's serving_default, the image shape it takes and what its images meant.

  Attributes (beyond runtime.Classifier's): image_shape (H, W, C); class_names (its own, or
  the class ids); decoding (how its training images were decoded); border_mean (its training
  images' border brightness, None: not known).
  """

  def __init__(self, model: runtime.Model) -> None:
    super().__init__(model)
    # A folder's class names, kept with the export; else the class ids themselves.
    self.class_names: List[str] = self.class_names or [str(i) for i in range(self.n_classes)]
    # Classifier took only [N, H, W(, C)] with every dim after the batch known.
    dims = cast(List[int], self.input_shape[1:])
    self.image_shape = (dims[0], dims[1], dims[2] if len(dims) == 3 else 1)
    # What its training data meant (an export of this version keeps it): the decoding of
    # image files, the training images' border brightness (None: not known).
    metadata = self.metadata or {}
    self.decoding = (decode_lib.Decoding.from_dict(metadata["decoding"])
                     if metadata.get("decoding") else decode_lib.Decoding(*self.image_shape))
    self.border_mean = metadata.get("border_mean")

  @property
  def takes_bytes(self) -> bool:
    """It has the image_bytes signature: encoded images decoded in its own graph."""
    return self.by_bytes is not None

  def __call__(self, batch: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Runs the model on float32 [n, *input_shape[1:]]; returns (classes, probabilities)."""
    out = self.run(batch)
    return out["classes"], out["probabilities"]

  def call_bytes(self, encoded: Any) -> Tuple[np.ndarray, np.ndarray]:
    """Runs the image_bytes signature on encoded images; returns (classes, probabilities)."""
    return self.run_bytes(encoded)


def load_model(path: str) -> Model:
  """Loads a model's serving_default for prediction.

  Args:
    path: a SavedModel dir, or an export base dir (its newest timestamped export); or a
      .tflite or .onnx file.

  Returns:
    A `Model` for `predict(model, images)`; `model.image_shape` is its (H, W, C).

  Raises:
    UsageError: no model there, it does not load, or it lacks the expected signature.
  """
  loaded = runtime.load(path)
  try:
    return Model(loaded)
  except UsageError:
    loaded.close()
    raise


def predict_encoded(model: Model, encoded: Any,
                    batch_size: int = 1000) -> Tuple[np.ndarray, np.ndarray]:
  """Predicts encoded images (bytes) through the model's image_bytes signature, in batches.

  Returns:
    (classes int [N], probabilities float32 [N, n_classes]).
  """
  parts = [model.call_bytes(encoded[i:i + batch_size])
           for i in range(0, len(encoded), batch_size)]
  return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def predict(model: Model, images: Any, batch_size: int = 1000) -> Tuple[np.ndarray, np.ndarray]:
  """Predicts images with a loaded model, batch_size images per call.

  Args:
    model: from `load_model`.
    images: float32 0..1 (or uint8 0..255) [N, H, W, C], or [N, H, W] for one channel.
    batch_size: images per signature call, which bounds memory.

  Returns:
    (classes int [N], probabilities float32 [N, n_classes]).

  Raises:
    UsageError: the images are not of the model's shape.
  """
  images = np.asarray(images)
  if images.dtype == np.uint8:
    images = images.astype(np.float32) / 255.0  # as the training input pipeline scales
  if images.ndim == 3 and model.image_shape[2] == 1:
    images = images[..., np.newaxis]
  if images.ndim != 4 or tuple(images.shape[1:]) != model.image_shape:
    raise UsageError(f"images of shape {list(images.shape)} do not fit the model, which takes "
                     f"[N, {', '.join(map(str, model.image_shape))}]; use image_files.load_images")
  batch = images.reshape(-1, *model.input_shape[1:]).astype(np.float32, copy=False)
  if not len(batch):
    return np.zeros([0], np.int32), np.zeros([0, model.n_classes], np.float32)
  parts = [model(batch[i:i + batch_size]) for i in range(0, len(batch), batch_size)]
  return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
