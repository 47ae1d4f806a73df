"""Training: its input_fn and hooks, a NaN loss, the speed record; train, train_and_evaluate."""

import contextlib
import json
import os
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, TextIO

import numpy as np
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.estimator import checkpoint_shapes as record_lib
from mnist_estimator.estimator import cluster_stop
from mnist_estimator.estimator import export as export_lib
from mnist_estimator.estimator import hooks as hooks_lib
from mnist_estimator.estimator import interrupts
from mnist_estimator.inputs import input_fns
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.run import evaluation
from mnist_estimator.run import spec as spec_lib

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.run.plan import Plan

eval_input_fn = evaluation.eval_input_fn
evaluate = evaluation.evaluate
format_metrics = evaluation.format_metrics


def train_input_fn(spec: spec_lib.RunSpec, data: Dataset) -> input_fns.InputFn:
  return input_fns.make_input_fn(spec.input, data.x_train, data.y_train, spec.batch_size,
                                 train=True, seed=spec.seed, augment=spec.augment,
                                 cache_decoded=spec.cache_decoded)


def train_hooks(plan: "Plan",
                stream: Optional[TextIO] = None) -> Dict[str, tf.estimator.SessionRunHook]:
  """The training hooks of a run, by name (estimator.hooks.train_hooks, and the record).

  In a cluster only the chief writes the steps/s summaries. The chief checkpoints with
  hooks_lib.CheckpointSaver (first, where tf.estimator puts its own hook), except for a whole
  model_fn of yours: its Scaffold may carry a Saver only tf.estimator's hook is handed.
  """
  spec, config = plan.spec, plan.config
  assert spec.model_dir is not None, "plan.make fills model_dir in"
  hooks: Dict[str, tf.estimator.SessionRunHook] = {}
  if (plan.chief and plan.model.kind == "logits"
      and (config.save_checkpoints_steps or config.save_checkpoints_secs)):
    hooks["checkpoints"] = hooks_lib.CheckpointSaver(
        spec.model_dir, save_secs=config.save_checkpoints_secs,
        save_steps=config.save_checkpoints_steps, save_graph_def=config.checkpoint_save_graph_def)
  hooks.update(hooks_lib.train_hooks(spec.log_every_n_iter, spec.batch_size, spec.log_tensors,
                                     spec.model_dir if plan.chief else None, spec.profile_steps,
                                     spec.steps, stream))
  hooks["record"] = record_lib.RecordHook(spec.model_dir, plan.record)
  return hooks


@contextlib.contextmanager
def _training(plan: "Plan", progress: hooks_lib.ProgressHook) -> Iterator[None]:
  """Turns a NaN loss into a UsageError; records time and speed in model_dir/train_stats.json."""
  spec = plan.spec
  assert spec.model_dir is not None, "plan.make fills model_dir in"
  start = time.time()
  try:
    yield
    interrupts.check(saved=plan.chief)  # a signal stopped training: say so, exit 130/143
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


def train(plan: "Plan", estimator: tf.estimator.Estimator) -> None:
  """Trains until global step spec.steps (a finished run is not trained again)."""
  hooks = train_hooks(plan)
  with _training(plan, hooks["progress"]):
    estimator.train(train_input_fn(plan.spec, plan.data), hooks=list(hooks.values()),
                    max_steps=plan.spec.steps)


def _stop_hooks(plan: "Plan", estimator: tf.estimator.Estimator,
                eval_dir: str) -> Dict[str, tf.estimator.SessionRunHook]:
  """Early stopping (spec.early_stopping_steps) and stop_at_accuracy, on eval_dir's evaluations.

  Locally hooks_lib.StopOnEvaluation (no variable in the checkpoints, no interval's delay); in
  a cluster tf.estimator's hooks, whose stop variable the workers follow (even those that
  start after the chief stopped), after cluster_stop.StopSignal, which keeps that variable out
  of the checkpoints.
  """
  spec = plan.spec
  rules = {}
  if spec.early_stopping_steps:
    rules["early_stopping"] = hooks_lib.accuracy_stalled(spec.early_stopping_steps)
  if spec.stop_at_accuracy is not None:
    rules["stop_at_accuracy"] = hooks_lib.accuracy_reached(spec.stop_at_accuracy)
  if plan.local:
    return {name: hooks_lib.StopOnEvaluation(eval_dir, rule) for name, rule in rules.items()}
  hooks: Dict[str, tf.estimator.SessionRunHook] = {}
  if rules and estimator.config.train_distribute is None:  # else tf.estimator's int32 variable
    hooks["stop_signal"] = cluster_stop.StopSignal()
  hooks.update({name: tf.estimator.experimental.make_early_stopping_hook(
      estimator, lambda rule=rule: hooks_lib.should_stop(rule, eval_dir),
      run_every_secs=None, run_every_steps=spec.eval_every_steps or 100)
                for name, rule in rules.items()})
  return hooks


def _run_task(estimator: tf.estimator.Estimator, train_spec: tf.estimator.TrainSpec,
              eval_spec: tf.estimator.EvalSpec, evaluator: bool) -> Optional[Dict[str, Any]]:
  """tf.estimator.train_and_evaluate as this task: locally the metrics, in a cluster None.

  A cluster's evaluator ends once the chief has (cluster_stop.run_evaluator), which the chief
  tells when its training has ended well (cluster_stop.mark_chief_done, train_and_evaluate).
  """
  if evaluator:
    cluster_stop.run_evaluator(estimator, train_spec, eval_spec)
    return None
  return (tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec) or [None])[0]


def train_and_evaluate(plan: "Plan", estimator: tf.estimator.Estimator) -> Optional[Dict[str, Any]]:
  """tf.estimator.train_and_evaluate on the validation set, then the test set once.

  Evaluations follow checkpoints: with spec.eval_every_steps every N steps, else tf.estimator's
  default of at most every 600 s. Each evaluates the validation set (the test set where the
  data has none), prints a line, and feeds early stopping (spec.early_stopping_steps, and
  spec.stop_at_accuracy: stop at the first evaluation that reaches it),
  model_dir/export/best (highest accuracy) and export/latest; TensorBoard shows them as
  "eval_validation". The final evaluation, and the report, are on the test set.
  """
  spec, data = plan.spec, plan.data
  split, name = ("validation", "validation") if data.has_validation else ("test", None)
  count = len(data.y_val if data.has_validation and data.y_val is not None else data.y_test)
  hooks = train_hooks(plan)
  hooks.update(_stop_hooks(plan, estimator, estimator.eval_dir(name)))
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
    metrics = _run_task(estimator, train_spec, eval_spec, evaluator)
  if plan.chief and not plan.local:  # not after a signal (_training raised): the job failed
    cluster_stop.mark_chief_done(estimator.model_dir)
  # The test set once, at the end, with the report: locally, or on the evaluator of a
  # cluster (the chief's session would need workers that have already left).
  if not ((plan.local and plan.chief) or evaluator):
    return metrics
  if data.has_validation or not metrics:
    return evaluate(plan, estimator)
  evaluation.write_stats(plan, 0.0, metrics, count, within_training=True)
  if spec.report:  # the last evaluation was of the test set already
    evaluation.write_eval_report(plan, estimator)
  return metrics
