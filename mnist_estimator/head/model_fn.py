"""The tf.estimator model_fn of every model: its logits through the shared head, per mode."""

import inspect

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


def model_fn(features, labels, mode, params, config=None):
  """The tf.estimator model_fn of every model, registered or given by path.

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
      shape, or raises while its graph is built (a UserCodeError with its frames).
  """
  info = models.get_model(params["model"])
  if info.kind == "model_fn":
    spec = _own_model_fn(info, features, labels, mode, params, config)
  elif mode != ModeKeys.TRAIN:  # always float32: what the SavedModel computes
    spec = head.build_spec(_logits(info, info.logits_fn, features, mode, params), labels, mode,
                           params)
  else:
    logits_fn = info.logits_fn
    if params.get("train_precision") == "bf16":
      logits_fn = lambda f, m, p: bf16.train_logits(info.logits_fn, f, m, p)
    spec = head.build_spec(_logits(info, logits_fn, features, mode, params), labels, mode,
                           params)
  _check_checkpoint_shapes(config)
  if mode != ModeKeys.TRAIN:
    return spec
  tf.identity(spec.loss, name=LOSS_NAME)
  summaries.add_train_summaries(layers.image_input(features, params))
  chief = config is None or config.is_chief
  hook = summaries.heavy_summary_hook(params.get("histogram_steps"),
                                      config.model_dir if config and chief else None)
  return spec._replace(training_hooks=list(spec.training_hooks) + [hook]) if hook else spec


class CheckpointMismatch(UsageError):
  """model_dir's checkpoint holds variables of other shapes than this graph's."""


def _check_checkpoint_shapes(config):
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
    raise CheckpointMismatch(f"--model_dir {model_dir} holds a checkpoint of another network "
                             f"({'; '.join(differ[:3])}); use another --model_dir or the "
                             "network it was trained with")


def _shape_text(image_shape):
  return "x".join(map(str, image_shape))


def _build(info, call, params):
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


def _logits(info, logits_fn, features, mode, params):
  """A logits function's output, checked to be [batch, n_classes]."""
  logits = _build(info, lambda: logits_fn(features, mode, params), params)
  want = params["n_classes"]
  shape = getattr(logits, "shape", None)
  if shape is None or shape.rank != 2 or (shape[-1] is not None and shape[-1] != want):
    got = ("no tensor" if shape is None else
           f"shape {shape.as_list()}" if shape.rank is not None else "a tensor of unknown rank")
    raise UsageError(f"--model={info.name} returned {got}; a logits function returns "
                     f"[batch, n_classes] = [batch, {want}] (n_classes from the data set)")
  return logits


def _own_model_fn(info, features, labels, mode, params, config):
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
