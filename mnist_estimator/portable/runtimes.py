"""One runner interface over a SavedModel, a .tflite and an .onnx: float in, probabilities out."""

import dataclasses
import json
import os
import threading
from typing import Optional, Sequence

import numpy as np

from mnist_estimator.common import saved_model as saved_model_lib
from mnist_estimator.common.errors import UsageError
from mnist_estimator.portable import convert
from mnist_estimator.portable import format_of_file

# Rows of one TFLite or onnxruntime call: a larger batch runs in chunks of this many. On a
# 10,000-image request (cnn, 2 cores), one call took 3.7 s and peaked at 1.8 GB (TFLite),
# 3.3 s and 3.7 GB (onnxruntime); chunks of 64/256/1,024 took 2.5/2.4/2.4 s and 1.6/1.5/1.5 s,
# 256 peaking at 0.5 and 0.15 GB, with answers equal to one call's, bit for bit.
CHUNK_ROWS = 256


@dataclasses.dataclass(frozen=True)
class Tensor:
  """An input or output as the model file holds it.

  Attributes:
    name: its name in the file (images, classes, probabilities).
    dtype: numpy dtype name in the file (uint8 for the int8 model's pixels).
    shape: its shape, None for the batch.
    scale, zero_point: real = (q - zero_point) * scale for a quantized tensor, else None.
  """
  name: str
  dtype: str
  shape: Sequence[Optional[int]]
  scale: Optional[float] = None
  zero_point: Optional[int] = None


class Runner:
  """A loaded model: `run(float32 inputs)` -> {"classes": int32 [N], "probabilities": [N, K]}.

  Attributes:
    path, format (a Format), input_key, input_shape ([None, H, W(, C)]), n_classes,
    class_names (or None), inputs and outputs (Tensors as the file holds them), metadata
    (what its training data meant, as the export keeps it; {} if not known), chunk_rows
    (TFLite and ONNX: the most rows of one call; a larger batch runs in chunks).
  """
  path = format = input_key = input_shape = n_classes = class_names = None
  inputs = outputs = ()
  metadata = {}
  chunk_rows = CHUNK_ROWS  # TFLite and onnxruntime run larger batches in chunks

  def run(self, batch):
    raise NotImplementedError

  def close(self):
    pass

  def describe(self):
    """The file's real inputs and outputs, for the server's metadata."""
    return {"format": self.format.name, "file": os.path.basename(os.path.normpath(self.path)),
            "bytes": file_size(self.path),
            "inputs": [dataclasses.asdict(t) for t in self.inputs],
            "outputs": [dataclasses.asdict(t) for t in self.outputs]}


def file_size(path):
  """Bytes of a file, or of every file under a folder (a SavedModel)."""
  if not os.path.isdir(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(top, name))
             for top, _, names in os.walk(path) for name in names)


def in_chunks(run, batch, rows=CHUNK_ROWS):
  """`run(batch)` on at most `rows` rows at a time, its output dicts joined in order."""
  if np.ndim(batch) == 0 or len(batch) <= rows:
    return run(batch)
  outs = [run(batch[start:start + rows]) for start in range(0, len(batch), rows)]
  return {k: np.concatenate([out[k] for out in outs]) for k in outs[0]}


def _shape(dims):
  return [None if d is None or isinstance(d, str) or d < 0 else int(d) for d in dims]


class SavedModelRunner(Runner):
  """serving_default of a SavedModel (the one loader, common.saved_model)."""

  def __init__(self, path, session_config=None):
    self._loaded = saved_model_lib.load(path, session_config)
    self.path, self.class_names = self._loaded.path, self._loaded.class_names
    self.metadata = self._loaded.metadata
    self.format = format_of_file(self.path)
    signature = self._loaded.signatures.get(saved_model_lib.SERVING_DEFAULT)
    if signature is None or "probabilities" not in signature.outputs:
      raise UsageError(f"{self.path} has no serving_default signature returning probabilities;"
                       " export it with mnist_estimator (--export_dir)")
    self._signature = signature
    self.input_key = (saved_model_lib.image_input_key(signature.inputs)
                      or next(iter(signature.inputs)))
    self.input_shape = list(signature.inputs[self.input_key].shape)
    self.n_classes = signature.outputs["probabilities"].shape[-1]
    self.inputs = [Tensor(k, s.np_dtype.__name__, s.shape) for k, s in signature.inputs.items()]
    self.outputs = [Tensor(k, s.np_dtype.__name__, s.shape) for k, s in signature.outputs.items()]

  def run(self, batch):
    out = self._signature.run({self.input_key: np.asarray(batch, np.float32)})
    return {"classes": out["classes"], "probabilities": out["probabilities"]}

  def close(self):
    self._loaded.close()


def _quantization(detail):
  scale, zero_point = detail["quantization"]
  return (float(scale), int(zero_point)) if scale else (None, None)


class TFLiteRunner(Runner):
  """A .tflite through TF's interpreter; the int8 model's uint8 tensors are (de)quantized here.

  An interpreter is not thread-safe, so each thread gets its own (the server runs two).
  """

  def __init__(self, path, threads=None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.path, self.format = path, format_of_file(path)
    self._make = lambda: tf.lite.Interpreter(model_path=path, num_threads=threads or None)
    self._local = threading.local()
    try:
      runner = self._runner()
    except (ValueError, RuntimeError) as e:
      raise _unloadable(path, e) from e
    self._in = runner.get_input_details()
    self._out = runner.get_output_details()
    if len(self._in) != 1 or "probabilities" not in self._out:
      raise UsageError(f"{path} does not take one input and return probabilities (inputs "
                       f"{list(self._in)}, outputs {list(self._out)}); convert it with "
                       "--export_format=tflite")
    self.input_key, detail = next(iter(self._in.items()))
    self.input_shape = _shape(detail["shape_signature"])
    self.n_classes = int(self._out["probabilities"]["shape_signature"][-1])
    self.inputs = [self._tensor(k, d) for k, d in self._in.items()]
    self.outputs = [self._tensor(k, d) for k, d in sorted(self._out.items())]
    entries = _tflite_metadata(path)
    self.class_names = entries[convert.CLASS_NAMES_KEY].split("\n") if entries.get(
        convert.CLASS_NAMES_KEY) else None
    self.metadata = _json(entries.get(convert.METADATA_KEY))

  @staticmethod
  def _tensor(key, detail):
    scale, zero_point = _quantization(detail)
    return Tensor(key, np.dtype(detail["dtype"]).name, _shape(detail["shape_signature"]),
                  scale, zero_point)

  def _runner(self):
    runner = getattr(self._local, "runner", None)
    if runner is None:
      runner = self._local.runner = self._make().get_signature_runner(
          saved_model_lib.SERVING_DEFAULT)
    return runner

  def run(self, batch):
    return in_chunks(self._run, np.asarray(batch, np.float32), self.chunk_rows)

  def _run(self, batch):
    detail = self._in[self.input_key]
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = _quantization(detail)
    if scale is not None and dtype.kind in "iu":
      info = np.iinfo(dtype)
      batch = np.clip(np.round(batch / scale + zero_point), info.min, info.max).astype(dtype)
    out = self._runner()(**{self.input_key: batch})
    probabilities = out["probabilities"]
    scale, zero_point = _quantization(self._out["probabilities"])
    if scale is not None:
      probabilities = (probabilities.astype(np.float32) - zero_point) * np.float32(scale)
    return {"classes": out["classes"], "probabilities": probabilities}


def _tflite_metadata(path):
  """{name: text} of the metadata convert keeps in a .tflite."""
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
  model = flatbuffer_utils.read_model(path)
  found = {}
  for entry in model.metadata or []:
    name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
    if name in (convert.CLASS_NAMES_KEY, convert.METADATA_KEY):
      found[name] = bytes(model.buffers[entry.buffer].data).decode()
  return found


def _json(text):
  """A metadata entry's JSON object, or {}."""
  try:
    found = json.loads(text) if text else {}
  except ValueError:
    return {}
  return found if isinstance(found, dict) else {}


def _unloadable(path, error):
  reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
  return UsageError(f"cannot load {path} ({type(error).__name__}: {reason}); re-export it with "
                    "--mode=export --export_format=...")


class OnnxRunner(Runner):
  """An .onnx through onnxruntime's CPU provider (its run is thread-safe)."""

  def __init__(self, path, threads=None):
    ort = convert.require("onnxruntime", f"running {path}")
    self.path, self.format = path, format_of_file(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.log_severity_level = 3  # errors only
    try:
      self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # pylint: disable=broad-except  # onnxruntime's own error types
      raise _unloadable(path, e) from e
    ins, outs = self._session.get_inputs(), self._session.get_outputs()
    names = [o.name for o in outs]
    if len(ins) != 1 or "probabilities" not in names:
      raise UsageError(f"{path} does not take one input and return probabilities (inputs "
                       f"{[i.name for i in ins]}, outputs {names}); convert it with "
                       "--export_format=onnx")
    self.input_key, self.input_shape = ins[0].name, _shape(ins[0].shape)
    self._names = names
    self.n_classes = int(outs[names.index("probabilities")].shape[-1])
    kind = lambda t: t.type[len("tensor("):-1].replace("float", "float32")
    self.inputs = [Tensor(t.name, kind(t), _shape(t.shape)) for t in ins]
    self.outputs = [Tensor(t.name, kind(t), _shape(t.shape)) for t in outs]
    entries = self._session.get_modelmeta().custom_metadata_map
    names = entries.get(convert.CLASS_NAMES_KEY)
    self.class_names = names.split("\n") if names else None
    self.metadata = _json(entries.get(convert.METADATA_KEY))

  def run(self, batch):
    return in_chunks(self._run, np.asarray(batch, np.float32), self.chunk_rows)

  def _run(self, batch):
    values = self._session.run(None, {self.input_key: batch})
    out = dict(zip(self._names, values))
    return {"classes": out["classes"], "probabilities": out["probabilities"]}


def load(path, threads=None, session_config=None):
  """A Runner for a SavedModel folder (or export base), a .tflite or an .onnx file.

  Args:
    path: the model.
    threads: threads of one call (TFLite, onnxruntime, and TF's intra- and inter-op pools);
      None lets each runtime decide.
    session_config: a SavedModel's tf.compat.v1.ConfigProto (instead of `threads`).

  Raises:
    UsageError: the path is missing, of no known kind, or does not load.
  """
  if not os.path.exists(path):
    raise UsageError(f"{path} does not exist; pass a .tflite or .onnx file or a SavedModel "
                     "folder")
  runtime = format_of_file(path).runtime
  if runtime == "tflite":
    return TFLiteRunner(path, threads)
  if runtime == "onnx":
    return OnnxRunner(path, threads)
  if threads and session_config is None:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    session_config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                              inter_op_parallelism_threads=threads)
  return SavedModelRunner(path, session_config)
