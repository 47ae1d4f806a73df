"""Carries out one run from a RunSpec: plan it once, check model_dir, then do its mode."""

import contextlib
from typing import Any, Callable, Dict, Iterator, Optional

from absl import logging
import tensorflow as tf

from mnist_estimator import portable
from mnist_estimator.common import causes
from mnist_estimator.common import runlog
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import stream
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.estimator import checkpoints
from mnist_estimator.estimator import checkpoint_shapes as record_lib
from mnist_estimator.head import model_fn as model_fn_lib
from mnist_estimator.run import contract
from mnist_estimator.run import evaluation
from mnist_estimator.run import guard
from mnist_estimator.run import header
from mnist_estimator.run import plan as plan_lib
from mnist_estimator.run import history
from mnist_estimator.run import outputs
from mnist_estimator.run import spec as spec_lib
from mnist_estimator.run import training


def estimator_for(spec: spec_lib.RunSpec, data: Dataset) -> tf.estimator.Estimator:
  """The Estimator a run of `spec` on `data` would use (for callers that predict with it)."""
  return plan_lib.estimator(plan_lib.make(spec, data))


# What callers (benchmarks, tests) reach through the runner.
train_input_fn = training.train_input_fn
train_hooks = training.train_hooks
eval_input_fn = evaluation.eval_input_fn
evaluate = evaluation.evaluate
format_metrics = evaluation.format_metrics


def _train(plan: plan_lib.Plan, estimator: tf.estimator.Estimator) -> Dict[str, Any]:
  training.train(plan, estimator)
  return {"metrics": evaluate(plan, estimator)}


# --mode -> what it does: fn(plan, estimator) -> dict of what it produced.
MODES: Dict[str, Callable[[plan_lib.Plan, tf.estimator.Estimator], Dict[str, Any]]] = {
    "train": _train,
    "evaluate": lambda plan, est: {"metrics": evaluate(plan, est)},
    "train_and_evaluate": lambda plan, est: {"metrics": training.train_and_evaluate(plan, est)},
    "predict": lambda plan, est: {"predictions": evaluation.predict(plan, est)},
    "weights": outputs.show_weights,
    "export": lambda plan, est: outputs.exported(outputs.export(plan, est)),
}
assert tuple(MODES) == spec_lib.MODES, "spec.MODES lists the modes for --mode"


@contextlib.contextmanager
def _source_changed(plan: plan_lib.Plan) -> Iterator[None]:
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
def _stream_errors(data: Dataset) -> Iterator[None]:
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


def run(spec: spec_lib.RunSpec, data: Optional[Dataset] = None) -> Dict[str, Any]:
  """Carries out spec.mode. Returns a dict of what the run produced (for callers and tests).

  Args:
    spec: a RunSpec.
    data: the datasets.Dataset to use; None loads spec.dataset from spec.data_dir.

  Raises:
    UsageError: for anything the user can fix (data, model_dir, flags).
  """
  if spec.mode not in MODES:
    raise UsageError(f"unknown --mode {spec.mode!r}; choose from: {', '.join(MODES)}")
  model_dir = spec.model_dir or spec_lib.default_model_dir(spec.model, spec.dataset)
  spec = spec.replace(model_dir=model_dir)
  spec, adopted = contract.adopt(spec, record_lib.read(model_dir))
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
  assert spec.model_dir is not None, "plan.make fills model_dir in"
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
    resumed = checkpoints.latest_step(spec.model_dir) if plan.training else None
    for line in header.header(spec, data, log_path, plan.precision.header(),
                              plan.model.describe(), plan.remapped, header.extra_lines(plan),
                              resumed or 0):
      print(line)
      logging.info(line)
    if plan.training and plan.chief:
      history.write_flags(spec)
      history.write_hparams(spec)
    with _source_changed(plan), _stream_errors(data):
      result = {"model_dir": spec.model_dir, **MODES[spec.mode](plan, estimator)}
    # In a cluster the chief alone exports, so one run leaves one SavedModel.
    if spec.export_dir and plan.training and plan.chief:
      result.update(outputs.exported(outputs.export(plan, estimator)))
    if plan.training and plan.chief:
      print(f"checkpoints and TensorBoard curves: {spec.model_dir} "
            f"(tensorboard --logdir {spec.model_dir})")
    return result
