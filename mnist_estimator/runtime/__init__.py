"""One runtime for a loaded model: a SavedModel, a .tflite or an .onnx behind one interface.

predict, serve, the exports' check and the page load models only through `load`:

  model = runtime.load(path)              # runtime.Model: signatures, class_names, metadata
  out = model.signatures["serving_default"].run({"images": batch})
  classes = runtime.Classifier(model).run(batch)["classes"]
"""

import os
from typing import Any, Optional

from mnist_estimator.common.errors import UsageError
from mnist_estimator.runtime import formats
from mnist_estimator.runtime.classifier import Classifier
from mnist_estimator.runtime.interface import FileTensor, Model, Signature, TensorSpec
from mnist_estimator.runtime.interface import file_size

__all__ = ["Classifier", "FileTensor", "Model", "Signature", "TensorSpec", "file_size", "load",
           "load_classifier", "open_version"]


def open_version(path: str, threads: Optional[int] = None,
                 session_config: Optional[Any] = None) -> Model:
  """Loads exactly `path`: a SavedModel version folder, a .tflite or an .onnx file.

  Errors are the runtime's own (the server keeps them in a version's status).

  Args:
    path: the model.
    threads: threads of one call (TFLite, onnxruntime, and TF's intra- and inter-op pools);
      None lets each runtime decide.
    session_config: a SavedModel's tf.compat.v1.ConfigProto (instead of `threads`).
  """
  kind = formats.format_of_file(path).runtime
  if kind == "tflite":
    from mnist_estimator.runtime import files  # pylint: disable=g-import-not-at-top
    return files.TFLiteModel(path, threads)
  if kind == "onnx":
    from mnist_estimator.runtime import files  # pylint: disable=g-import-not-at-top
    return files.OnnxModel(path, threads)
  from mnist_estimator.runtime import saved_model  # pylint: disable=g-import-not-at-top
  return saved_model.SavedModel(path, _session_config(threads, session_config))


def _session_config(threads: Optional[int], session_config: Optional[Any]) -> Optional[Any]:
  if not threads or session_config is not None:
    return session_config
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                  inter_op_parallelism_threads=threads)


def load(path: str, threads: Optional[int] = None, session_config: Optional[Any] = None) -> Model:
  """A SavedModel folder (or an export base: its newest version), a .tflite or an .onnx file.

  Args:
    path: the model.
    threads: threads of one call; None lets each runtime decide.
    session_config: a SavedModel's tf.compat.v1.ConfigProto (instead of `threads`).

  Raises:
    UsageError: the path is missing, of no known kind, or does not load (with the fix).
  """
  if not os.path.exists(path):
    raise UsageError(f"{path} does not exist; pass a .tflite or .onnx file or a SavedModel "
                     "folder")
  if os.path.isdir(path):
    from mnist_estimator.runtime import saved_model  # pylint: disable=g-import-not-at-top
    return saved_model.load(path, _session_config(threads, session_config))
  return open_version(path, threads, session_config)


def load_classifier(path: str, threads: Optional[int] = None,
                    session_config: Optional[Any] = None) -> Classifier:
  """`load(path)` seen as an image classifier (its serving_default).

  Raises:
    UsageError: as `load`, or it has no serving_default taking images and returning classes
      and probabilities.
  """
  model = load(path, threads, session_config)
  try:
    return Classifier(model)
  except UsageError:
    model.close()
    raise
