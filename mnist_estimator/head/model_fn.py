"""The tf.estimator model_fn of every model: its logits through the shared head, per mode."""

import contextlib
import inspect
import re
import warnings
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set

import tensorflow as tf

from mnist_estimator import models
from mnist_estimator.common.errors import UsageError
from mnist_estimator.head import bf16
from mnist_estimator.head import multi_class as head
from mnist_estimator.head import summaries
from mnist_estimator.models import custom
from mnist_estimator.models import layers

ModeKeys = tf.estimator.ModeKeys
# The training loss under one name for the progress hook, whatever the model (head or not).
LOSS_NAME = "mnist_estimator/loss"
# Ops that write a variable: assign, assign_add/sub, v[i].assign, scatter_* (ref or resource).
_WRITES = re.compile(r"Assign(Add|Sub)?(VariableOp)?|(Resource)?StridedSliceAssign|"
                     r"(Resource)?Scatter(Nd)?(Update|Add|Sub|Mul|Div|Min|Max)")


def _not_autograph(fn: Callable[..., Any]) -> Callable[..., Any]:
  """`fn` that autograph calls as it is, its signature still visible to tf.estimator."""
  return tf.__internal__.decorator.make_decorator(fn, tf.autograph.experimental.do_not_convert(fn))


# Not autograph's: under a tf.distribute strategy tf.estimator calls the model_fn through
# autograph, which converted this function and everything it calls (the head, the model, a
# user's own code) at every graph's construction: 2.7 s of a 4-step mirrored cnn run here, and
# code that a run without a strategy executes as plain Python. Graph code only; its Python
# control flow is on static values (the mode, params).
@_not_autograph
def model_fn(features: Dict[str, tf.Tensor], labels: Optional[tf.Tensor], mode: str,
             params: Mapping[str, Any],
             config: Optional[tf.estimator.RunConfig] = None) -> tf.estimator.EstimatorSpec:
  """The tf.estimator model_fn of every model, registered or given by path.

  A logits function is called with the Keras learning phase set from `mode`; in TRAIN
  the variable updates it builds that its logits do not run (Keras layers' `add_update`s,
  such as BatchNormalization's moving statistics) go into UPDATE_OPS, which the head's
  train_op runs. A full model_fn builds its own train_op, so runs its updates itself.

  Args:
    features: dict with "x", a float batch of images.
    labels: int class ids, or None in PREDICT.
    mode: a tf.estimator.ModeKeys value.
    params: dict with "model" (a registered name or PATH:FUNCTION) and the model's
      settings; "histogram_steps" sets how often the heavy summaries are written;
      "train_precision" "bf16" computes the training step in bfloat16.
    config: the RunConfig (tf.estimator passes it): where and whether to write them.

  Returns:
    A tf.estimator.EstimatorSpec: the shared head's, or a full model_fn's own.

  Raises:
    UsageError: the model cannot take this data's shape, returns logits of another
      shape, raises while its graph is built (a UserCodeError with its frames), or
      updates a variable where the training step cannot run the update.
  """
  info = models.get_model(params["model"])
  if info.kind == "model_fn":
    spec = _own_model_fn(info, features, labels, mode, params, config)
  elif mode != ModeKeys.TRAIN:  # always float32: what the SavedModel computes
    spec = head.build_spec(_logits(info, info.logits_fn, features, mode, params), labels, mode,
                           params)
  else:
    logits_fn = _train_convolutions(info.logits_fn, params.get("conv_algorithm", "direct"))
    if params.get("train_precision") == "bf16":
      logits_fn = lambda f, m, p, fn=logits_fn: bf16.train_logits(fn, f, m, p)
    spec = head.build_spec(_logits(info, logits_fn, features, mode, params), labels, mode,
                           params)
  _check_checkpoint_shapes(config)
  if mode != ModeKeys.TRAIN:
    return spec
  tf.identity(spec.loss, name=LOSS_NAME)
  summaries.add_train_summaries(layers.image_input(features, params))
  if params.get("augment"):  # a grid of what training really sees
    summaries.add_augmented_grid(layers.image_input(features, params))
  chief = config is None or config.is_chief
  hook = summaries.heavy_summary_hook(params.get("histogram_steps"),
                                      config.model_dir if config and chief else None)
  return spec._replace(training_hooks=list(spec.training_hooks) + [hook]) if hook else spec


def _train_convolutions(logits_fn: Callable[..., tf.Tensor],
                        algorithm: str) -> Callable[..., tf.Tensor]:
  """`logits_fn` whose layers.conv2d convolutions train by `algorithm` (--conv_algorithm)."""
  if algorithm != "winograd":
    return logits_fn

  def winograd_logits(features: Dict[str, tf.Tensor], mode: str,
                      params: Mapping[str, Any]) -> tf.Tensor:
    with layers.winograd_convs():
      return logits_fn(features, mode, params)
  return winograd_logits


class CheckpointMismatch(UsageError):
  """model_dir's checkpoint holds variables of other shapes than this graph's.

  Attributes:
    differences: the first variables that differ, "name [saved] there, [built] here; ...".
  """

  def __init__(self, message: str, differences: str = "") -> None:
    super().__init__(message)
    self.differences = differences


def _check_checkpoint_shapes(config: Optional[tf.estimator.RunConfig]) -> None:
  """Refuses a graph whose variables differ in shape from model_dir's checkpoint.

  A resource variable restores a tensor of another shape without a word (AssignVariableOp
  does not validate shapes), so a changed network would train on the old weights' shapes.
  """
  model_dir = getattr(config, "model_dir", None)
  latest = model_dir and tf.train.latest_checkpoint(model_dir)
  if not latest:
    return
  saved = dict(tf.train.list_variables(latest))
  differ = [f"{v.op.name} {saved[v.op.name]} there, {v.shape.as_list()} here"
            for v in tf.compat.v1.global_variables()
            if v.op.name in saved and list(saved[v.op.name]) != v.shape.as_list()]
  if differ:
    differences = "; ".join(differ[:3])
    raise CheckpointMismatch(f"--model_dir {model_dir} holds a checkpoint of another network "
                             f"({differences}); use another --model_dir or the network it "
                             "was trained with", differences)


def _shape_text(image_shape: Sequence[int]) -> str:
  return "x".join(map(str, image_shape))


def _build(info: models.ModelInfo, call: Callable[[], Any], params: Mapping[str, Any]) -> Any:
  """Runs a model's graph-building call; its errors become one line (and its frames)."""
  try:
    return call()
  except UsageError:
    raise
  except ValueError as e:
    # A registered network's shape arithmetic failing on images too small for its layers.
    shapes = ("Negative dimension size", "must be at least", "must be >= 0", "due to downsampling")
    if info.registered or any(text in str(e) for text in shapes):
      raise UsageError(f"--model={info.name} cannot take {_shape_text(params['image_shape'])} "
                       f"images ({str(e).splitlines()[0]}); use larger images (--image_size) "
                       "or another model") from None
    raise custom.user_error(e, f"{info.name} (building its graph)", info.source) from e
  except Exception as e:  # pylint: disable=broad-except  # a model of the user's: any error
    if info.registered:
      raise
    raise custom.user_error(e, f"{info.name} (building its graph)", info.source) from e


def _logits(info: models.ModelInfo, logits_fn: Callable[..., tf.Tensor],
            features: Dict[str, tf.Tensor], mode: str, params: Mapping[str, Any]) -> tf.Tensor:
  """A logits function's output, checked to be [batch, n_classes]; its updates registered."""
  graph = tf.compat.v1.get_default_graph()
  before = set(graph.get_operations())
  # The variables made in the call: their initializers are no updates.
  created: List[tf.Variable] = []

  def record(next_creator: Callable[..., tf.Variable], **kwargs: Any) -> tf.Variable:
    created.append(next_creator(**kwargs))
    return created[-1]

  with _keras_learning_phase(mode), tf.variable_creator_scope(record):
    logits = _build(info, lambda: logits_fn(features, mode, params), params)
  _check_logits(info, logits, params)
  if mode == ModeKeys.TRAIN:
    new = [op for op in graph.get_operations() if op not in before]
    for update in _unrun_updates(info, new, logits, created):
      tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, update)
  return logits


def _check_logits(info: models.ModelInfo, logits: Any, params: Mapping[str, Any]) -> None:
  """Refuses logits that are not [batch, n_classes]."""
  want = params["n_classes"]
  shape = getattr(logits, "shape", None)
  if shape is None or shape.rank != 2 or (shape[-1] is not None and shape[-1] != want):
    got = ("no tensor" if shape is None else
           f"shape {shape.as_list()}" if shape.rank is not None else "a tensor of unknown rank")
    raise UsageError(f"--model={info.name} returned {got}; a logits function returns "
                     f"[batch, n_classes] = [batch, {want}] (n_classes from the data set)")


@contextlib.contextmanager
def _keras_learning_phase(mode: str) -> Iterator[None]:
  """Keras layers called without training= train in TRAIN only (as model_to_estimator does).

  Unset, the phase is a placeholder that defaults to 0: dropout off and batch norm on its
  moving statistics (updated with momentum 1, so never) while training.
  """
  with contextlib.ExitStack() as stack:
    # Its deprecation says to pass training=, which is the user's code to do; the phase is
    # what we can set, and what tf.estimator's own model_to_estimator sets.
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      stack.enter_context(tf.compat.v1.keras.backend.learning_phase_scope(
          int(mode == ModeKeys.TRAIN)))
    yield


def _unrun_updates(info: models.ModelInfo, new_ops: Sequence[tf.Operation], logits: tf.Tensor,
                   created: List[tf.Variable]) -> List[tf.Operation]:
  """The variable writes among `new_ops` that neither the logits nor UPDATE_OPS run.

  In a graph, Keras layers keep their `add_update`s to themselves (for Model.fit) and put
  none in UPDATE_OPS, so BatchNormalization's moving statistics never changed. This finds
  any such write, whoever built it: an assign, or a tf.cond/function that assigns inside.

  Raises:
    UsageError: a write inside a control flow v1 cond or loop, which no op outside can run.
  """
  among = set(new_ops)
  collection = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  run = _ancestors([logits] + collection, among)
  variables = created + tf.compat.v1.global_variables() + tf.compat.v1.local_variables()
  initializers = {getattr(v, "initializer", None) for v in variables}
  library = _FunctionLibrary(tf.compat.v1.get_default_graph())
  updates = [op for op in new_ops if op not in run and op not in initializers
             and _writes(op.type, op.node_def.attr, library, set())]
  for op in updates:
    if op._control_flow_context is not None:  # pylint: disable=protected-access
      raise UsageError(f"--model={info.name} updates {op.name} inside a tf.cond or loop of "
                       "control flow v1, which the training step cannot run; do not call "
                       "tf.compat.v1.disable_control_flow_v2, or pass training= a Python bool")
  return [_runnable(op) for op in updates]


def _runnable(op: tf.Operation) -> tf.Operation:
  """`op` itself, or for a call (a tf.cond) an op on its outputs: what runs its writes.

  A session lowers a tf.cond into branches that run for the outputs they compute; a
  control dependency on the cond op alone runs none of a branch's writes.
  """
  if _WRITES.fullmatch(op.type) or not op.outputs:
    return op
  with tf.compat.v1.name_scope(op.name + "/"), tf.control_dependencies([op]):
    return tf.identity_n(op.outputs, name="run_update")[0].op


def _ancestors(roots: Sequence[Any], among: Set[tf.Operation]) -> Set[tf.Operation]:
  """The ops in `among` that running `roots` (ops or tensors) runs: inputs and control inputs."""
  stack = [getattr(root, "op", root) for root in roots]
  seen: Set[tf.Operation] = set()
  while stack:
    op = stack.pop()
    if op in among and op not in seen:
      seen.add(op)
      stack.extend([tensor.op for tensor in op.inputs] + list(op.control_inputs))
  return seen


class _FunctionLibrary:
  """The graph's functions by name (tf.cond branches, tf.function bodies), read on first use."""

  def __init__(self, graph: tf.Graph) -> None:
    self._graph = graph
    self._functions: Optional[Dict[str, Any]] = None  # name: its FunctionDef

  def get(self, name: str) -> Any:
    """The FunctionDef of that name, or None."""
    if self._functions is None:
      library = self._graph.as_graph_def().library
      self._functions = {f.signature.name: f for f in library.function}
    return self._functions.get(name)


def _writes(op_type: str, attrs: Mapping[str, Any], library: _FunctionLibrary,
            seen: Set[str]) -> bool:
  """Whether an op writes a variable, itself or in a function it calls (a tf.cond branch)."""
  if _WRITES.fullmatch(op_type):
    return True
  called = [value.func.name for value in attrs.values() if value.HasField("func")]
  called += [func.name for value in attrs.values() for func in value.list.func]
  return any(_function_writes(name, library, seen) for name in called)


def _function_writes(name: str, library: _FunctionLibrary, seen: Set[str]) -> bool:
  """Whether the graph's function `name` (if it is one) writes a variable."""
  if name in seen:
    return False
  seen.add(name)
  function = library.get(name)
  # In a function's body an op may also be a call of another function by its name.
  return bool(function) and any(_writes(node.op, node.attr, library, seen)
                                or _function_writes(node.op, library, seen)
                                for node in function.node_def)


def _own_model_fn(info: models.ModelInfo, features: Dict[str, tf.Tensor],
                  labels: Optional[tf.Tensor], mode: str, params: Mapping[str, Any],
                  config: Optional[tf.estimator.RunConfig]) -> tf.estimator.EstimatorSpec:
  """A full model_fn's EstimatorSpec, checked for what predict, the report and export use."""
  accepts_config = "config" in inspect.signature(info.logits_fn).parameters
  call = (lambda: info.logits_fn(features, labels, mode, params, config)) if accepts_config \
      else (lambda: info.logits_fn(features, labels, mode, params))
  spec = _build(info, call, params)
  if not isinstance(spec, tf.estimator.EstimatorSpec):
    raise UsageError(f"--model={info.name} returned a {type(spec).__name__}; a model_fn "
                     "returns a tf.estimator.EstimatorSpec")
  if mode == ModeKeys.PREDICT:
    missing = {"classes", "probabilities"} - set(spec.predictions or {})
    if missing:
      raise UsageError(f"--model={info.name}'s PREDICT predictions lack "
                       f"{', '.join(sorted(missing))}; return classes (int [batch]) and "
                       "probabilities ([batch, n_classes]) for predict, the report and export")
    if "classify" not in (spec.export_outputs or {}):  # TF Serving's classify, as ours have
      outputs = head.export_outputs(spec.predictions, params["n_classes"],
                                    params.get("class_names"))
      spec = spec._replace(export_outputs={**outputs, **(spec.export_outputs or {})})
  return spec
