"""The evaluation report: per-class metrics, confusion matrix and worst errors as JSON and PNGs."""

import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data.dataset import Images

_MIN_PROBABILITY = 1e-12  # clip before log: a confident wrong 0.0 would make the loss infinite
_DPI = 100


def _check_inputs(labels: npt.ArrayLike, classes: npt.ArrayLike, probabilities: npt.ArrayLike,
                  n_classes: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Returns labels, classes (int64 [N]) and probabilities (float64 [N, n_classes]), validated."""
  labels = np.asarray(labels).astype(np.int64).reshape(-1)
  classes = np.asarray(classes).astype(np.int64).reshape(-1)
  probabilities = np.asarray(probabilities, dtype=np.float64)
  if len(labels) == 0:
    raise UsageError("the evaluation report got 0 examples; evaluate on a non-empty test set")
  if classes.shape != labels.shape or probabilities.shape != (len(labels), n_classes):
    raise ValueError(f"labels {labels.shape}, classes {classes.shape} and probabilities "
                     f"{probabilities.shape} do not describe the same {len(labels)} examples "
                     f"of {n_classes} classes")
  for what, values in (("label", labels), ("predicted class", classes)):
    bad = np.flatnonzero((values < 0) | (values >= n_classes))
    if bad.size:
      raise UsageError(f"{what} {values[bad[0]]} at index {bad[0]} is outside [0, {n_classes}); "
                       "the data set and the model's number of classes disagree")
  return labels, classes, probabilities


def _ratio(numerator: npt.ArrayLike, denominator: npt.ArrayLike) -> np.ndarray:
  """numerator / denominator elementwise, 0.0 where the denominator is 0 (undefined metric)."""
  numerator = np.asarray(numerator, dtype=np.float64)
  denominator = np.asarray(denominator, dtype=np.float64)
  out = np.zeros_like(numerator)
  np.divide(numerator, denominator, out=out, where=denominator > 0)
  return out


def build_report(labels: npt.ArrayLike, classes: npt.ArrayLike, probabilities: npt.ArrayLike,
                 n_classes: int, class_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
  """Computes accuracy, loss, per-class precision/recall/F1 and the confusion matrix.

  Args:
    labels: int array [N], the true classes.
    classes: int array [N], the predicted classes.
    probabilities: float array [N, n_classes], the softmax outputs.
    n_classes: the number of classes.
    class_names: optional sequence of n_classes names; default "0", "1", ...

  Returns:
    A JSON-serialisable dict with "count", "accuracy", "loss" (mean -log p[label]), "per_class"
    (a list of {"class", "name", "support", "precision", "recall", "f1"}), "macro_f1" and
    "confusion_matrix" (rows = true label, columns = predicted). Undefined precision, recall or
    F1 (no predictions or no support) is 0.0. macro_f1 averages the classes that occur as a label
    or a prediction, as scikit-learn does, so a class absent from both does not count as F1 0.

  Raises:
    UsageError: no examples, labels or predictions outside [0, n_classes), or a wrong number of
      class names.
    ValueError: the arrays' shapes disagree (a caller's bug, not the user's).
  """
  labels, classes, probabilities = _check_inputs(labels, classes, probabilities, n_classes)
  names = [str(i) for i in range(n_classes)] if class_names is None else list(class_names)
  if len(names) != n_classes:
    raise UsageError(f"{len(names)} class names were given for {n_classes} classes; "
                     f"give exactly {n_classes} names")
  cm = np.bincount(labels * n_classes + classes, minlength=n_classes ** 2)
  cm = cm.reshape(n_classes, n_classes)
  true_positives, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
  precision = _ratio(true_positives, predicted)
  recall = _ratio(true_positives, support)
  f1 = _ratio(2 * precision * recall, precision + recall)
  present = (support + predicted) > 0
  picked = np.clip(probabilities[np.arange(len(labels)), labels], _MIN_PROBABILITY, None)
  per_class = [{"class": i, "name": names[i], "support": int(support[i]),
                "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i])}
               for i in range(n_classes)]
  return {
      "count": int(len(labels)),
      "accuracy": float(np.mean(labels == classes)),
      "loss": float(np.mean(-np.log(picked))),
      "per_class": per_class,
      "macro_f1": float(np.mean(f1[present])),
      "confusion_matrix": cm.tolist(),
  }


def worst_errors(labels: npt.ArrayLike, classes: npt.ArrayLike, probabilities: npt.ArrayLike,
                 k: int = 25) -> np.ndarray:
  """Returns the indices of misclassified examples, the most confidently wrong first.

  Args:
    labels: int array [N], the true classes.
    classes: int array [N], the predicted classes.
    probabilities: float array [N, n_classes].
    k: at most this many indices are returned.

  Returns:
    An int64 array of at most k indices into the N examples, ordered by the probability of the
    (wrong) predicted class, highest first; ties keep the example order.
  """
  labels = np.asarray(labels).reshape(-1)
  classes = np.asarray(classes).astype(np.int64).reshape(-1)
  probabilities = np.asarray(probabilities)
  wrong = np.flatnonzero(labels != classes)
  confidence = probabilities[wrong, classes[wrong]]
  # Stable sort of the negated confidence: highest first, equal ones in example order.
  order = np.argsort(-confidence, kind="stable")
  return wrong[order][:max(int(k), 0)].astype(np.int64)


def format_table(report: Mapping[str, Any]) -> str:
  """Formats a build_report() dict as a headline and one aligned row per class.

  Args:
    report: the dict build_report returns.

  Returns:
    The text, without a trailing newline.
  """
  lines = [f"accuracy {report['accuracy']:.4f} on {report['count']} images, "
           f"loss {report['loss']:.4f}, macro F1 {report['macro_f1']:.4f}"]
  rows = report["per_class"]
  name_width = max([len("name")] + [len(row["name"]) for row in rows])
  class_width = max([len("class")] + [len(str(row["class"])) for row in rows])
  lines.append(f"{'class':>{class_width}}  {'name':<{name_width}}  {'support':>7}  "
               f"{'precision':>9}  {'recall':>6}  {'F1':>6}")
  for row in rows:
    lines.append(f"{row['class']:>{class_width}}  {row['name']:<{name_width}}  "
                 f"{row['support']:>7}  {row['precision']:>9.4f}  {row['recall']:>6.4f}  "
                 f"{row['f1']:>6.4f}")
  return "\n".join(lines)


def pyplot() -> Any:
  """matplotlib's pyplot, headless; imported only when a picture is drawn (0.35 s)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")  # headless: no display on CI machines or servers
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _confusion_png(report: Mapping[str, Any], path: str) -> None:
  """Draws the confusion matrix with its counts in the cells."""
  plt = pyplot()
  import matplotlib.colors as mcolors  # pylint: disable=g-import-not-at-top
  cm = np.asarray(report["confusion_matrix"])
  n = len(cm)
  names = [row["name"] for row in report["per_class"]]
  side = min(4.0 + 0.6 * n, 16.0)
  fig, ax = plt.subplots(figsize=(side + 1.5, side), dpi=_DPI)
  # A square-root scale: with ~1000 images per class on the diagonal, linear colours would leave
  # the few errors off the diagonal (the interesting cells) indistinguishable from 0.
  norm = mcolors.PowerNorm(gamma=0.5, vmin=0, vmax=max(int(cm.max()), 1))
  image = ax.imshow(cm, cmap="Blues", norm=norm)
  fontsize = max(5, min(10, int(120 / n)))
  for (row, col), count in np.ndenumerate(cm):
    dark = norm(count) > 0.6  # white text on the dark cells
    ax.text(col, row, str(count), ha="center", va="center", fontsize=fontsize,
            color="white" if dark else "black")
  tilt = max(map(len, names)) > 2  # long names (Fashion-MNIST's) would overlap when upright
  ax.set_xticks(range(n), names, rotation=45 if tilt else 0, ha="right" if tilt else "center")
  ax.set_yticks(range(n), names)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  ax.set_title(f"confusion matrix ({report['count']} images, accuracy {report['accuracy']:.4f})")
  fig.colorbar(image, ax=ax, label="images")
  fig.savefig(path, dpi=_DPI, bbox_inches="tight")
  plt.close(fig)


def _channel0(image: npt.ArrayLike) -> np.ndarray:
  """One image as imshow takes it: [H, W] for one channel, [H, W, 3] for RGB."""
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[-1] == 3:
    return image
  return image[..., 0] if image.ndim == 3 else image


def _draw_example(ax: Any, image: np.ndarray) -> None:
  """An image (gray or RGB), or a window of a series as one line a feature.

  A series' windows are standardised floats (below 0 or above 1); images are uint8 or
  floats in 0..1.
  """
  if image.dtype != np.uint8 and image.ndim == 2 and (image.min() < 0 or image.max() > 1):
    ax.plot(image, linewidth=0.8)  # weather: 5 standardised features over the weeks
    return
  if image.ndim == 3:  # RGB
    ax.imshow(image, interpolation="nearest")
    return
  # uint8 pixels have a fixed range; float ones are scaled per image.
  limits = {"vmin": 0, "vmax": 255} if image.dtype == np.uint8 else {}
  ax.imshow(image, cmap="gray", interpolation="nearest", **limits)


def error_rows(labels: np.ndarray, classes: np.ndarray, probabilities: np.ndarray,
               indices: np.ndarray, names: Sequence[str],
               files: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
  """eval_report.json's worst errors: [{"index", "file" (with files), "label", "label_name",
  "predicted", "predicted_name", "probability"}], one per index of `worst_errors`.
  """
  return [{"index": int(i), **({} if files is None else {"file": str(files[i])}),
           "label": int(labels[i]), "label_name": names[labels[i]],
           "predicted": int(classes[i]), "predicted_name": names[classes[i]],
           "probability": float(probabilities[i, classes[i]])} for i in indices]


def _short(path: str, width: int = 20) -> str:
  """A file's base name for a picture's title, cut in the middle if long."""
  name = os.path.basename(str(path))
  return name if len(name) <= width else f"{name[:9]}...{name[-8:]}"


def _worst_png(images: Images, labels: np.ndarray, classes: np.ndarray,
               probabilities: np.ndarray, indices: np.ndarray, path: str,
               names: Optional[Sequence[str]] = None,
               files: Optional[Sequence[str]] = None) -> None:
  """Draws the chosen misclassified images (or windows of a series) in a grid, or a note."""
  plt = pyplot()
  if len(indices) == 0:
    fig = plt.figure(figsize=(4, 2), dpi=_DPI)
    fig.text(0.5, 0.5, "no misclassified images", ha="center", va="center", fontsize=14)
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return
  cols = math.ceil(math.sqrt(len(indices)))
  rows = math.ceil(len(indices) / cols)
  # ~1.6 inches a cell leaves room for the title; capped so k=100 still makes a sane file.
  cell = min(1.6, 16.0 / cols)
  height = cell * rows + 0.5
  # At least 4.5 inches wide so the headline fits over one or two images.
  fig, axes = plt.subplots(rows, cols, figsize=(max(cell * cols, 4.5), height), dpi=_DPI,
                           squeeze=False)
  # A fixed layout: constrained layout took over a second for 25 images.
  fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.5 / height, wspace=0.1,
                      hspace=0.25)
  for ax in axes.flat:
    ax.axis("off")
  for ax, index in zip(axes.flat, indices):
    _draw_example(ax, _channel0(images[index]))
    predicted = classes[index]
    true_name, predicted_name = ((labels[index], predicted) if names is None
                                 else (names[labels[index]], names[predicted]))
    where = "" if files is None else f"\n{_short(files[index])}"  # which file to look at
    # As text above the axes, not set_title: placing titles measured every hidden axis
    # (0.6 of the 1.4 s this picture took).
    ax.text(0.5, 1.02, f"true {true_name} / pred {predicted_name} "
            f"({probabilities[index, predicted]:.2f}){where}", transform=ax.transAxes,
            ha="center", va="bottom", fontsize=8 if names is None else 6)
  fig.suptitle(f"the {len(indices)} most confident of {int(np.sum(labels != classes))} errors",
               fontsize=11)
  fig.savefig(path, dpi=_DPI)
  plt.close(fig)


def write_report(report: Mapping[str, Any], images: Images, labels: npt.ArrayLike,
                 classes: npt.ArrayLike, probabilities: npt.ArrayLike, out_dir: str,
                 k: int = 25, files: Optional[Sequence[str]] = None) -> Dict[str, str]:
  """Writes eval_report.json, confusion_matrix.png and worst_errors.png into out_dir.

  eval_report.json is `report` with "worst_errors": the k most confident errors (see
  `error_rows`: index, file, true and predicted class id and name, probability).

  Args:
    report: the dict build_report returns for these examples.
    images: the N evaluated images, uint8 [N, H, W, C] or float [N, H, W] / [N, H, W, C];
      channel 0 is drawn.
    labels: int array [N], the true classes.
    classes: int array [N], the predicted classes.
    probabilities: float array [N, n_classes].
    out_dir: output directory, created if needed.
    k: how many of the most confident errors to list and draw.
    files: the N examples' file paths (a folder's test images), same order as labels, or
      None; then each error names its file (in the JSON and under its picture).

  Returns:
    {"json": path, "confusion_matrix": path, "worst_errors": path}.

  Raises:
    UsageError: out_dir cannot be created.
    ValueError: images (or files) and labels differ in number (a caller's bug, not the
      user's).
  """
  labels = np.asarray(labels).astype(np.int64).reshape(-1)
  classes = np.asarray(classes).astype(np.int64).reshape(-1)
  probabilities = np.asarray(probabilities, dtype=np.float64)
  if len(images) != len(labels) or (files is not None and len(files) != len(labels)):
    raise ValueError(f"{len(images)} images, {'no' if files is None else len(files)} files "
                     f"but {len(labels)} labels")
  try:
    os.makedirs(out_dir, exist_ok=True)
  except OSError as e:
    raise UsageError(f"cannot create the report directory {out_dir}: {e.strerror or e}; "
                     "choose a writable directory") from None
  indices = worst_errors(labels, classes, probabilities, k)
  paths = {name: os.path.join(out_dir, file) for name, file in (
      ("json", "eval_report.json"), ("confusion_matrix", "confusion_matrix.png"),
      ("worst_errors", "worst_errors.png"))}
  names = [row["name"] for row in report["per_class"]]
  errors = error_rows(labels, classes, probabilities, indices, names, files)
  with open(paths["json"], "w") as f:
    json.dump(dict(report, worst_errors=errors), f, indent=1)
    f.write("\n")
  _confusion_png(report, paths["confusion_matrix"])
  _worst_png(images, labels, classes, probabilities, indices, paths["worst_errors"], names,
             files)
  return paths
