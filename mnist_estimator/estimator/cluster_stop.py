"""Early stopping in a cluster: the stop signal kept out of checkpoints; an evaluator that ends."""

import os
import time
from typing import Optional, Tuple

import tensorflow as tf
from tensorflow_estimator.python.estimator import training as estimator_training

from mnist_estimator.estimator import checkpoints

# The chief leaves it in model_dir when its training has ended well (at max_steps or early);
# the evaluator ends once it has evaluated the last checkpoint after that.
CHIEF_DONE = ".cluster-chief-done"

# The variable tf.estimator's early-stopping hooks share through the parameter servers: the
# chief's sets it, the workers' read it (tensorflow_estimator early_stopping.py).
_SCOPE, _NAME = "signal_early_stopping", "STOP"


class StopSignal(tf.compat.v1.train.SessionRunHook):
  """tf.estimator's cluster stop variable, made before its hooks ask for it, in no collection.

  tf.estimator makes it a global variable, so every checkpoint holds it, and a job resumed
  with --stop_at_accuracy or --early_stopping_steps from a checkpoint made without them
  failed to restore it. Made here first (its hooks get it by name, AUTO_REUSE), no Saver
  writes or expects it; each task sets it to False only where no task has yet, so a worker
  that starts after the chief stopped still reads True. Put it before those hooks.
  """

  def __init__(self) -> None:
    self._initialized: Optional[tf.Tensor] = None
    self._initializer: Optional[tf.Operation] = None

  def begin(self) -> None:
    with tf.compat.v1.variable_scope(_SCOPE, reuse=tf.compat.v1.AUTO_REUSE):
      stop = tf.compat.v1.get_variable(
          _NAME, shape=[], dtype=tf.bool, trainable=False, collections=[],
          initializer=tf.compat.v1.constant_initializer(False))
    self._initialized = tf.compat.v1.is_variable_initialized(stop)
    self._initializer = stop.initializer

  def after_create_session(self, session: tf.compat.v1.Session,
                           coord: tf.train.Coordinator) -> None:
    del coord
    if not session.run(self._initialized):
      session.run(self._initializer)


def _stamp(path: str) -> Optional[Tuple[int, int]]:
  try:
    info = os.stat(path)
  except OSError:
    return None
  return info.st_mtime_ns, info.st_size


class UntilTrainingEnds(estimator_training._ContinuousEvalListener):  # pylint: disable=protected-access
  """Ends a cluster's evaluator once the chief has finished and its last checkpoint is evaluated.

  tf.estimator's evaluator waits for a checkpoint at max_steps, which a job stopped early
  never writes: it waited until the launcher gave up (--grace_secs) and failed the job. The
  chief writes `marker` (CHIEF_DONE, mark_chief_done) when its training has ended.
  """

  def __init__(self, model_dir: str, marker: str) -> None:
    self._model_dir, self._marker = model_dir, marker
    self._before = _stamp(marker)  # an earlier run's file is not this job's end
    self._evaluated: Optional[int] = None

  def after_eval(self, eval_result: estimator_training._EvalResult) -> bool:  # pylint: disable=protected-access
    if eval_result.status == estimator_training._EvalStatus.EVALUATED:  # pylint: disable=protected-access
      self._evaluated = int(eval_result.metrics[tf.compat.v1.GraphKeys.GLOBAL_STEP])
    if _stamp(self._marker) == self._before:
      return True  # the chief is still training
    last = checkpoints.latest_step(self._model_dir)
    return last is None or self._evaluated is None or self._evaluated < last


def mark_chief_done(model_dir: str) -> None:
  """The chief's word to the evaluator that training has ended well (UntilTrainingEnds)."""
  with open(os.path.join(model_dir, CHIEF_DONE), "w") as f:
    f.write(f"{time.time()}\n")


def run_evaluator(estimator: tf.estimator.Estimator, train_spec: tf.estimator.TrainSpec,
                  eval_spec: tf.estimator.EvalSpec) -> None:
  """A cluster's evaluator task, as tf.estimator.train_and_evaluate runs it, ending with the job.

  tf.estimator 2.15 is the last (TensorFlow 2.16 removed it), so the private executor it
  runs the task with, which takes the listener, will not change under us.
  """
  estimator_training._TrainingExecutor(  # pylint: disable=protected-access
      estimator, train_spec, eval_spec,
      continuous_eval_listener=UntilTrainingEnds(
          estimator.model_dir, os.path.join(estimator.model_dir, CHIEF_DONE))).run_evaluator()
