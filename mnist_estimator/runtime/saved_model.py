"""A SavedModel version in its own graph and tf.compat.v1 Session, its signatures as callables."""

import threading
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np

from mnist_estimator.common import saved_model as names
from mnist_estimator.common.errors import UsageError
from mnist_estimator.runtime import formats
from mnist_estimator.runtime import interface


def _spec(key: str, info: Any) -> interface.TensorSpec:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  dtype = tf.dtypes.as_dtype(info.dtype)
  shape = (None if info.tensor_shape.unknown_rank
           else [d.size if d.size >= 0 else None for d in info.tensor_shape.dim])
  return interface.TensorSpec(key, object if dtype == tf.string else dtype.as_numpy_dtype,
                              shape, feed_name=info.name)


class SessionSignature(interface.Signature):
  """A signature_def of a loaded graph, run through one Session callable."""

  def __init__(self, name: str, definition: Any, session: Any) -> None:
    self.name = name
    self.method_name = definition.method_name
    self._definition = definition
    self.inputs = {k: _spec(k, v) for k, v in sorted(definition.inputs.items())}
    self.outputs = {k: _spec(k, v) for k, v in sorted(definition.outputs.items())}
    self._input_keys = list(self.inputs)
    self._output_keys = list(self.outputs)
    # The C++ Session::MakeCallable, as TF Serving's Session::Run: no Python feed check, so a
    # tensor of any shape reaches the graph, which runs it or answers with its own error
    # (session.make_callable with feeds is Session.run, which refuses any shape but the
    # placeholder's: "Cannot feed value of shape"). It is also 3-4x faster per call.
    # Made on first use (prepare): each is a grappler pass over its subgraph, 0.1-0.3 s, and a
    # predict command uses one of the export's signatures; the server prepares them all.
    from tensorflow.core.protobuf import config_pb2  # pylint: disable=g-import-not-at-top
    self._options = config_pb2.CallableOptions(
        feed=[s.feed_name for s in self.inputs.values()],
        fetch=[s.feed_name for s in self.outputs.values()])
    self._session = session
    self._call: Optional[Callable[..., List[np.ndarray]]] = None
    self._lock = threading.Lock()

  def prepare(self) -> None:
    with self._lock:  # concurrent first requests make one callable
      if self._call is None:
        self._call = self._session._make_callable_from_options(  # pylint: disable=protected-access
            self._options)

  def run(self, feeds: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """Runs the signature on {input key: array} (every input of the signature).

    Values are converted to each input's dtype, as Session.run converts feeds (the servers
    check the dtype of a request before); their shape is the graph's to take or refuse.
    """
    if self._call is None:
      self.prepare()
    assert self._call is not None
    values = self._call(*[np.asarray(feeds[k], self.inputs[k].np_dtype)
                          for k in self._input_keys])
    return dict(zip(self._output_keys, values))

  def definition(self) -> Any:
    """The SignatureDef proto as the SavedModel holds it."""
    return self._definition


class SavedModel(interface.Model):
  """A SavedModel version loaded into its own graph and tf.compat.v1 Session."""

  def __init__(self, path: str, session_config: Any = None) -> None:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorflow.python.util import deprecation  # pylint: disable=g-import-not-at-top
    self.path = path
    self.format = formats.FORMATS[formats.SAVED_MODEL]
    graph = tf.Graph()
    self._session = tf.compat.v1.Session(graph=graph, config=session_config)
    # The v1 loader is the one that gives a Session for make_callable; TF's notice that it is
    # deprecated would be the first thing every predict and serve command prints.
    with graph.as_default(), deprecation.silence():
      meta_graph = tf.compat.v1.saved_model.loader.load(
          self._session, [tf.saved_model.SERVING], path)
    self.class_names = names.class_names(path)
    self.metadata = names.metadata(path)
    self.signatures = {name: SessionSignature(name, definition, self._session)
                       for name, definition in sorted(meta_graph.signature_def.items())}
    graph.finalize()

  def close(self) -> None:
    self._session.close()


def load(path: str, session_config: Optional[Any] = None) -> SavedModel:
  """Loads the SavedModel at `path` (a version folder, or a base: its newest version).

  Raises:
    UsageError: there is none, or it does not load (named with the reason and the fix).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = names.newest(path)
  try:
    return SavedModel(path, session_config)
  except (OSError, ValueError, RuntimeError, tf.errors.OpError) as e:
    reason = (str(e).strip().splitlines() or [""])[0]
    raise UsageError(f"cannot load the SavedModel in {path} ({type(e).__name__}: {reason}); "
                     "re-export it with --export_dir") from e
