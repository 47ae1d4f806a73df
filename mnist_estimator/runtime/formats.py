"""The formats a model is kept in (SavedModel, TFLite float and int8, ONNX): the one registry."""

import dataclasses
import importlib
import os
from types import ModuleType
from typing import List, Sequence, Union

from mnist_estimator.common.errors import UsageError

SAVED_MODEL = "saved_model"
PIP_HINT = "pip install 'mnist_estimator[portable]'"
CLASS_NAMES_KEY = "class_names"  # ONNX metadata_props / TFLite metadata: one name a line
# The same place: the export's data record (class names, decoding, the training images' border)
# and what the float input expects, as JSON.
METADATA_KEY = "mnist_estimator"


@dataclasses.dataclass(frozen=True)
class Format:
  """One --export_format.

  Attributes:
    name: its --export_format name.
    suffix: appended to the SavedModel version's path to name the file ("" for the folder).
    runtime: what runs it: "saved_model", "tflite" or "onnx".
    quantized: int8 weights and activations (checked on accuracy, not on exact agreement).
    about: one line for --helpshort and the README.
  """
  name: str
  suffix: str
  runtime: str
  quantized: bool
  about: str


FORMATS = {f.name: f for f in (
    Format(SAVED_MODEL, "", "saved_model", False, "TF 2.15 SavedModel (TF Serving)"),
    Format("tflite", ".tflite", "tflite", False, "TFLite flatbuffer, float32"),
    Format("tflite_int8", "_int8.tflite", "tflite", True,
           "TFLite, full-integer post-training int8 (uint8 pixels and probabilities)"),
    Format("onnx", ".onnx", "onnx", False, "ONNX, opset 13 (onnxruntime, onnxruntime-web)"),
)}


def format_names() -> List[str]:
  return list(FORMATS)


def help_text() -> str:
  """--export_format's list, from the registry: each format's name and its one line."""
  return "; ".join(f"{f.name} - {f.about}" for f in FORMATS.values())


def parse_formats(names: Union[str, Sequence[str]]) -> List["Format"]:
  """The Formats named in `names` (a comma list or a sequence), in order, without repeats.

  Raises:
    UsageError: an unknown name, or none.
  """
  if isinstance(names, str):
    names = names.split(",")
  wanted = list(dict.fromkeys(name.strip() for name in names if name.strip()))
  unknown = [name for name in wanted if name not in FORMATS]
  if unknown or not wanted:
    raise UsageError(f"unknown --export_format {','.join(unknown) or '(none)'}; choose from: "
                     f"{', '.join(FORMATS)} (comma-separated)")
  return [FORMATS[name] for name in wanted]


def format_of_file(path: str) -> "Format":
  """The Format of a model file or SavedModel folder, from its name.

  Raises:
    UsageError: the name ends in neither .tflite nor .onnx (and it is no folder).
  """
  if os.path.isdir(path):
    return FORMATS[SAVED_MODEL]
  if path.endswith(".tflite"):
    return FORMATS["tflite_int8" if path.endswith("_int8.tflite") else "tflite"]
  if path.endswith(".onnx"):
    return FORMATS["onnx"]
  raise UsageError(f"{path} is not a model file: pass a .tflite or .onnx file (from "
                   "--export_format=tflite,tflite_int8,onnx) or a SavedModel folder")


def require(module: str, what: str) -> ModuleType:
  """Imports `module` for `what`, or raises one line naming the pip command."""
  try:
    return importlib.import_module(module)
  except ImportError:
    raise UsageError(f"{what} needs {module.split('.')[0]}, which is not installed: "
                     f"{PIP_HINT}") from None
