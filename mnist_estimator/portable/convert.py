"""Converters from a SavedModel version's serving_default: TFLite (float, int8) and ONNX."""

import contextlib
import json
import logging
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Any, Dict, Iterator, Mapping, Optional, Sequence

import numpy as np

from mnist_estimator.common import saved_model as saved_model_lib
from mnist_estimator.common.errors import UsageError
from mnist_estimator.portable import FORMATS
from mnist_estimator.runtime import formats

# ONNX opset 13: the first whose Softmax normalises over one axis as TF's does (before 13 it
# flattened to 2-D, so tf2onnx wrapped it in Transposes), and old enough that every runtime
# in use runs it: onnxruntime >= 1.6 and onnxruntime-web, OpenVINO, TensorRT 8, tract (Rust).
ONNX_OPSET = 13
# What a file keeps beside the model (runtime.formats declares the keys the runtime reads).
CLASS_NAMES_KEY = formats.CLASS_NAMES_KEY
METADATA_KEY = formats.METADATA_KEY
require = formats.require

if TYPE_CHECKING:  # for the hints only
  import tensorflow as tf


@contextlib.contextmanager
def quiet() -> Iterator[None]:
  """The converters' C++ summaries (stdout and stderr) and TF's warnings go to the run's log.

  MLIR prints its "non-converted ops" summary and tf2onnx its progress straight to the file
  descriptors; none of it is the user's business unless a conversion fails (--verbose).
  """
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  sys.stdout.flush()
  sys.stderr.flush()
  saved = [os.dup(1), os.dup(2)]
  level = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)
  with tempfile.TemporaryFile() as caught:
    os.dup2(caught.fileno(), 1)
    os.dup2(caught.fileno(), 2)
    try:
      yield
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      for fd, copy in zip((1, 2), saved):
        os.dup2(copy, fd)
        os.close(copy)
      absl_logging.set_verbosity(level)
      caught.seek(0)
      text = caught.read().decode("utf-8", "replace").strip()
      if text:
        absl_logging.info("converter output:\n%s", text)


def output_path(saved_model: str, fmt: str) -> str:
  """Where format `fmt` of a SavedModel version goes: beside it, <version><suffix>."""
  return os.path.normpath(saved_model) + FORMATS[fmt].suffix


def _tflite_converter(saved_model: str) -> "tf.lite.TFLiteConverter":
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # The TF2 converter keeps the signature's names (images -> classes, probabilities).
  return tf.lite.TFLiteConverter.from_saved_model(
      saved_model, signature_keys=[saved_model_lib.SERVING_DEFAULT])


def _metadata(class_names: Optional[Sequence[str]],
              data: Optional[Mapping[str, Any]]) -> Dict[str, str]:
  """{key: text} a model file keeps: its class names, and what its input expects (JSON)."""
  found: Dict[str, str] = {}
  if class_names:
    found[CLASS_NAMES_KEY] = "\n".join(class_names)
  if data:
    shape = data.get("image_shape")
    found[METADATA_KEY] = json.dumps(dict(
        data, input=f"float32 [N, {', '.join(map(str, shape or []))}] in 0..1: pixels as "
        "decoding says (data/decode.py), / 255; not inverted"))
  return found


def _write_tflite(content: bytes, path: str, entries: Optional[Mapping[str, str]]) -> None:
  """Writes a converted flatbuffer with `entries` ({name: text}) in its metadata."""
  if entries:
    from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
    from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    for name, text in entries.items():
      buffer = schema.BufferT()
      buffer.data = np.frombuffer(text.encode(), np.uint8)
      model.buffers.append(buffer)
      entry = schema.MetadataT()
      entry.name, entry.buffer = name, len(model.buffers) - 1
      model.metadata = (model.metadata or []) + [entry]
    content = flatbuffer_utils.convert_object_to_bytearray(model)
  with open(path, "wb") as f:
    f.write(content)


def to_tflite(saved_model: str, path: str, metadata: Optional[Mapping[str, str]] = None) -> str:
  """Float32 TFLite of serving_default (images in; classes, probabilities out)."""
  _write_tflite(_tflite_converter(saved_model).convert(), path, metadata)
  return path


def to_tflite_int8(saved_model: str, path: str, representative: Optional[np.ndarray],
                   metadata: Optional[Mapping[str, str]] = None) -> str:
  """Full-integer post-training int8 TFLite, calibrated on `representative`.

  Every op runs in int8. The input is uint8 (0..255: the pixels' own bytes, scale ~1/255),
  probabilities are uint8 (scale 1/256), classes stay int32.

  Args:
    saved_model: the SavedModel version folder.
    path: the .tflite to write.
    representative: float32 inputs of the signature's shape (e.g. [N, 28, 28] in 0..1).
    metadata: {name: text} kept in the file's metadata (see _metadata), or None.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if representative is None or not len(representative):
    raise UsageError("--export_format=tflite_int8 needs representative images; set "
                     "--representative_examples=N (N >= 1)")
  key = _input_key(saved_model)

  def examples() -> Iterator[Dict[str, np.ndarray]]:
    for row in representative:
      yield {key: np.asarray(row[np.newaxis], np.float32)}

  converter = _tflite_converter(saved_model)
  converter.optimizations = [tf.lite.Optimize.DEFAULT]
  converter.representative_dataset = examples
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  converter.inference_input_type = tf.uint8
  converter.inference_output_type = tf.uint8
  _write_tflite(converter.convert(), path, metadata)
  return path


def _input_key(saved_model: str) -> str:
  """The serving_default input's key (images, or sequences for a series model)."""
  from tensorflow.python.tools import saved_model_utils  # pylint: disable=g-import-not-at-top
  meta_graph = saved_model_utils.get_meta_graph_def(saved_model, "serve")
  return next(iter(meta_graph.signature_def[saved_model_lib.SERVING_DEFAULT].inputs))


def to_onnx(saved_model: str, path: str, metadata: Optional[Mapping[str, str]] = None,
            opset: int = ONNX_OPSET) -> str:
  """ONNX of serving_default through tf2onnx, with the signature's names and a named batch."""
  require("onnx", "--export_format=onnx")
  tf2onnx = require("tf2onnx", "--export_format=onnx")
  logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # its INFO lines would flood the run
  from tf2onnx import tf_loader  # pylint: disable=g-import-not-at-top
  graph_def, inputs, outputs, renames = tf_loader.from_saved_model(
      saved_model, None, None, tag="serve", signatures=[saved_model_lib.SERVING_DEFAULT],
      return_tensors_to_rename=True)
  model, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs,
                                            opset=opset, tensors_to_rename=renames)
  for value in [*model.graph.input, *model.graph.output]:
    value.type.tensor_type.shape.dim[0].dim_param = "batch"  # not tf2onnx's "unk__31"
  for key, text in (metadata or {}).items():
    entry = model.metadata_props.add()
    entry.key, entry.value = key, text
  import onnx  # pylint: disable=g-import-not-at-top
  onnx.checker.check_model(model)
  onnx.save(model, path)
  return path


def convert(saved_model: str, fmt: str, representative: Optional[np.ndarray] = None) -> str:
  """Writes format `fmt` of a SavedModel version beside it; returns the file's path.

  Raises:
    UsageError: a converter is missing, or the conversion fails (one line).
  """
  path = output_path(saved_model, fmt)
  entries = _metadata(saved_model_lib.class_names(saved_model),
                      saved_model_lib.metadata(saved_model))
  try:
    with quiet():
      if fmt == "tflite":
        return to_tflite(saved_model, path, entries)
      if fmt == "tflite_int8":
        return to_tflite_int8(saved_model, path, representative, entries)
      if fmt == "onnx":
        return to_onnx(saved_model, path, entries)
  except (UsageError, KeyboardInterrupt):
    raise
  except Exception as e:  # pylint: disable=broad-except  # converters raise anything
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    hint = ("the converter's own output is in the run's log file")
    if fmt.startswith("tflite") and "TensorList" in str(e):
      # tf.nn.dynamic_rnn's while loop over a batch of unknown size: no TFLite builtin takes it.
      hint = "TFLite's builtins cannot run this RNN's while loop; --export_format=onnx can"
    raise UsageError(f"cannot convert {saved_model} to {fmt} ({type(e).__name__}: {reason}); "
                     f"{hint}") from e
  raise UsageError(f"no converter for --export_format={fmt}; choose from: "
                   f"{', '.join(f for f in FORMATS if f != 'saved_model')}")
