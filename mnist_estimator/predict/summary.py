"""What predict prints once labels are known: accuracy, per-class recall, the confusion table."""

from typing import Any, Dict, Iterator, Sequence

import numpy as np

from mnist_estimator.artifacts import report as report_lib

_MAX_CONFUSION = 30  # classes: a wider confusion table would not fit a terminal
_CORNER = "true \\ predicted"


def build(labels: np.ndarray, classes: np.ndarray, probabilities: np.ndarray,
          class_names: Sequence[str]) -> Dict[str, Any]:
  """The evaluation report's metrics of these predictions (artifacts/report.build_report).

  Returns:
    {"count", "accuracy", "loss", "per_class" (class, name, support, precision, recall, f1),
    "macro_f1", "confusion_matrix" (rows true, columns predicted), "class_names"}.
  """
  names = [str(name) for name in class_names]
  report = report_lib.build_report(labels, classes, probabilities, len(names), names)
  return dict(report, class_names=names)


def text_lines(report: Dict[str, Any]) -> Iterator[str]:
  """The accuracy line, a row per class (support, precision, recall, F1), the confusion."""
  yield f"accuracy {report['accuracy']:.4f} on {report['count']} images"
  yield from report_lib.format_table(report).splitlines()[1:]  # its headline says the same
  yield from confusion_lines(report["confusion_matrix"], report["class_names"])


def confusion_lines(matrix: Sequence[Sequence[int]], names: Sequence[str]) -> Iterator[str]:
  """The confusion matrix as text: a row per true class, a column per predicted class."""
  if len(names) > _MAX_CONFUSION:
    yield (f"confusion matrix: {len(names)} classes are too many to print; --json holds it")
    return
  width = max([len(name) for name in names] + [len(str(int(np.max(matrix))))])
  first = max(len(_CORNER), *(len(name) for name in names))
  yield "confusion matrix (rows: true class, columns: predicted class)"
  yield f"{_CORNER:<{first}}  " + "  ".join(f"{name:>{width}}" for name in names)
  for name, row in zip(names, matrix):
    yield f"{name:<{first}}  " + "  ".join(f"{int(count):>{width}}" for count in row)
