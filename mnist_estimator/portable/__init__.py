"""The model outside TensorFlow 2.15: TFLite (float, int8) and ONNX files, checked on export.

The formats' registry is runtime.formats (what runs a file is the runtime's to know).
"""

from mnist_estimator.runtime.formats import FORMATS, PIP_HINT, SAVED_MODEL, Format
from mnist_estimator.runtime.formats import format_names, format_of_file, help_text
from mnist_estimator.runtime.formats import parse_formats

__all__ = ["FORMATS", "PIP_HINT", "SAVED_MODEL", "Format", "format_names", "format_of_file",
           "help_text", "parse_formats"]
