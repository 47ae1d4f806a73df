"""Carries out one run from a RunSpec: plan it once, check model_dir, then do its mode."""

import contextlib
import json
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

from mnist_estimator import portable
from mnist_estimator.common import causes
from mnist_estimator.common import runlog
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import stream
from mnist_estimator.estimator import checkpoints
from mnist_estimator.estimator import export as export_lib
from mnist_estimator.estimator import hooks as hooks_lib
from mnist_estimator.estimator import interrupts
from mnist_estimator.estimator import checkpoint_shapes as record_lib
from mnist_estimator.estimator import weights
from mnist_estimator.head import model_fn as model_fn_lib
from mnist_estimator.inputs import input_fns
from mnist_estimator.run import contract
from mnist_estimator.run import evaluation
from mnist_estimator.run import guard
from mnist_estimator.run import header
from mnist_estimator.run import plan as plan_lib
from mnist_estimator.run import history
from mnist_estimator.run import spec as spec_lib


# Streamed test images the exports are checked on: decoded into memory for the check.
_STREAMED_CHECK = 2000


def estimator_for(spec, data):
  """The Estimator a run of `spec` on `data` would use (for callers that predict with it)."""
  return plan_lib.estimator(plan_lib.make(spec, data))


def train_input_fn(spec, data):
  return input_fns.make_input_fn(spec.input, data.x_train, data.y_train, spec.batch_size,
                                 train=True, seed=spec.seed, augment=spec.augment,
                                 cache_decoded=spec.cache_decoded)


# The test (or validation) set's input_fn, as evaluate and the report read it.
eval_input_fn = evaluation.eval_input_fn
evaluate = evaluation.evaluate
format_metrics = evaluation.format_metrics


def train_hooks(plan, stream=None):
  """The training hooks of a run, by name (estimator.hooks.train_hooks, and the record).

  In a cluster only the chief writes the steps/s summaries.
  """
  spec = plan.spec
  hooks = hooks_lib.train_hooks(spec.log_every_n_iter, spec.batch_size, spec.log_tensors,
                                spec.model_dir if plan.chief else None, spec.profile_steps,
                                spec.steps, stream)
  hooks["record"] = record_lib.RecordHook(spec.model_dir, plan.record)
  return hooks


@contextlib.contextmanager
def _training(plan, progress):
  """Turns a NaN loss into a UsageError; records time and speed in model_dir/train_stats.json."""
  spec = plan.spec
  start = time.time()
  try:
    yield
    interrupts.check()  # a signal stopped training: say so, exit 130/143
  except tf.compat.v1.train.NanLossDuringTrainingError:
    raise UsageError(f"the loss became NaN while training {spec.model}; lower "
                     f"--learning_rate (now {spec.learning_rate}); checkpoints before "
                     "the failure are kept") from None
  finally:
    interrupts.restore()  # whatever ended training (check() already did on success)
  if progress.steps_per_sec and plan.chief:  # something was trained
    rate = float(np.median(progress.steps_per_sec))
    stats = {"seconds": round(time.time() - start, 2), "steps_per_sec": round(rate, 2),
             "images_per_sec": round(rate * spec.batch_size, 1), "batch_size": spec.batch_size,
             "target_step": spec.steps}
    with open(os.path.join(spec.model_dir, "train_stats.json"), "w") as f:
      json.dump(stats, f, indent=2)


def train(plan, estimator):
  """Trains until global step spec.steps (a finished run is not trained again)."""
  hooks = train_hooks(plan)
  with _training(plan, hooks["progress"]):
    estimator.train(train_input_fn(plan.spec, plan.data), hooks=list(hooks.values()),
                    max_steps=plan.spec.steps)


def show_weights(plan, estimator):
  """Lists the checkpoint's variables; saves chosen ones (.npz) and draws them (PNG) on request."""
  spec, data = plan.spec, plan.data
  rows = weights.list_variables(estimator)
  print(weights.format_table(rows))
  # Which copy: the raw weights are saved and drawn; with an EMA the model runs on the other.
  copy = ("the raw layer weights; evaluate, predict and export use their moving averages"
          if any(kind == "average" for _, _, kind in rows) else "the layer weights")
  if spec.weights_out:
    names = weights.save(estimator, spec.weights_out, spec.weights_names)
    print(f"wrote {len(names)} arrays ({copy}) to {spec.weights_out}")
  if spec.weights_png_dir:
    from mnist_estimator.artifacts import weight_pictures  # pylint: disable=g-import-not-at-top  # matplotlib
    arrays = {name: estimator.get_variable_value(name)
              for name, _, kind in rows if kind == "layer"}
    paths = weight_pictures.draw(arrays, data.image_shape, spec.weights_png_dir,
                                 spec.weights_names, data.n_classes)
    print(f"drew {len(paths)} pictures ({copy}) in {spec.weights_png_dir}")
  return {}


def export(plan, estimator):
  """Exports the latest checkpoint to spec.export_dir/<timestamp> in each --export_format.

  Returns:
    {format name: path}: the SavedModel version folder, the files beside it.
  """
  spec, data = plan.spec, plan.data
  if not spec.export_dir:
    raise UsageError("--mode=export needs --export_dir=DIR for the SavedModel")
  path = export_lib.export(estimator, spec.export_dir, data.image_shape, data.standardize,
                           plan.record["data"])
  if tuple(spec.export_format) == (portable.SAVED_MODEL,):
    print(f"exported SavedModel: {path}")
    return {portable.SAVED_MODEL: path}
  from mnist_estimator.portable import exports  # pylint: disable=g-import-not-at-top  # converters
  from mnist_estimator.portable import verify  # pylint: disable=g-import-not-at-top
  shape = data.image_shape
  sample = np.asarray(verify.representative(data.x_train, spec.representative_examples,
                                            spec.seed or 0))  # streamed images: decoded now
  count = len(data.y_test) if isinstance(data.x_test, np.ndarray) else _STREAMED_CHECK
  test = (verify.serving_inputs(np.asarray(data.x_test[:count]), shape, data.standardize),
          data.y_test[:count])
  return exports.export_formats(
      path, spec.export_format, verify.serving_inputs(sample, shape, data.standardize), test,
      spec.verify_export)


def _exported(files):
  """A run's result keys for `files`: "export" (the SavedModel, else the first file), "exports"."""
  return {"export": files.get(portable.SAVED_MODEL) or next(iter(files.values())),
          "exports": files}


def train_and_evaluate(plan, estimator):
  """tf.estimator.train_and_evaluate on the validation set, then the test set once.

  Evaluations follow checkpoints: with spec.eval_every_steps every N steps, else tf.estimator's
  default of at most every 600 s. Each evaluates the validation set (the test set where the
  data has none), prints a line, and feeds early stopping (spec.early_stopping_steps),
  model_dir/export/best (highest accuracy) and export/latest; TensorBoard shows them as
  "eval_validation". The final evaluation, and the report, are on the test set.
  """
  spec, data = plan.spec, plan.data
  split, name = ("validation", "validation") if data.has_validation else ("test", None)
  count = len(data.y_val if data.has_validation else data.y_test)
  hooks = train_hooks(plan)
  if spec.early_stopping_steps:
    hooks["early_stopping"] = tf.estimator.experimental.stop_if_no_increase_hook(
        estimator, "accuracy", max_steps_without_increase=spec.early_stopping_steps,
        eval_dir=estimator.eval_dir(name), run_every_secs=None,
        run_every_steps=spec.eval_every_steps or 100)
  train_spec = tf.estimator.TrainSpec(train_input_fn(spec, data), max_steps=spec.steps,
                                      hooks=list(hooks.values()))
  evaluator = plan.config.task_type == "evaluator"
  describe = lambda metrics: format_metrics(metrics, count, data.name, split)
  # An evaluator task polls for new checkpoints every throttle_secs: at 0 it spun a core
  # (and logged a warning per turn) while waiting; locally 0 evaluates at every checkpoint.
  eval_spec = tf.estimator.EvalSpec(
      eval_input_fn(spec, data, split=split), steps=None, name=name,
      throttle_secs=2 if evaluator else 0, start_delay_secs=0,
      exporters=export_lib.exporters(data.image_shape, data.standardize, describe,
                                     export_lib.assets_extra(estimator, plan.record["data"]),
                                     plan.record["data"]))
  with _training(plan, hooks["progress"]):
    # Locally: (metrics, export results); a cluster task returns None.
    metrics = (tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec) or [None])[0]
  # The test set once, at the end, with the report: locally, or on the evaluator of a
  # cluster (the chief's session would need workers that have already left).
  if not ((plan.local and plan.chief) or evaluator):
    return metrics
  if data.has_validation or not metrics:
    return evaluate(plan, estimator)
  if spec.report:  # the last evaluation was of the test set already
    evaluation.write_eval_report(plan, estimator)
  return metrics


def _train(plan, estimator):
  train(plan, estimator)
  return {"metrics": evaluate(plan, estimator)}


# --mode -> what it does: fn(plan, estimator) -> dict of what it produced.
MODES = {
    "train": _train,
    "evaluate": lambda plan, est: {"metrics": evaluate(plan, est)},
    "train_and_evaluate": lambda plan, est: {"metrics": train_and_evaluate(plan, est)},
    "predict": lambda plan, est: {"predictions": evaluation.predict(plan, est)},
    "weights": show_weights,
    "export": lambda plan, est: _exported(export(plan, est)),
}
assert tuple(MODES) == spec_lib.MODES, "spec.MODES lists the modes for --mode"


@contextlib.contextmanager
def _source_changed(plan):
  """A checkpoint that no longer restores after a model of yours changed: says so."""
  try:
    yield
  except (model_fn_lib.CheckpointMismatch, tf.errors.NotFoundError,
          tf.errors.InvalidArgumentError, ValueError) as e:
    old = (plan.found or {}).get("source_sha256")
    new = plan.record.get("source_sha256")
    if not old or not new or old == new:
      raise
    info = plan.model
    cause = (e.differences if isinstance(e, model_fn_lib.CheckpointMismatch)
             else causes.tf_error_line(getattr(e, "message", None) or str(e)))
    raise UsageError(f"{info.source} changed since {plan.spec.model_dir} was trained (SHA-256 "
                     f"{old[:12]}... there, {new[:12]}... now) and its checkpoint no longer "
                     f"restores ({cause}); train into a new --model_dir, or restore the old "
                     "source") from e


@contextlib.contextmanager
def _stream_errors(data):
  """A streamed image that no longer reads or decodes: one UsageError naming the file."""
  try:
    yield
  except tf.errors.OpError as e:
    streamed = [x for x in (data.x_train, data.x_val, data.x_test)
                if isinstance(x, stream.FileImages)]
    if not streamed:
      raise
    every = stream.FileImages(sum((x.paths for x in streamed), ()), streamed[0].decoding)
    raise stream.explain(every, e) from e


def run(spec, data=None):
  """Carries out spec.mode. Returns a dict of what the run produced (for callers and tests).

  Args:
    spec: a RunSpec.
    data: the datasets.Dataset to use; None loads spec.dataset from spec.data_dir.

  Raises:
    UsageError: for anything the user can fix (data, model_dir, flags).
  """
  if spec.mode not in MODES:
    raise UsageError(f"unknown --mode {spec.mode!r}; choose from: {', '.join(MODES)}")
  spec = spec.replace(model_dir=spec.model_dir or
                      spec_lib.default_model_dir(spec.model, spec.dataset))
  spec, adopted = contract.adopt(spec, record_lib.read(spec.model_dir))
  opening = header.opening(spec, adopted)
  # Your own data may take a while to decode (and says so): the opening comes first. A
  # built-in set loads in a moment: an error about the flags stays the only line.
  early = spec_lib.own_data(spec.dataset)
  for line in opening if early else ():
    print(line, flush=True)
  if data is None:
    data = plan_lib.load_data(spec)
  plan = plan_lib.make(spec, data)
  spec, data = plan.spec, plan.data
  if tuple(spec.export_format) != (portable.SAVED_MODEL,) and not spec.export_dir:
    raise UsageError(f"--export_format={','.join(spec.export_format)} needs --export_dir=DIR: "
                     "the files go beside the SavedModel version written there")
  with guard.model_dir(plan) as fresh:  # lock, checkpoint integrity
    if plan.training and fresh and plan.found is None:
      record_lib.write(spec.model_dir, plan.record)  # a new model_dir is this model's
    estimator = plan_lib.estimator(plan)
    if not plan.training:
      checkpoints.require(spec.model_dir)
    log_path = runlog.attach(spec.model_dir, plan.log_name)
    for line in opening:
      if not early:
        print(line)
      logging.info(line)
    for line in header.header(spec, data, log_path, plan.precision.header(),
                              plan.model.describe(), plan.remapped,
                              header.extra_lines(plan)):
      print(line)
      logging.info(line)
    if plan.training and plan.chief:
      history.write_flags(spec)
      history.write_hparams(spec)
    with _source_changed(plan), _stream_errors(data):
      result = {"model_dir": spec.model_dir, **MODES[spec.mode](plan, estimator)}
    # In a cluster the chief alone exports, so one run leaves one SavedModel.
    if spec.export_dir and plan.training and plan.chief:
      result.update(_exported(export(plan, estimator)))
    if plan.training and plan.chief:
      print(f"checkpoints and TensorBoard curves: {spec.model_dir} "
            f"(tensorboard --logdir {spec.model_dir})")
    return result
