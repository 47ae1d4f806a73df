"""Training hooks: a readable progress line (and steps/s summary), the tutorial's tensor logging."""

import os
import time

from absl import logging
import tensorflow as tf

from mnist_estimator.errors import UsageError

# --log_tensors names -> graph tensor names (see head.py).
LOG_TENSORS = {
    "probabilities": "softmax_tensor",
    "loss": "cross_entropy",
    "accuracy": "train_accuracy",
    "learning_rate": "optimizer/learning_rate",
    "classes": "classes",
}


class ProgressHook(tf.compat.v1.train.SessionRunHook):
  """Logs `step N: loss, batch accuracy, learning rate, steps/s, images/s` every N steps.

  With a model_dir it also writes TensorBoard's `global_step/sec` at those steps; it
  replaces StepCounterHook, which fetches the global step on every step.
  """

  def __init__(self, every_n_iter, batch_size, model_dir=None):
    self._every = every_n_iter
    self._batch_size = batch_size
    self._model_dir = model_dir
    self._fetches = None  # built in begin(), once the graph exists
    self._last = None  # (step, time) of the previous line
    self._iter = 0
    self.steps_per_sec = []  # every rate logged, for benchmarks and tests

  def begin(self):
    self._fetches = {"step": tf.compat.v1.train.get_global_step(),
                     "loss": "cross_entropy:0", "accuracy": "train_accuracy:0",
                     "lr": "optimizer/learning_rate:0"}

  def before_run(self, run_context):
    del run_context
    self._iter += 1
    if self._iter % self._every == 0 or self._last is None:
      return tf.compat.v1.train.SessionRunArgs(self._fetches)
    return None

  def after_run(self, run_context, run_values):
    del run_context
    values = run_values.results
    if not values:
      return
    now = time.time()
    line = (f"step {values['step']}: loss {values['loss']:.4f}, "
            f"batch accuracy {values['accuracy']:.3f}, lr {values['lr']:.3g}")
    if self._last is not None and values["step"] > self._last[0]:
      rate = (values["step"] - self._last[0]) / (now - self._last[1])
      self.steps_per_sec.append(rate)
      line += f", {rate:.1f} steps/s ({rate * self._batch_size:.0f} images/s)"
      self._write_rate(values["step"], rate)
    logging.info(line)
    self._last = (values["step"], now)

  def _write_rate(self, step, rate):
    if self._model_dir:
      summary = tf.compat.v1.Summary(
          value=[tf.compat.v1.Summary.Value(tag="global_step/sec", simple_value=rate)])
      tf.compat.v1.summary.FileWriterCache.get(self._model_dir).add_summary(summary, step)


def train_hooks(every_n_iter, batch_size, log_tensors, model_dir, profile_steps=None):
  """Returns the training hooks for a run.

  Args:
    every_n_iter: log every this many steps.
    batch_size: for images/s.
    log_tensors: names from LOG_TENSORS to log with a LoggingTensorHook (the
      tutorial logs "probabilities").
    model_dir: where the steps/s summary goes (TensorBoard's global_step/sec); None
      for no summaries (a non-chief cluster task).
    profile_steps: every this many steps, write a Chrome trace of one step to
      model_dir/profile/timeline-<step>.json (chrome://tracing, Perfetto).

  Raises:
    UsageError: for a name not in LOG_TENSORS.
  """
  hooks = [ProgressHook(every_n_iter, batch_size, model_dir)]
  unknown = sorted(set(log_tensors) - set(LOG_TENSORS))
  if unknown:
    raise UsageError(f"unknown --log_tensors {', '.join(unknown)}; choose from: "
                     f"{', '.join(sorted(LOG_TENSORS))}")
  if profile_steps and model_dir:
    # ProfilerHook opens a v1 FileWriter when constructed, which refuses eager mode.
    with tf.Graph().as_default():
      hooks.append(tf.estimator.ProfilerHook(save_steps=profile_steps,
                                             output_dir=os.path.join(model_dir, "profile")))
  if log_tensors:
    hooks.append(tf.estimator.LoggingTensorHook(
        tensors={name: LOG_TENSORS[name] for name in log_tensors},
        every_n_iter=every_n_iter))
  return hooks
