"""Training hooks: a readable progress line (and steps/s summary), the tutorial's tensor logging."""

import os
from typing import Callable, Dict, List, Mapping, Optional, Sequence, TextIO

from absl import logging
import tensorflow as tf

from mnist_estimator.common import progress
from mnist_estimator.common.errors import UsageError
from mnist_estimator.estimator import interrupts
from mnist_estimator.head import model_fn as model_fn_lib

# --log_tensors names -> graph tensor names (see head/multi_class.py).
LOG_TENSORS = {
    "probabilities": "softmax_tensor",
    "loss": "cross_entropy",
    "accuracy": "train_accuracy",
    "learning_rate": "optimizer/learning_rate",
    "classes": "classes",
}


class ProgressHook(tf.compat.v1.train.SessionRunHook):
  """Shows progress (progress.Progress) and logs `step N: loss, accuracy, lr, steps/s`.

  With a model_dir it also writes TensorBoard's `global_step/sec` at each logged line;
  it replaces StepCounterHook, which fetches the global step on every step.
  """

  def __init__(self, display: progress.Progress, model_dir: Optional[str] = None) -> None:
    self._display = display
    self._model_dir = model_dir
    # name: tensor (or its name); built in begin(), once the graph exists
    self._fetches: Optional[Dict[str, object]] = None
    self._iter = 0
    self._logged = 0  # rates already written as summaries

  @property
  def steps_per_sec(self) -> List[float]:
    """Every rate measured, for train_stats.json, benchmarks and tests."""
    return self._display.rates

  def begin(self) -> None:
    # The head's tensors; a full model_fn of the user's has only its loss (LOSS_NAME).
    graph = tf.compat.v1.get_default_graph()
    found = lambda *names: next((f"{n}:0" for n in names if _has(graph, n)), None)
    step = found(model_fn_lib.STEP_NAME) or tf.compat.v1.train.get_global_step()
    fetches = {"step": step,
               "loss": found("cross_entropy", model_fn_lib.LOSS_NAME),
               "accuracy": found("train_accuracy"), "lr": found("optimizer/learning_rate")}
    self._fetches = {key: value for key, value in fetches.items() if value is not None}

  def before_run(self, run_context: tf.compat.v1.train.SessionRunContext,
                 ) -> Optional[tf.compat.v1.train.SessionRunArgs]:
    del run_context
    self._iter += 1
    if self._iter % self._display.fetch_every == 0 or self._iter == 1:
      return tf.compat.v1.train.SessionRunArgs(self._fetches)
    return None

  def after_run(self, run_context: tf.compat.v1.train.SessionRunContext,
                run_values: tf.compat.v1.train.SessionRunValues) -> None:
    del run_context
    values = run_values.results
    if not values:
      return
    text = self._display.update(values["step"], values.get("loss"), values.get("accuracy"))
    logging.info("%s, lr %s", text, values.get("lr"))
    if len(self._display.rates) > self._logged:
      self._logged = len(self._display.rates)
      self._write_rate(values["step"], self._display.rates[-1])

  def end(self, session: tf.compat.v1.Session) -> None:
    del session
    self._display.close()

  def _write_rate(self, step: int, rate: float) -> None:
    if self._model_dir:
      summary = tf.compat.v1.Summary(
          value=[tf.compat.v1.Summary.Value(tag="global_step/sec", simple_value=rate)])
      tf.compat.v1.summary.FileWriterCache.get(self._model_dir).add_summary(summary, step)


class CheckpointSaver(tf.compat.v1.train.CheckpointSaverHook):
  """tf.estimator's checkpoint hook, less graph.pbtxt: the graph as text took 0.1-0.3 s of
  each run's start (Python's protobuf text printer). TensorBoard's graph, and each
  checkpoint's .meta (tf.compat.v1.train.import_meta_graph), are written as before.
  """

  def after_create_session(self, session: tf.compat.v1.Session,
                           coord: tf.train.Coordinator) -> None:
    del coord
    global_step = session.run(self._global_step_tensor)
    if self._save_graph_def:
      saver = self._get_saver()
      graph = tf.compat.v1.get_default_graph()
      self._summary_writer.add_graph(graph)
      self._summary_writer.add_meta_graph(tf.compat.v1.train.export_meta_graph(
          graph_def=graph.as_graph_def(add_shapes=True),
          saver_def=saver.saver_def if saver else None))
    self._save(session, global_step)  # the state at the start, as tf.estimator saves it
    self._timer.update_last_triggered_step(global_step)


def _has(graph: tf.Graph, name: str) -> bool:
  try:
    graph.get_operation_by_name(name)
    return True
  except KeyError:
    return False


def train_hooks(every_n_iter: int, batch_size: int, log_tensors: Sequence[str],
                model_dir: Optional[str], profile_steps: Optional[int] = None,
                total_steps: Optional[int] = None,
                stream: Optional[TextIO] = None) -> Dict[str, tf.estimator.SessionRunHook]:
  """The training hooks of a run, by name: progress, signals, and profile and log_tensors.

  Args:
    every_n_iter: a progress line every this many steps (off a terminal).
    batch_size: for images/s.
    log_tensors: names from LOG_TENSORS to log with a LoggingTensorHook (the
      tutorial logs "probabilities").
    model_dir: where the steps/s summary goes (TensorBoard's global_step/sec); None
      for no summaries (a non-chief cluster task).
    profile_steps: every this many steps, write a Chrome trace of one step to
      model_dir/profile/timeline-<step>.json (chrome://tracing, Perfetto).
    total_steps: the target global step, for the percentage and ETA.
    stream: where progress is shown (default stdout; a live line on a terminal).

  Returns:
    {name: hook}: "progress" (its steps_per_sec feed train_stats.json), "signals" (stop
    at the next step on SIGINT/SIGTERM), and "profile", "log_tensors" when asked for.

  Raises:
    UsageError: for a name not in LOG_TENSORS.
  """
  display = progress.Progress(total_steps or 0, batch_size, every_n_iter, stream)
  hooks = {"progress": ProgressHook(display, model_dir), "signals": interrupts.StopOnSignal()}
  unknown = sorted(set(log_tensors) - set(LOG_TENSORS))
  if unknown:
    raise UsageError(f"unknown --log_tensors {', '.join(unknown)}; choose from: "
                     f"{', '.join(sorted(LOG_TENSORS))}")
  if profile_steps and model_dir:
    # ProfilerHook opens a v1 FileWriter when constructed, which refuses eager mode.
    with tf.Graph().as_default():
      hooks["profile"] = tf.estimator.ProfilerHook(
          save_steps=profile_steps, output_dir=os.path.join(model_dir, "profile"))
  if log_tensors:
    hooks["log_tensors"] = tf.estimator.LoggingTensorHook(
        tensors={name: LOG_TENSORS[name] for name in log_tensors}, every_n_iter=every_n_iter)
  return hooks


class EvalProgressHook(tf.estimator.SessionRunHook):
  """A progress line on stderr while an evaluation of many images takes a while."""

  def __init__(self, count: int, batch_size: int, split: str = "test") -> None:
    from mnist_estimator.data import images  # pylint: disable=g-import-not-at-top
    self._count, self._batch_size, self._done = count, batch_size, 0
    self._show = images.progress(count, verb=f"evaluating the {split} set's")

  def after_run(self, run_context: tf.compat.v1.train.SessionRunContext,
                run_values: tf.compat.v1.train.SessionRunValues) -> None:
    del run_context, run_values
    self._done = min(self._count, self._done + self._batch_size)
    self._show(self._done)


# {step: {metric: value}} of the evaluations in an eval dir -> why to stop, or None.
StopRule = Callable[[Mapping[int, Mapping[str, float]]], Optional[str]]


def accuracy_reached(target: float) -> StopRule:
  """Stop when the latest evaluation's accuracy is at least target (>=, not >)."""
  def rule(metrics: Mapping[int, Mapping[str, float]]) -> Optional[str]:
    step = max(metrics, default=None)
    if step is None or metrics[step].get("accuracy", -1.0) < target:
      return None
    return (f"accuracy {metrics[step]['accuracy']:.4f} at step {step:,} reached "
            f"--stop_at_accuracy={target:g}")
  return rule


def accuracy_stalled(steps: int) -> StopRule:
  """Stop when the best accuracy is `steps` or more steps older than the latest evaluation."""
  def rule(metrics: Mapping[int, Mapping[str, float]]) -> Optional[str]:
    if not metrics:
      return None
    best = max(sorted(metrics), key=lambda step: metrics[step].get("accuracy", -1.0))
    latest = max(metrics)
    if latest - best < steps:
      return None
    return (f"accuracy has not improved for {latest - best:,} steps (best "
            f"{metrics[best]['accuracy']:.4f} at step {best:,}; --early_stopping_steps={steps})")
  return rule


def read_evaluations(eval_dir: str) -> Dict[int, Dict[str, float]]:
  """{step: {metric: value}} of the evaluations written to eval_dir (none: {})."""
  from tensorflow_estimator.python.estimator import early_stopping  # pylint: disable=g-import-not-at-top  # read_eval_metrics is not exported
  return dict(early_stopping.read_eval_metrics(eval_dir)) if tf.io.gfile.isdir(eval_dir) else {}


def should_stop(rule: StopRule, eval_dir: str, stream: Optional[TextIO] = None) -> bool:
  """rule on eval_dir's evaluations; a reason to stop is printed as `stopping: <reason>`."""
  reason = rule(read_evaluations(eval_dir))
  if reason:
    print(f"stopping: {reason}", file=stream, flush=True)
  return bool(reason)


def _events_size(eval_dir: str) -> int:
  """The bytes of eval_dir's event files (0 before it exists): each evaluation adds some.

  Called after every training step, so listdir and stat (about 30 us on a 2-core EPYC) rather
  than tf.io.gfile.glob (about 230 us there).
  """
  if not tf.io.gfile.isdir(eval_dir):
    return 0
  return sum(tf.io.gfile.stat(os.path.join(eval_dir, name)).length
             for name in tf.io.gfile.listdir(eval_dir) if name.startswith("events.out.tfevents."))


class StopOnEvaluation(tf.compat.v1.train.SessionRunHook):
  """Stops training when a new evaluation in eval_dir makes `rule` give a reason (printed).

  tf.estimator's early-stopping hooks keep their signal in a variable that then sits in every
  checkpoint, so a run resumed with them from a checkpoint made without them failed to
  restore; they also check every N steps or seconds, which can fall just before the
  evaluation of that step and so stop an interval late. This hook has no variable and looks
  after every step, cheaply (the event files' size; it reads them only when they grew).
  training.train_hooks puts the checkpoint hook, whose saves trigger train_and_evaluate's
  evaluations, before it, so it stops at the step evaluated. Local runs only: a cluster's
  workers follow tf.estimator's variable.
  """

  def __init__(self, eval_dir: str, rule: StopRule, stream: Optional[TextIO] = None) -> None:
    self._eval_dir, self._rule, self._stream = eval_dir, rule, stream
    self._seen = -1

  def begin(self) -> None:
    # Evaluations already there (an earlier run's) are history, not news.
    self._seen = _events_size(self._eval_dir)

  def after_run(self, run_context: tf.compat.v1.train.SessionRunContext,
                run_values: tf.compat.v1.train.SessionRunValues) -> None:
    del run_values
    size = _events_size(self._eval_dir)
    if size == self._seen:
      return
    self._seen = size
    if should_stop(self._rule, self._eval_dir, self._stream):
      run_context.request_stop()
