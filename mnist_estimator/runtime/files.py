"""A .tflite (TF's interpreter) or an .onnx (onnxruntime) file as a model with one signature."""

import json
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from mnist_estimator.common import saved_model as names
from mnist_estimator.common.errors import UsageError
from mnist_estimator.runtime import chunks
from mnist_estimator.runtime import formats
from mnist_estimator.runtime import interface

# Rows of one TFLite or onnxruntime call: a larger batch runs in chunks of this many. On a
# 10,000-image request (cnn, 2 cores), one call took 3.7 s and peaked at 1.8 GB (TFLite),
# 3.3 s and 3.7 GB (onnxruntime); chunks of 64/256/1,024 took 2.5/2.4/2.4 s and 1.6/1.5/1.5 s,
# 256 peaking at 0.5 and 0.15 GB, with answers equal to one call's, bit for bit.
CHUNK_ROWS = 256


class FileSignature(interface.Signature):
  """serving_default of a model file: float32 images in, int32 classes and probabilities out.

  The int8 file's uint8 pixels and probabilities are (de)quantized by its model, so a client
  sends the same request to every format; the model's file_inputs say what the file holds.
  """

  def __init__(self, run: Callable[[np.ndarray], Dict[str, np.ndarray]], input_key: str,
               input_shape: List[Optional[int]], n_classes: int) -> None:
    self._run = run
    self._input_key = input_key
    self.inputs = {input_key: interface.TensorSpec(input_key, np.float32, input_shape,
                                                   strict_shape=True)}
    self.outputs = {"classes": interface.TensorSpec("classes", np.int32, [None],
                                                    strict_shape=True),
                    "probabilities": interface.TensorSpec("probabilities", np.float32,
                                                          [None, n_classes], strict_shape=True)}
    self.chunk_rows = CHUNK_ROWS

  def run(self, feeds: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """Runs {input key: float32 images}, `chunk_rows` rows per runtime call."""
    batch = np.asarray(feeds[self._input_key], np.float32)
    out = chunks.run_in_chunks(lambda part: self._run(part[self._input_key]),
                               {self._input_key: batch}, self.chunk_rows)
    return {"classes": out["classes"].astype(np.int32, copy=False),
            "probabilities": out["probabilities"].astype(np.float32, copy=False)}


def _shape(dims: Sequence[Any]) -> List[Optional[int]]:
  return [None if d is None or isinstance(d, str) or d < 0 else int(d) for d in dims]


def _json(text: Optional[str]) -> Dict[str, Any]:
  """A metadata entry's JSON object, or {}."""
  try:
    found = json.loads(text) if text else {}
  except ValueError:
    return {}
  return found if isinstance(found, dict) else {}


def _unloadable(path: str, error: Exception) -> UsageError:
  reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
  return UsageError(f"cannot load {path} ({type(error).__name__}: {reason}); re-export it with "
                    "--mode=export --export_format=...")


def _not_a_classifier(path: str, inputs: Sequence[str], outputs: Sequence[str],
                      fmt: str) -> UsageError:
  return UsageError(f"{path} does not take one input and return probabilities (inputs "
                    f"{list(inputs)}, outputs {list(outputs)}); convert it with "
                    f"--export_format={fmt}")


def _quantization(detail: Mapping[str, Any]) -> tuple:
  scale, zero_point = detail["quantization"]
  return (float(scale), int(zero_point)) if scale else (None, None)


class TFLiteModel(interface.Model):
  """A .tflite through TF's interpreter; the int8 model's uint8 tensors are (de)quantized here.

  An interpreter is not thread-safe, so each thread gets its own (the server runs two).
  """

  def __init__(self, path: str, threads: Optional[int] = None) -> None:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.path, self.format = path, formats.format_of_file(path)
    self._make = lambda: tf.lite.Interpreter(model_path=path, num_threads=threads or None)
    self._local = threading.local()
    try:
      runner = self._runner()
    except (ValueError, RuntimeError) as e:
      raise _unloadable(path, e) from e
    self._in = runner.get_input_details()
    self._out = runner.get_output_details()
    if len(self._in) != 1 or "probabilities" not in self._out:
      raise _not_a_classifier(path, self._in, self._out, "tflite")
    self._key, detail = next(iter(self._in.items()))
    self.file_inputs = [self._tensor(k, d) for k, d in self._in.items()]
    self.file_outputs = [self._tensor(k, d) for k, d in sorted(self._out.items())]
    entries = _tflite_metadata(path)
    text = entries.get(formats.CLASS_NAMES_KEY)
    self.class_names = text.split("\n") if text else None
    self.metadata = _json(entries.get(formats.METADATA_KEY))
    n_classes = int(self._out["probabilities"]["shape_signature"][-1])
    signature = FileSignature(self._run, self._key, _shape(detail["shape_signature"]), n_classes)
    self.signatures = {signature.name: signature}

  @staticmethod
  def _tensor(key: str, detail: Mapping[str, Any]) -> interface.FileTensor:
    scale, zero_point = _quantization(detail)
    return interface.FileTensor(key, np.dtype(detail["dtype"]).name,
                                _shape(detail["shape_signature"]), scale, zero_point)

  def _runner(self) -> Any:
    runner = getattr(self._local, "runner", None)
    if runner is None:
      runner = self._local.runner = self._make().get_signature_runner(names.SERVING_DEFAULT)
    return runner

  def _run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
    detail = self._in[self._key]
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = _quantization(detail)
    if scale is not None and dtype.kind in "iu":
      info = np.iinfo(dtype)
      batch = np.clip(np.round(batch / scale + zero_point), info.min, info.max).astype(dtype)
    out = self._runner()(**{self._key: batch})
    probabilities = out["probabilities"]
    scale, zero_point = _quantization(self._out["probabilities"])
    if scale is not None:
      probabilities = (probabilities.astype(np.float32) - zero_point) * np.float32(scale)
    return {"classes": out["classes"], "probabilities": probabilities}


def _tflite_metadata(path: str) -> Dict[str, str]:
  """{name: text} of the metadata convert keeps in a .tflite."""
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
  model = flatbuffer_utils.read_model(path)
  found = {}
  for entry in model.metadata or []:
    name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
    if name in (formats.CLASS_NAMES_KEY, formats.METADATA_KEY):
      found[name] = bytes(model.buffers[entry.buffer].data).decode()
  return found


class OnnxModel(interface.Model):
  """An .onnx through onnxruntime's CPU provider (its run is thread-safe)."""

  def __init__(self, path: str, threads: Optional[int] = None) -> None:
    ort = formats.require("onnxruntime", f"running {path}")
    self.path, self.format = path, formats.format_of_file(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.log_severity_level = 3  # errors only
    try:
      self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # pylint: disable=broad-except  # onnxruntime's own error types
      raise _unloadable(path, e) from e
    ins, outs = self._session.get_inputs(), self._session.get_outputs()
    self._names = [o.name for o in outs]
    if len(ins) != 1 or "probabilities" not in self._names:
      raise _not_a_classifier(path, [i.name for i in ins], self._names, "onnx")
    self._key = ins[0].name
    kind = lambda t: t.type[len("tensor("):-1].replace("float", "float32")
    self.file_inputs = [interface.FileTensor(t.name, kind(t), _shape(t.shape)) for t in ins]
    self.file_outputs = [interface.FileTensor(t.name, kind(t), _shape(t.shape)) for t in outs]
    entries = self._session.get_modelmeta().custom_metadata_map
    text = entries.get(formats.CLASS_NAMES_KEY)
    self.class_names = text.split("\n") if text else None
    self.metadata = _json(entries.get(formats.METADATA_KEY))
    n_classes = int(outs[self._names.index("probabilities")].shape[-1])
    signature = FileSignature(self._run, self._key, _shape(ins[0].shape), n_classes)
    self.signatures = {signature.name: signature}

  def _run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
    out = dict(zip(self._names, self._session.run(None, {self._key: batch})))
    return {"classes": out["classes"], "probabilities": out["probabilities"]}
