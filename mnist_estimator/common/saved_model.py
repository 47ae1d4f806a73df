"""The one SavedModel loader (predict, serve, bench): versions, a v1 Session, fast signatures."""

import json
import os

import numpy as np

from mnist_estimator.common.errors import UsageError

PB = "saved_model.pb"
# Signature and receiver names of every export (head and estimator/export write them).
SERVING_DEFAULT = "serving_default"
IMAGES_KEY = "images"        # receiver tensor of the default signatures
EXAMPLES_KEY = "examples"    # alternative receiver: serialized tf.Example with float feature "x"
SEQUENCES_KEY = "sequences"  # receiver of a sequence data set (weather): raw values, unscaled
IMAGE_BYTES_KEY = "image_bytes"  # alternative receiver: encoded images (PNG, JPEG, ...)
CLASS_NAMES_FILE = "class_names.txt"  # in assets.extra: one class name a line
# In assets.extra: what the training data meant (run/contract.py's data record): class
# names, image shape, the decoding the image_bytes signature repeats, the border brightness.
METADATA_FILE = "mnist_estimator.json"


def class_names(path):
  """The class names an export keeps in assets.extra, or None (digits: "0".."9")."""
  file = os.path.join(path, "assets.extra", CLASS_NAMES_FILE)
  try:
    with open(file, encoding="utf-8") as f:
      return [line.rstrip("\n") for line in f if line.strip()]
  except OSError:
    return None


def metadata(path):
  """The data record an export keeps in assets.extra ({} for an older export)."""
  try:
    with open(os.path.join(path, "assets.extra", METADATA_FILE), encoding="utf-8") as f:
      found = json.load(f)
    return found if isinstance(found, dict) else {}
  except (OSError, ValueError):
    return {}


def image_input_key(inputs):
  """The input a serving signature takes images on: "images", else its only input, else None.

  One choice for predict, the exports' check and the server's page.
  """
  if IMAGES_KEY in inputs:
    return IMAGES_KEY
  return next(iter(inputs)) if len(inputs) == 1 else None


def listdir(path):
  """os.listdir, or [] where the folder is missing or unreadable."""
  try:
    return os.listdir(path)
  except OSError:
    return []


def versions(base):
  """{version: path} of the numbered SavedModels under base (TF Serving's base path).

  A base that is itself a SavedModel is one version: its folder name if numeric, else 1.
  """
  if os.path.isfile(os.path.join(base, PB)):
    name = os.path.basename(os.path.normpath(base))
    return {int(name) if name.isdigit() else 1: base}
  return {int(n): os.path.join(base, n) for n in listdir(base)
          if n.isdigit() and os.path.isfile(os.path.join(base, n, PB))}


def newest(base):
  """The newest SavedModel under base (or base itself if it is one).

  Raises:
    UsageError: there is none.
  """
  found = versions(base)
  if not found:
    raise UsageError(f"no SavedModel in {base}; export one with --export_dir "
                     "(or --mode=export) first")
  return found[max(found)]


class TensorSpec:
  """A signature's input or output: its key, graph tensor, numpy dtype and shape (None: any)."""

  def __init__(self, key, info, graph):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.key = key
    self.tensor = graph.get_tensor_by_name(info.name)
    self.dtype = tf.dtypes.as_dtype(info.dtype)
    self.np_dtype = object if self.dtype == tf.string else self.dtype.as_numpy_dtype
    if info.tensor_shape.unknown_rank:
      self.shape = None
    else:
      self.shape = [d.size if d.size >= 0 else None for d in info.tensor_shape.dim]


class Signature:
  """A signature_def of a loaded graph; `run(feeds)` maps input keys to output arrays."""

  def __init__(self, name, definition, graph, session):
    self.name = name
    self.method_name = definition.method_name
    self.inputs = {k: TensorSpec(k, v, graph) for k, v in sorted(definition.inputs.items())}
    self.outputs = {k: TensorSpec(k, v, graph) for k, v in sorted(definition.outputs.items())}
    self._input_keys = list(self.inputs)
    self._output_keys = list(self.outputs)
    # The C++ Session::MakeCallable, as TF Serving's Session::Run: no Python feed check, so a
    # tensor of any shape reaches the graph, which runs it or answers with its own error
    # (session.make_callable with feeds is Session.run, which refuses any shape but the
    # placeholder's: "Cannot feed value of shape"). It is also 3-4x faster per call.
    from tensorflow.core.protobuf import config_pb2  # pylint: disable=g-import-not-at-top
    options = config_pb2.CallableOptions(
        feed=[s.tensor.name for s in self.inputs.values()],
        fetch=[s.tensor.name for s in self.outputs.values()])
    self._call = session._make_callable_from_options(options)  # pylint: disable=protected-access

  def run(self, feeds):
    """Runs the signature on {input key: array} (every input of the signature).

    Values are converted to each input's dtype, as Session.run converts feeds (the servers
    check the dtype of a request before); their shape is the graph's to take or refuse.
    """
    values = self._call(*[np.asarray(feeds[k], self.inputs[k].np_dtype)
                          for k in self._input_keys])
    return dict(zip(self._output_keys, values))

  def warm_up(self):
    """One call on zeros (float inputs of fixed shape only): the first real one is not slow."""
    specs = list(self.inputs.values())
    if all(s.dtype.is_floating and s.shape and None not in s.shape[1:] for s in specs):
      self.run({s.key: np.zeros([1, *s.shape[1:]], s.np_dtype) for s in specs})


class Loaded:
  """A SavedModel in its own graph and tf.compat.v1 Session.

  Attributes:
    path: the SavedModel directory.
    signature_defs: the raw SignatureDef protos, by name.
    signatures: {name: Signature}.
    class_names: the export's class names, or None.
    metadata: what its training data meant (METADATA_FILE), or {}.
  """

  def __init__(self, path, session_config=None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorflow.python.util import deprecation  # pylint: disable=g-import-not-at-top
    self.path = path
    graph = tf.Graph()
    self._session = tf.compat.v1.Session(graph=graph, config=session_config)
    # The v1 loader is the one that gives a Session for make_callable; TF's notice that it is
    # deprecated would be the first thing every predict and serve command prints.
    with graph.as_default(), deprecation.silence():
      meta_graph = tf.compat.v1.saved_model.loader.load(
          self._session, [tf.saved_model.SERVING], path)
    self.signature_defs = meta_graph.signature_def
    self.class_names = class_names(path)
    self.metadata = metadata(path)
    self.signatures = {name: Signature(name, definition, graph, self._session)
                       for name, definition in meta_graph.signature_def.items()}
    graph.finalize()

  def close(self):
    self._session.close()


def load(path, session_config=None):
  """Loads the SavedModel at `path` (a version folder, or a base: its newest version).

  Raises:
    UsageError: there is none, or it does not load (named with the reason and the fix).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = newest(path)
  try:
    return Loaded(path, session_config)
  except (OSError, ValueError, RuntimeError, tf.errors.OpError) as e:
    reason = (str(e).strip().splitlines() or [""])[0]
    raise UsageError(f"cannot load the SavedModel in {path} ({type(e).__name__}: {reason}); "
                     "re-export it with --export_dir") from e
