"""A .tflite or .onnx file served like a SavedModel version: TF Serving's API, its real tensors."""

import os
import re

import numpy as np
from google.protobuf import json_format

from mnist_estimator.common import saved_model

PREDICT_METHOD = "tensorflow/serving/predict"
MODEL_FILE_SUFFIXES = (".tflite", ".onnx")


def is_model_file(path):
  """A .tflite or .onnx file (served by FileManager), not a SavedModel base path."""
  return bool(path) and path.endswith(MODEL_FILE_SUFFIXES) and not os.path.isdir(path)


def file_version(path):
  """The version of a model file: the number its name starts with (<timestamp>.onnx), else 1."""
  found = re.match(r"\d+", os.path.basename(path))
  return int(found.group()) if found else 1


class _Spec:
  """A signature input or output as serve's REST code reads one (common.saved_model.TensorSpec)."""

  def __init__(self, key, np_dtype, shape):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.key, self.np_dtype, self.shape = key, np_dtype, list(shape)
    self.dtype = tf.dtypes.as_dtype(np_dtype)
    self.tensor = None


class _Signature:
  """serving_default of a model file: float inputs in, classes and probabilities out.

  The int8 file's uint8 pixels and probabilities are (de)quantized by its runner, so a client
  sends the same request to every format; metadata's model_file says what the file holds.
  """

  def __init__(self, runner):
    self.name = saved_model.SERVING_DEFAULT
    self.method_name = PREDICT_METHOD
    self._runner = runner
    shape = runner.input_shape
    self.inputs = {runner.input_key: _Spec(runner.input_key, np.float32, shape)}
    self.outputs = {"classes": _Spec("classes", np.int32, [None]),
                    "probabilities": _Spec("probabilities", np.float32,
                                           [None, runner.n_classes])}

  def run(self, feeds):
    out = self._runner.run(feeds[self._runner.input_key])
    return {"classes": out["classes"].astype(np.int32, copy=False),
            "probabilities": out["probabilities"]}

  def warm_up(self):
    shape = self.inputs[self._runner.input_key].shape
    self.run({self._runner.input_key: np.zeros([1, *shape[1:]], np.float32)})

  def definition(self):
    """Its SignatureDef proto, as TF Serving's metadata prints one."""
    from tensorflow.core.protobuf import meta_graph_pb2  # pylint: disable=g-import-not-at-top
    proto = meta_graph_pb2.SignatureDef(method_name=self.method_name)
    for specs, field in ((self.inputs, proto.inputs), (self.outputs, proto.outputs)):
      for key, spec in specs.items():
        info = field[key]
        info.name, info.dtype = key, spec.dtype.as_datatype_enum
        for size in spec.shape:
          info.tensor_shape.dim.add(size=-1 if size is None else size)
    return proto


class PortableServable:
  """A model file as one servable version (serve.servable.Servable's interface).

  Attributes:
    path, version, signatures ({"serving_default": ...}), runner (portable.runtimes).
  """

  def __init__(self, path, version, threads=None):
    from mnist_estimator.portable import runtimes  # pylint: disable=g-import-not-at-top
    self.path = path
    self.version = int(version)
    self.runner = runtimes.load(path, threads)
    self.class_names = self.runner.class_names
    signature = _Signature(self.runner)
    self.signatures = {signature.name: signature}
    self.signature_defs = {signature.name: signature.definition()}

  def signature_def_map(self):
    return {"signature_def": {
        name: json_format.MessageToDict(definition, preserving_proto_field_name=True,
                                        including_default_value_fields=True)
        for name, definition in self.signature_defs.items()}}

  def warm_up(self):
    for signature in self.signatures.values():
      signature.warm_up()

  def extra_metadata(self):
    """What TF Serving's metadata lacks: model_file, the format and the file's own tensors."""
    return {"model_file": self.runner.describe()}

  def close(self):
    self.runner.close()


def onnx_file(servable):
  """The ONNX file of a served version, for the page's in-browser mode, or None.

  A served .onnx itself; for a SavedModel version <base>/<version>, the <version>.onnx that
  --export_format=onnx wrote beside it.
  """
  path = servable.path
  if path.endswith(".onnx"):
    return path
  beside = os.path.normpath(path) + ".onnx"
  return beside if os.path.isfile(beside) else None
