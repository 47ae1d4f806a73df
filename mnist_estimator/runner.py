"""Carries out one run from a RunSpec: the modes in MODES, each on an Estimator and a Dataset."""

import contextlib
import json
import os
import time

from absl import logging
import numpy as np
import tensorflow as tf

from mnist_estimator import console
from mnist_estimator import datasets
from mnist_estimator import estimator as est_lib
from mnist_estimator import export as export_lib
from mnist_estimator import guard
from mnist_estimator import hooks as hooks_lib
from mnist_estimator import inputs
from mnist_estimator import interrupts
from mnist_estimator import weight_pictures
from mnist_estimator import precision as precision_lib
from mnist_estimator import report as report_lib
from mnist_estimator import runlog
from mnist_estimator import runrecord
from mnist_estimator import spec as spec_lib
from mnist_estimator import weights
from mnist_estimator.errors import UsageError

def params_for(spec, data):
  """The Estimator params of `spec` on `data` (its shape, classes and size)."""
  return model_params(spec, tuple(data.image_shape), data.n_classes, len(data.y_train))


def model_params(spec, image_shape, n_classes, train_examples):
  """The Estimator params: the model's settings plus the data set's shape.

  Args:
    spec: a RunSpec.
    image_shape: (H, W, C) of the data set.
    n_classes: number of classes.
    train_examples: training set size; an lr_decay_steps of 0 means one epoch of it.
  """
  # lr_decay_steps 0 = one epoch, as seed 002 decays once per pass over the data.
  decay_steps = spec.lr_decay_steps or max(1, -(-train_examples // spec.batch_size))
  return dict(model=spec.model, image_shape=tuple(image_shape), n_classes=n_classes,
              hidden_units=list(spec.hidden_units), activation=spec.activation,
              dropout=spec.dropout, optimizer=spec.optimizer,
              learning_rate=spec.learning_rate, l2=spec.l2,
              moving_average_decay=spec.moving_average_decay,
              lr_decay_rate=spec.lr_decay_rate, lr_decay_steps=decay_steps,
              histogram_steps=spec.histogram_steps or 10 * spec.save_summary_steps)


def build(spec, data, write_record, precision=None):
  """Checks model_dir against this run and returns the Estimator.

  Args:
    spec: the RunSpec.
    data: the Dataset.
    write_record: record this run's graph in model_dir if it has no record yet.
    precision: spec.precision resolved (precision.resolve); None resolves it here.
  """
  precision = precision or precision_lib.resolve(spec.precision)
  params = dict(params_for(spec, data), train_precision=precision.train)
  est_lib.check_model_dir(spec.model_dir, params, write=write_record)
  # Evaluation follows checkpoints, so evaluating every N steps means checkpointing every N.
  checkpoint_steps = spec.eval_every_steps or spec.save_checkpoints_steps
  config = est_lib.run_config(
      spec.model_dir, seed=spec.seed, save_checkpoints_steps=checkpoint_steps,
      keep_checkpoint_max=spec.keep_checkpoint_max, save_summary_steps=spec.save_summary_steps,
      intra_op_threads=spec.intra_op_threads, inter_op_threads=spec.inter_op_threads,
      distribute=spec.distribute, precision=precision)
  if spec.distribute != "none" and spec.input != "tfdata":
    raise UsageError(f"--distribute={spec.distribute} needs --input=tfdata (numpy_input_fn "
                     "feeds one device)")
  warm_start = est_lib.warm_start_settings(spec.warm_start_from, spec.warm_start_vars)
  return est_lib.build_estimator(params, config, warm_start)


def train_input_fn(spec, data):
  return inputs.make_input_fn(spec.input, data.x_train, data.y_train, spec.batch_size,
                              train=True, seed=spec.seed)


def eval_input_fn(spec, data):
  return inputs.make_input_fn(spec.input, data.x_test, data.y_test, spec.eval_batch_size,
                              train=False)


def train(spec, data, estimator):
  """Trains until global step spec.steps (a finished run is not trained again)."""
  hooks = hooks_lib.train_hooks(spec.log_every_n_iter, spec.batch_size, spec.log_tensors,
                                spec.model_dir, spec.profile_steps, spec.steps)
  hooks += guard.train_hooks(estimator)
  with _training(spec, hooks[0]):
    estimator.train(train_input_fn(spec, data), hooks=hooks, max_steps=spec.steps)


@contextlib.contextmanager
def _training(spec, progress, write_stats=True):
  """Turns a NaN loss into a UsageError; records time and speed in model_dir/train_stats.json."""
  start = time.time()
  try:
    yield
    interrupts.check()  # a signal stopped training: say so, exit 130/143
  except tf.compat.v1.train.NanLossDuringTrainingError:
    raise UsageError(f"the loss became NaN while training {spec.model}; lower "
                     f"--learning_rate (now {spec.learning_rate}); checkpoints before "
                     "the failure are kept") from None
  if progress.steps_per_sec and write_stats:  # something was trained
    rate = float(np.median(progress.steps_per_sec))
    stats = {"seconds": round(time.time() - start, 2), "steps_per_sec": round(rate, 2),
             "images_per_sec": round(rate * spec.batch_size, 1), "batch_size": spec.batch_size,
             "target_step": spec.steps}
    with open(os.path.join(spec.model_dir, "train_stats.json"), "w") as f:
      json.dump(stats, f, indent=2)


def evaluate(spec, data, estimator):
  """Evaluates on every test example once, prints the metrics (and report); returns them."""
  metrics = estimator.evaluate(eval_input_fn(spec, data))
  print(format_metrics(metrics, len(data.y_test), data.name))
  if spec.report:
    write_eval_report(spec, data, estimator)
  return metrics


def write_eval_report(spec, data, estimator):
  """Predicts the test set and writes model_dir/eval_report/ (JSON, confusion matrix, errors)."""
  input_fn = inputs.make_input_fn(spec.input, data.x_test, None, spec.eval_batch_size,
                                  train=False)
  predictions = list(estimator.predict(input_fn, yield_single_examples=False))
  classes = np.concatenate([p["classes"] for p in predictions])
  probabilities = np.concatenate([p["probabilities"] for p in predictions])
  report = report_lib.build_report(data.y_test, classes, probabilities, data.n_classes,
                                   data.class_names)
  out_dir = os.path.join(spec.model_dir, "eval_report")
  paths = report_lib.write_report(report, data.x_test, data.y_test, classes, probabilities,
                                  out_dir)
  print(report_lib.format_table(report))
  print(f"eval report: {paths['json']}")
  return report


def format_metrics(metrics, count, dataset_name):
  """One line: accuracy, loss and global step of an evaluation."""
  return (f"eval on {count} {dataset_name} test images: accuracy {metrics['accuracy']:.4f}, "
          f"loss {metrics['loss']:.4f}, global_step {metrics['global_step']}")


def predict(spec, data, estimator):
  """Predicts the first spec.num_predictions test images; prints and returns the rows."""
  count = min(spec.num_predictions, len(data.x_test))
  images = data.x_test[:count]
  input_fn = inputs.make_input_fn(spec.input, images, None, spec.eval_batch_size,
                                  train=False)
  rows = []
  print(f"{'index':>5}  {'label':>5}  {'class':>5}  probability")
  for i, pred in enumerate(estimator.predict(input_fn)):
    label = int(data.y_test[i])
    cls = int(pred["classes"])
    rows.append((i, label, cls, float(pred["probabilities"][cls])))
    print(f"{i:>5}  {label:>5}  {cls:>5}  {rows[-1][3]:.4f}")
  right = sum(row[1] == row[2] for row in rows)
  print(f"{right}/{count} correct")
  return rows


def show_weights(spec, data, estimator):
  """Lists the checkpoint's variables; saves chosen ones (.npz) and draws them (PNG) on request."""
  rows = weights.list_variables(estimator)
  print(weights.format_table(rows))
  # Which copy: the raw weights are saved and drawn; with an EMA the model runs on the other.
  copy = ("the raw layer weights; evaluate, predict and export use their moving averages"
          if any(kind == "average" for _, _, kind in rows) else "the layer weights")
  if spec.weights_out:
    names = weights.save(estimator, spec.weights_out, spec.weights_names)
    print(f"wrote {len(names)} arrays ({copy}) to {spec.weights_out}")
  if spec.weights_png_dir:
    arrays = {name: estimator.get_variable_value(name)
              for name, _, kind in rows if kind == "layer"}
    paths = weight_pictures.draw(arrays, data.image_shape, spec.weights_png_dir,
                                 spec.weights_names, data.n_classes)
    print(f"drew {len(paths)} pictures ({copy}) in {spec.weights_png_dir}")


def _train(spec, data, estimator):
  train(spec, data, estimator)
  return {"metrics": evaluate(spec, data, estimator)}


def _export(spec, data, estimator):
  return {"export": export(spec, data, estimator)}


# --mode -> what it does: fn(spec, data, estimator) -> dict of what it produced.
MODES = {
    "train": _train,
    "evaluate": lambda spec, data, est: {"metrics": evaluate(spec, data, est)},
    "train_and_evaluate": lambda spec, data, est: {
        "metrics": train_and_evaluate(spec, data, est)},
    "predict": lambda spec, data, est: {"predictions": predict(spec, data, est)},
    "weights": lambda spec, data, est: show_weights(spec, data, est) or {},
    "export": _export,
}
MODE_NAMES = tuple(MODES)
TRAINING_MODES = ("train", "train_and_evaluate")


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
  if data is None:
    data = datasets.load(spec.dataset, spec.data_dir, window=spec.window)
  training = spec.mode in TRAINING_MODES
  precision = precision_lib.resolve(spec.precision)
  with guard.model_dir(spec, data, training) as fresh:  # lock, record, checkpoint integrity
    estimator = build(spec, data, write_record=training and fresh, precision=precision)
    if not training:
      est_lib.require_checkpoint(spec.model_dir)
    log_path = runlog.attach(spec.model_dir, _log_name(estimator.config))
    for line in console.header(spec, data, log_path, precision.header()):
      print(line)
      logging.info(line)
    if training and estimator.config.is_chief:
      runrecord.write_flags(spec)
      runrecord.write_hparams(spec)
    result = {"model_dir": spec.model_dir, **MODES[spec.mode](spec, data, estimator)}
    # In a cluster the chief alone exports, so one run leaves one SavedModel.
    if spec.export_dir and training and estimator.config.is_chief:
      result["export"] = export(spec, data, estimator)
    if training and estimator.config.is_chief:
      print(f"checkpoints and TensorBoard curves: {spec.model_dir} "
            f"(tensorboard --logdir {spec.model_dir})")
    return result


def _log_name(config):
  """One log file per process: the chief's (or a local run's) and one per other task."""
  if config.is_chief:
    return runlog.LOG_NAME
  return f"mnist_estimator-{config.task_type}{config.task_id}.log"


def export(spec, data, estimator):
  """Exports the latest checkpoint to spec.export_dir/<timestamp>; returns the path."""
  if not spec.export_dir:
    raise UsageError("--mode=export needs --export_dir=DIR for the SavedModel")
  path = export_lib.export(estimator, spec.export_dir, data.image_shape, data.standardize)
  print(f"exported SavedModel: {path}")
  return path


def train_and_evaluate(spec, data, estimator):
  """tf.estimator.train_and_evaluate with an evaluation at every checkpoint.

  With spec.eval_every_steps the checkpoints (and so the evaluations) come every N
  steps, not tf.estimator's default of at most every 600 s; spec.early_stopping_steps
  stops training once eval accuracy has not improved for that many steps. Each
  evaluation feeds model_dir/export/best (highest accuracy) and export/latest.
  """
  # In a cluster only the chief writes the steps/s summaries, stats and report.
  chief = estimator.config.is_chief
  hooks = hooks_lib.train_hooks(spec.log_every_n_iter, spec.batch_size, spec.log_tensors,
                                spec.model_dir if chief else None, spec.profile_steps,
                                spec.steps)
  hooks += guard.train_hooks(estimator)
  if spec.early_stopping_steps:
    hooks.append(tf.estimator.experimental.stop_if_no_increase_hook(
        estimator, "accuracy", max_steps_without_increase=spec.early_stopping_steps,
        run_every_secs=None, run_every_steps=spec.eval_every_steps or 100))
  train_spec = tf.estimator.TrainSpec(train_input_fn(spec, data), max_steps=spec.steps,
                                      hooks=hooks)
  evaluator = estimator.config.task_type == "evaluator"
  describe = (lambda metrics: format_metrics(metrics, len(data.y_test), data.name)
              ) if evaluator else None
  eval_spec = tf.estimator.EvalSpec(eval_input_fn(spec, data), steps=None, throttle_secs=0,
                                    start_delay_secs=0,
                                    exporters=export_lib.exporters(data.image_shape,
                                                                   data.standardize, describe))
  with _training(spec, hooks[0], write_stats=chief):
    # Locally: (metrics, export results); a cluster task returns None.
    metrics = (tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec) or [None])[0]
  if metrics:
    print(format_metrics(metrics, len(data.y_test), data.name))
  # The report predicts in this process: locally, or on the evaluator of a cluster (the
  # chief's session would need workers that have already left).
  config = estimator.config
  local = not config.cluster_spec.as_dict()
  if spec.report and ((local and chief) or config.task_type == "evaluator"):
    write_eval_report(spec, data, estimator)
  return metrics
