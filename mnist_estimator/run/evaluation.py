"""What evaluation shows: the metrics line, the eval report, the predictions of --mode=predict."""

import os

import numpy as np

from mnist_estimator.estimator import hooks as hooks_lib
from mnist_estimator.inputs import input_fns
from mnist_estimator.run import contract


def eval_input_fn(spec, data, with_labels=True, split="test"):
  """The input_fn of the test (or "validation") set; without labels for predict."""
  images, labels = (data.x_val, data.y_val) if split == "validation" else (data.x_test,
                                                                           data.y_test)
  return input_fns.make_input_fn(spec.input, images, labels, spec.eval_batch_size,
                                 train=False, with_labels=with_labels,
                                 cache_decoded=spec.cache_decoded)


def evaluate(plan, estimator):
  """Evaluates on every test example once, prints the metrics (and report); returns them."""
  data = plan.data
  hooks = [hooks_lib.EvalProgressHook(len(data.y_test), plan.spec.eval_batch_size,
                                      "test")]
  metrics = estimator.evaluate(eval_input_fn(plan.spec, data), hooks=hooks)
  print(format_metrics(metrics, len(data.y_test), data.name))
  if plan.spec.report:
    write_eval_report(plan, estimator)
  return metrics


def write_eval_report(plan, estimator):
  """Predicts the test set and writes model_dir/eval_report/ (JSON, confusion matrix, errors)."""
  from mnist_estimator.artifacts import report as report_lib  # pylint: disable=g-import-not-at-top  # matplotlib: only to draw
  spec, data = plan.spec, plan.data
  predictions = list(estimator.predict(eval_input_fn(spec, data, with_labels=False),
                                       yield_single_examples=False))
  classes = np.concatenate([p["classes"] for p in predictions])
  probabilities = np.concatenate([p["probabilities"] for p in predictions])
  report = report_lib.build_report(data.y_test, classes, probabilities, data.n_classes,
                                   data.class_names)
  out_dir = os.path.join(spec.model_dir, "eval_report")
  paths = report_lib.write_report(report, data.x_test, data.y_test, classes, probabilities,
                                  out_dir, files=data.test_files)
  print(report_lib.format_table(report))
  print(f"eval report: {paths['json']}")
  return report


def format_metrics(metrics, count, dataset_name, split="test"):
  """One line: accuracy, loss and global step of an evaluation of the test (or validation) set."""
  return (f"eval on {count} {dataset_name} {split} images: accuracy "
          f"{metrics['accuracy']:.4f}, loss {metrics['loss']:.4f}, global_step "
          f"{metrics['global_step']}")


def predict(plan, estimator):
  """Predicts the first spec.num_predictions test images; prints and returns the rows."""
  spec, data = plan.spec, plan.data
  count = min(spec.num_predictions, len(data.x_test))
  input_fn = input_fns.make_input_fn(spec.input, data.x_test[:count], None,
                                     spec.eval_batch_size, train=False)
  rows = []
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
