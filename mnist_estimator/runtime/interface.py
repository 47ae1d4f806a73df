"""What every loaded model offers, whatever its format: signatures, their tensors, run, metadata."""

import dataclasses
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, cast

import numpy as np

from mnist_estimator.common import saved_model as names

Arrays = Dict[str, np.ndarray]
PREDICT_METHOD = "tensorflow/serving/predict"


@dataclasses.dataclass(frozen=True)
class TensorSpec:
  """A signature's input or output.

  Attributes:
    key: its key in the signature.
    np_dtype: its numpy dtype (`object` for strings).
    shape: its dims, None for any size; None for an unknown rank.
    feed_name: the graph tensor it feeds (a SavedModel), None for a model file.
    strict_shape: the runtime takes only the declared shape (TFLite, onnxruntime); a
      SavedModel's Session takes any shape its graph runs.
  """
  key: str
  np_dtype: Any
  shape: Optional[List[Optional[int]]]
  feed_name: Optional[str] = None
  strict_shape: bool = False

  @property
  def dtype(self) -> Any:
    """Its tf.DType (TensorFlow is imported on first use)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf.string if self.np_dtype is object else tf.dtypes.as_dtype(self.np_dtype)


@dataclasses.dataclass(frozen=True)
class FileTensor:
  """An input or output as a model file holds it (what the server's metadata shows).

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


class Signature:
  """One signature: `run({input key: array})` -> {output key: array}.

  Attributes:
    name: its name (serving_default, image_bytes:serving_default, ...).
    method_name: TF Serving's method (predict, classify, regress).
    inputs, outputs: {key: TensorSpec}, in key order.
  """
  name: str = names.SERVING_DEFAULT
  method_name: str = PREDICT_METHOD
  inputs: Mapping[str, TensorSpec] = {}
  outputs: Mapping[str, TensorSpec] = {}

  def run(self, feeds: Mapping[str, Any]) -> Arrays:
    """Runs the signature on {input key: array} (every input it has)."""
    raise NotImplementedError

  def prepare(self) -> None:
    """Builds what the first run would (a session callable); nothing for most runtimes."""

  def warm_up(self) -> None:
    """Prepared, and one call on zeros (float inputs of fixed shape only): the first real
    one is not slow."""
    self.prepare()
    specs = list(self.inputs.values())
    if specs and all(np.dtype(s.np_dtype).kind == "f" and s.shape and None not in s.shape[1:]
                     for s in specs):
      # (the check above: every dim after the batch is known)
      self.run({s.key: np.zeros([1, *cast(List[int], s.shape)[1:]], s.np_dtype) for s in specs})

  def definition(self) -> Any:
    """Its SignatureDef proto, as TF Serving's metadata prints one."""
    from tensorflow.core.protobuf import meta_graph_pb2  # pylint: disable=g-import-not-at-top
    proto = meta_graph_pb2.SignatureDef(method_name=self.method_name)
    for specs, field in ((self.inputs, proto.inputs), (self.outputs, proto.outputs)):
      for key, spec in specs.items():
        info = field[key]
        info.name, info.dtype = spec.feed_name or key, spec.dtype.as_datatype_enum
        if spec.shape is None:
          info.tensor_shape.unknown_rank = True
        for size in spec.shape or ():
          info.tensor_shape.dim.add(size=-1 if size is None else size)
    return proto


class Model:
  """A loaded model: a SavedModel version, a .tflite or an .onnx, all seen alike.

  Attributes:
    path: the SavedModel folder or the model file.
    format: its portable.Format (saved_model, tflite, tflite_int8, onnx).
    signatures: {name: Signature}.
    class_names: the class names it keeps, or None (class ids).
    metadata: what its training data meant (run/contract.py's data record), or {}.
    file_inputs, file_outputs: FileTensors as the file holds them (a model file's).
  """
  path: str = ""
  format: Any = None
  signatures: Mapping[str, Signature] = {}
  class_names: Optional[List[str]] = None
  metadata: Mapping[str, Any] = {}
  file_inputs: Sequence[FileTensor] = ()
  file_outputs: Sequence[FileTensor] = ()

  def signature_defs(self) -> Dict[str, Any]:
    """{name: SignatureDef proto} of every signature."""
    return {name: s.definition() for name, s in self.signatures.items()}

  def warm_up(self) -> None:
    """Prepares every signature and runs those with float inputs once on zeros, so the first
    request is not slow."""
    for signature in self.signatures.values():
      signature.warm_up()

  def describe(self) -> Dict[str, Any]:
    """The format, file, size and the file's own tensors (the server's model_file metadata)."""
    return {"format": self.format.name, "file": os.path.basename(os.path.normpath(self.path)),
            "bytes": file_size(self.path),
            "inputs": [dataclasses.asdict(t) for t in self.file_inputs],
            "outputs": [dataclasses.asdict(t) for t in self.file_outputs]}

  def close(self) -> None:
    """Frees its session or runtime."""

  def __enter__(self) -> "Model":
    return self

  def __exit__(self, *exc_info: Any) -> None:
    self.close()


def file_size(path: str) -> int:
  """Bytes of a file, or of every file under a folder (a SavedModel)."""
  if not os.path.isdir(path):
    return os.path.getsize(path)
  return sum(os.path.getsize(os.path.join(top, name))
             for top, _, files in os.walk(path) for name in files)
