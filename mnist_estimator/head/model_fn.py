"""The tf.estimator model_fn of every model: its logits through the shared head, per mode."""

import contextlib
import inspect
import warnings
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import tensorflow as tf

from mnist_estimator import models
from mnist_estimator.common.errors import UsageError
from mnist_estimator.head import bf16
from mnist_estimator.head import multi_class as head
from mnist_estimator.head import summaries
from mnist_estimator.head import updates
from mnist_estimator.models import custom
from mnist_estimator.models import layers

ModeKeys = tf.estimator.ModeKeys
# The training loss under one name for the progress hook, whatever the model (head or not).
LOSS_NAME = "mnist_estimator/loss"
# The global step read after the training step's update, for the progress hook: the variable
# fetched beside the train op was read before or after its increment ("step 99/200").
STEP_NAME = "mnist_estimator/step_done"


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
  with tf.control_dependencies([spec.train_op]):
    tf.identity(tf.compat.v1.train.get_global_step(), name=STEP_NAME)
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
    for update in updates.unrun_updates(info.name, new, logits, created):
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
