"""One served version of a model: a runtime.Model (SavedModel, .tflite or .onnx) and its number."""

import os
import re
from typing import Any, Dict, Optional

from google.protobuf import json_format

from mnist_estimator import runtime
from mnist_estimator.common import saved_model

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = saved_model.SERVING_DEFAULT
MODEL_FILE_SUFFIXES = (".tflite", ".onnx")


def is_model_file(path: Optional[str]) -> bool:
  """A .tflite or .onnx file (served as one version), not a SavedModel base path."""
  return bool(path and path.endswith(MODEL_FILE_SUFFIXES) and not os.path.isdir(path))


def file_version(path: str) -> int:
  """The version of a model file: the number its name starts with (<timestamp>.onnx), else 1."""
  found = re.match(r"\d+", os.path.basename(path))
  return int(found.group()) if found else 1


class Servable:
  """A model version as TF Serving serves one.

  Attributes:
    path: the SavedModel directory or the model file.
    version: its integer version.
    model: the runtime.Model.
    signatures: {name: runtime.Signature}.
    class_names: the names it keeps, or None.
    model_name: the model it is a version of (set by serve.versions; for the metrics).
  """
  model_name: str = ""

  def __init__(self, path: str, version: int, threads: Optional[int] = None,
               session_config: Optional[Any] = None) -> None:
    self.path = path
    self.version = int(version)
    self.model = runtime.open_version(path, threads, session_config)
    self.signatures = self.model.signatures
    self.class_names = self.model.class_names  # None: the export has no names

  def signature_def_map(self) -> Dict[str, Any]:
    """The SignatureDefMap as TF Serving's metadata API prints it (proto field names)."""
    return {"signature_def": {
        name: json_format.MessageToDict(definition, preserving_proto_field_name=True,
                                        including_default_value_fields=True)
        for name, definition in sorted(self.model.signature_defs().items())}}

  def warm_up(self) -> None:
    """Runs every signature with float inputs once on zeros, so the first request is not slow."""
    self.model.warm_up()

  def extra_metadata(self) -> Dict[str, Any]:
    """Fields beside signature_def in the metadata answer: a model file's format and tensors
    (what TF Serving's metadata lacks); none for a SavedModel, as TF Serving."""
    if self.model.format.runtime == "saved_model":
      return {}
    return {"model_file": self.model.describe()}

  def close(self) -> None:
    self.model.close()


def onnx_file(servable: Servable) -> Optional[str]:
  """The ONNX file of a served version, for the page's in-browser mode, or None.

  A served .onnx itself; for a SavedModel version <base>/<version>, the <version>.onnx that
  --export_format=onnx wrote beside it.
  """
  path = servable.path
  if path.endswith(".onnx"):
    return path
  beside = os.path.normpath(path) + ".onnx"
  return beside if os.path.isfile(beside) else None
