"""What evaluation shows: the metrics line, the eval report, the predictions of --mode=predict."""

import json
import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Tuple

import numpy as np

from mnist_estimator.data.dataset import Dataset
from mnist_estimator.estimator import hooks as hooks_lib
from mnist_estimator.inputs import input_fns
from mnist_estimator.run import contract
from mnist_estimator.run import spec as spec_lib

if TYPE_CHECKING:  # for the hints only
  import tensorflow as tf

  from mnist_estimator.run.plan import Plan


def eval_input_fn(spec: spec_lib.RunSpec, data: Dataset, with_labels: bool = True,
                  split: str = "test") -> input_fns.InputFn:
  """The input_fn of the test (or "validation") set; without labels for predict."""
  images, labels = (data.x_val, data.y_val) if split == "validation" else (data.x_test,
                                                                           data.y_test)
  assert images is not None, f"the data has no {split} set"
  return input_fns.make_input_fn(spec.input, images, labels, spec.eval_batch_size,
                                 train=False, with_labels=with_labels,
                                 cache_decoded=spec.cache_decoded)


def evaluate(plan: "Plan", estimator: "tf.estimator.Estimator") -> Dict[str, Any]:
  """Evaluates on every test example once, prints the metrics (and report); returns them.

  Its time and figures go to model_dir/eval_stats.json (what a time-to-accuracy counts).
  """
  data = plan.data
  hooks = [hooks_lib.EvalProgressHook(len(data.y_test), plan.spec.eval_batch_size,
                                      "test")]
  start = time.time()
  metrics = estimator.evaluate(eval_input_fn(plan.spec, data), hooks=hooks)
  write_stats(plan, time.time() - start, metrics, len(data.y_test))
  print(format_metrics(metrics, len(data.y_test), data.name))
  if plan.spec.report:
    write_eval_report(plan, estimator)
  return metrics


def write_stats(plan: "Plan", seconds: float, metrics: Mapping[str, Any], count: int,
                within_training: bool = False) -> None:
  """model_dir/eval_stats.json; within_training: train_stats.json's seconds hold its time."""
  assert plan.spec.model_dir is not None, "plan.make fills model_dir in"
  stats = {"seconds": round(seconds, 2), "examples": count,
           "accuracy": round(float(metrics["accuracy"]), 6),
           "global_step": int(metrics["global_step"]), "within_training": within_training}
  with open(os.path.join(plan.spec.model_dir, "eval_stats.json"), "w", encoding="utf-8") as f:
    json.dump(stats, f, indent=2)


def write_eval_report(plan: "Plan", estimator: "tf.estimator.Estimator") -> Dict[str, Any]:
  """Predicts the test set and writes model_dir/eval_report/ (JSON, confusion matrix, errors)."""
  from mnist_estimator.artifacts import report as report_lib  # pylint: disable=g-import-not-at-top  # matplotlib: only to draw
  spec, data = plan.spec, plan.data
  predictions = list(estimator.predict(eval_input_fn(spec, data, with_labels=False),
                                       yield_single_examples=False))
  classes = np.concatenate([p["classes"] for p in predictions])
  probabilities = np.concatenate([p["probabilities"] for p in predictions])
  report = report_lib.build_report(data.y_test, classes, probabilities, data.n_classes,
                                   data.class_names)
  assert spec.model_dir is not None, "plan.make fills model_dir in"
  out_dir = os.path.join(spec.model_dir, "eval_report")
  paths = report_lib.write_report(report, data.x_test, data.y_test, classes, probabilities,
                                  out_dir, files=data.test_files)
  print(report_lib.format_table(report))
  print(f"eval report: {paths['json']}")
  return report


def format_metrics(metrics: Mapping[str, Any], count: int, dataset_name: str,
                   split: str = "test") -> str:
  """One line: accuracy, loss and global step of an evaluation of the test (or validation) set."""
  return (f"eval on {count} {dataset_name} {split} images: accuracy "
          f"{metrics['accuracy']:.4f}, loss {metrics['loss']:.4f}, global_step "
          f"{metrics['global_step']}")


def predict(plan: "Plan", estimator: "tf.estimator.Estimator") -> List[Tuple[int, int, int, float]]:
  """Predicts the first spec.num_predictions test images; prints and returns the rows."""
  spec, data = plan.spec, plan.data
  count = min(spec.num_predictions, len(data.x_test))
  input_fn = input_fns.make_input_fn(spec.input, data.x_test[:count], None,
                                     spec.eval_batch_size, train=False)
  rows: List[Tuple[int, int, int, float]] = []  # (index, label, class, its probability)
  names = contract.class_names(data)  # a folder's names, else the class ids
  width = max(5, *(len(name) for name in names))
  print(f"{'index':>5}  {'label':>{width}}  {'class':>{width}}  probability")
  for i, pred in enumerate(estimator.predict(input_fn)):
    label = int(data.y_test[i])
    cls = int(pred["classes"])
    rows.append((i, label, cls, float(pred["probabilities"][cls])))
    print(f"{i:>5}  {names[label]:>{width}}  {names[cls]:>{width}}  {rows[-1][3]:.4f}")
  right = sum(row[1] == row[2] for row in rows)
  print(f"{right}/{count} correct")
  return rows
