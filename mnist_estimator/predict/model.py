"""A model of this package loaded for prediction (a SavedModel, .tflite or .onnx): shape, calls."""

import os

import numpy as np

from mnist_estimator.common import saved_model
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import decode as decode_lib


class Model:
  """A loaded model's serving_default (or a model file's runner) and the image shape it takes."""

  def __init__(self, path, run, input_key, input_shape, n_classes, class_names, holder,
               metadata=None, run_bytes=None):
    self.path = path
    self._holder = holder  # the session and its graph, or the model file's runtime
    self._run = run  # {input_key: float32 batch} -> {"classes", "probabilities", ...}
    self._run_bytes = run_bytes  # {IMAGE_BYTES_KEY: strings} -> the same, or None
    self.input_key = input_key  # "images", or SEQUENCES_KEY for a sequence model
    self.input_shape = tuple(input_shape)  # e.g. (None, 28, 28)
    self.n_classes = n_classes
    # A folder's class names, kept with the export; else the class ids themselves.
    self.class_names = class_names or [str(i) for i in range(self.n_classes)]
    h, w = self.input_shape[1:3]
    self.image_shape = (h, w, self.input_shape[3] if len(self.input_shape) == 4 else 1)
    # What its training data meant (an export of this version keeps it): the decoding of
    # image files, the training images' border brightness (None: not known).
    metadata = metadata or {}
    self.decoding = (decode_lib.Decoding.from_dict(metadata["decoding"])
                     if metadata.get("decoding") else decode_lib.Decoding(*self.image_shape))
    self.border_mean = metadata.get("border_mean")

  @property
  def takes_bytes(self):
    """It has the image_bytes signature: encoded images decoded in its own graph."""
    return self._run_bytes is not None

  def __call__(self, batch):
    """Runs the model on float32 [n, *input_shape[1:]]; returns (classes, probabilities)."""
    out = self._run({self.input_key: np.asarray(batch, np.float32)})
    return out["classes"], out["probabilities"]

  def call_bytes(self, encoded):
    """Runs the image_bytes signature on encoded images; returns (classes, probabilities)."""
    out = self._run_bytes({saved_model.IMAGE_BYTES_KEY: np.asarray(encoded, object)})
    return out["classes"], out["probabilities"]


def load_model_file(path):
  """A .tflite or .onnx file (--export_format) as a Model, run without TF's SavedModel loader.

  Raises:
    UsageError: it is missing, of another kind, or does not load.
  """
  from mnist_estimator.portable import runtimes  # pylint: disable=g-import-not-at-top
  runner = runtimes.load(path)
  shape = runner.input_shape
  if len(shape) not in (3, 4) or None in shape[1:]:
    raise UsageError(f"{path} does not take fixed-size images [N, H, W(, C)] (input "
                     f"{runner.input_key} {shape}); export it with mnist_estimator")
  return Model(path, lambda feeds: runner.run(feeds[runner.input_key]), runner.input_key,
               shape, runner.n_classes, runner.class_names, runner, runner.metadata)


def load_model(saved_model_dir):
  """Loads the serving_default signature of a SavedModel into its own session.

  Args:
    saved_model_dir: a SavedModel dir, or an export base dir (its newest timestamped export);
      or a .tflite or .onnx file (load_model_file).

  Returns:
    A `Model` for `predict(model, images)`; `model.image_shape` is its (H, W, C).

  Raises:
    UsageError: no SavedModel there, it does not load, or it lacks the expected signature.
  """
  if os.path.isfile(saved_model_dir):
    return load_model_file(saved_model_dir)
  loaded = saved_model.load(saved_model_dir)
  path = loaded.path
  signature = loaded.signatures.get(saved_model.SERVING_DEFAULT)
  if signature is None or not {"classes", "probabilities"} <= set(signature.outputs):
    raise UsageError(f"{path} has no serving_default signature returning classes and "
                     "probabilities; export it with mnist_estimator (--export_dir)")
  inputs = signature.inputs
  key = saved_model.image_input_key(inputs)
  shape = inputs[key].shape if key else None
  if not shape or len(shape) not in (3, 4) or None in shape[1:]:
    raise UsageError(f"{path}'s serving_default does not take fixed-size images [N, H, W(, C)] "
                     f"(inputs: {list(inputs)}); export it with mnist_estimator (--export_dir)")
  by_bytes = loaded.signatures.get(f"{saved_model.IMAGE_BYTES_KEY}:{saved_model.SERVING_DEFAULT}")
  return Model(path, signature.run, key, shape, signature.outputs["probabilities"].shape[-1],
               loaded.class_names, loaded, loaded.metadata, by_bytes and by_bytes.run)


def predict_encoded(model, encoded, batch_size=1000):
  """Predicts encoded images (bytes) through the model's image_bytes signature, in batches.

  Returns:
    (classes int [N], probabilities float32 [N, n_classes]).
  """
  parts = [model.call_bytes(encoded[i:i + batch_size])
           for i in range(0, len(encoded), batch_size)]
  return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def predict(model, images, batch_size=1000):
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
