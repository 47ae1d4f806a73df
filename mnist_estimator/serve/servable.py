"""One loaded SavedModel version: a tf.compat.v1 Session and its signatures as fast callables."""

import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from mnist_estimator.serve import status

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"


class TensorSpec:
  """A signature's input or output: its key, graph tensor, numpy dtype and shape (None: any)."""

  def __init__(self, key, info, graph):
    self.key = key
    self.tensor = graph.get_tensor_by_name(info.name)
    self.dtype = tf.dtypes.as_dtype(info.dtype)
    self.np_dtype = object if self.dtype == tf.string else self.dtype.as_numpy_dtype
    if info.tensor_shape.unknown_rank:
      self.shape = None
    else:
      self.shape = [d.size if d.size >= 0 else None for d in info.tensor_shape.dim]


class Signature:
  """A signature_def of the loaded graph; `run(feeds)` maps input keys to output arrays."""

  def __init__(self, name, definition, graph, session):
    self.name = name
    self.method_name = definition.method_name
    self.inputs = {k: TensorSpec(k, v, graph) for k, v in sorted(definition.inputs.items())}
    self.outputs = {k: TensorSpec(k, v, graph) for k, v in sorted(definition.outputs.items())}
    self._input_keys = list(self.inputs)
    self._output_keys = list(self.outputs)
    # make_callable skips Session.run's per-call fetch/feed bookkeeping (faster at batch 1).
    self._call = session.make_callable(
        [s.tensor for s in self.outputs.values()], [s.tensor for s in self.inputs.values()])

  def run(self, feeds):
    """Runs the signature on {input key: array} (every input of the signature)."""
    values = self._call(*[feeds[k] for k in self._input_keys])
    return dict(zip(self._output_keys, values))


class Servable:
  """A SavedModel version loaded into its own graph and Session.

  Attributes:
    path: the SavedModel directory.
    version: its integer version.
    signatures: {name: Signature}.
  """

  def __init__(self, path, version, session_config=None):
    self.path = path
    self.version = int(version)
    graph = tf.Graph()
    self._session = tf.compat.v1.Session(graph=graph, config=session_config)
    with graph.as_default():
      meta_graph = tf.compat.v1.saved_model.loader.load(
          self._session, [tf.saved_model.SERVING], path)
    self._signature_defs = meta_graph.signature_def
    self.signatures = {name: Signature(name, definition, graph, self._session)
                       for name, definition in meta_graph.signature_def.items()}
    graph.finalize()

  def signature(self, name, method=None):
    """The signature called `name` (TF Serving's default if empty).

    Raises:
      ApiError: 400 if there is none, or its method is not `method`.
    """
    name = name or DEFAULT_SIGNATURE
    signature = self.signatures.get(name)
    if signature is None:
      raise status.bad_request(f'Serving signature key "{name}" not found.')
    if method and signature.method_name != method:
      kind = method.rsplit("/", 1)[-1]
      raise status.bad_request(f"Expected {kind} signature method_name to be {method}. "
                               f"Was: {signature.method_name}")
    return signature

  def signature_def_map(self):
    """The SignatureDefMap as TF Serving's metadata API prints it (proto field names)."""
    return {"signature_def": {
        name: json_format.MessageToDict(definition, preserving_proto_field_name=True,
                                        including_default_value_fields=True)
        for name, definition in sorted(self._signature_defs.items())}}

  def warm_up(self):
    """Runs every signature with float inputs once on zeros, so the first request is not slow."""
    for signature in self.signatures.values():
      specs = list(signature.inputs.values())
      if all(s.dtype.is_floating and s.shape and None not in s.shape[1:] for s in specs):
        signature.run({s.key: np.zeros([1, *s.shape[1:]], s.np_dtype) for s in specs})

  def close(self):
    self._session.close()
