"""The evaluation report: metrics against hand-computed numbers, the table, the written files."""

import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import helpers
import matplotlib.image  # pylint: disable=g-import-not-at-top
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import pytest

from mnist_estimator.artifacts import report
from mnist_estimator.common.errors import UsageError

# 8 examples of 3 classes. Confusion matrix (rows true, columns predicted):
#   [[2, 1, 0],     support   [3, 2, 3]
#    [0, 2, 0],     predicted [4, 3, 1]
#    [2, 0, 1]]     correct   [2, 2, 1]
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2])
CLASSES = np.array([0, 0, 1, 1, 1, 2, 0, 0])
PROBABILITIES = np.array([
    [0.9, 0.05, 0.05],
    [0.6, 0.3, 0.1],
    [0.3, 0.6, 0.1],  # wrong, 0.6 sure
    [0.1, 0.8, 0.1],
    [0.2, 0.7, 0.1],
    [0.1, 0.1, 0.8],
    [0.9, 0.0, 0.1],  # wrong, 0.9 sure
    [0.5, 0.2, 0.3],  # wrong, 0.5 sure
])


def test_build_report_matches_hand_computed_metrics():
  got = report.build_report(LABELS, CLASSES, PROBABILITIES, 3, class_names=["a", "b", "c"])
  assert got["count"] == 8
  assert got["accuracy"] == pytest.approx(5 / 8)
  # mean of -log [0.9, 0.6, 0.3, 0.8, 0.7, 0.8, 0.1, 0.3]
  assert got["loss"] == pytest.approx(0.7662099, abs=1e-6)
  assert got["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [2, 0, 1]]
  expected = [  # class, name, support, precision, recall, F1
      (0, "a", 3, 0.5, 2 / 3, 4 / 7),
      (1, "b", 2, 2 / 3, 1.0, 0.8),
      (2, "c", 3, 1.0, 1 / 3, 0.5),
  ]
  for row, (cls, name, support, precision, recall, f1) in zip(got["per_class"], expected):
    assert (row["class"], row["name"], row["support"]) == (cls, name, support)
    assert row["precision"] == pytest.approx(precision)
    assert row["recall"] == pytest.approx(recall)
    assert row["f1"] == pytest.approx(f1)
  assert got["macro_f1"] == pytest.approx(0.6238095)
  json.dumps(got, allow_nan=False)  # plain JSON: no numpy types, no NaN


def test_undefined_metrics_are_zero_and_absent_classes_leave_macro_f1_alone():
  # Class 2 is never predicted (precision undefined); class 3 neither occurs nor is predicted.
  probabilities = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1]])
  got = report.build_report([0, 1, 2], [0, 1, 1], probabilities, 4)
  rows = got["per_class"]
  assert [r["precision"] for r in rows] == pytest.approx([1.0, 0.5, 0.0, 0.0])
  assert [r["recall"] for r in rows] == pytest.approx([1.0, 1.0, 0.0, 0.0])
  assert [r["f1"] for r in rows] == pytest.approx([1.0, 2 / 3, 0.0, 0.0])
  assert [r["name"] for r in rows] == ["0", "1", "2", "3"]
  assert got["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
  assert not np.isnan(json.loads(json.dumps(got))["per_class"][3]["precision"])


def test_loss_clips_a_zero_probability():
  got = report.build_report([1], [0], [[1.0, 0.0]], 2)
  assert got["loss"] == pytest.approx(27.631021, abs=1e-5)  # -log(1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"labels": [0, 5]}, "label 5 at index 1"),
    ({"classes": [0, -1]}, "predicted class -1"),
    ({"class_names": ["x"]}, "1 class names were given for 3 classes"),
    ({"labels": [], "classes": [], "probabilities": np.zeros((0, 3))}, "0 examples"),
])
def test_build_report_usage_errors(kwargs, match):
  args = dict(labels=[0, 1], classes=[0, 1], probabilities=np.full((2, 3), 1 / 3), n_classes=3)
  args.update(kwargs)
  with pytest.raises(UsageError, match=match):
    report.build_report(**args)


def test_worst_errors_most_confident_first():
  np.testing.assert_array_equal(report.worst_errors(LABELS, CLASSES, PROBABILITIES), [6, 2, 7])
  np.testing.assert_array_equal(report.worst_errors(LABELS, CLASSES, PROBABILITIES, k=2), [6, 2])
  assert report.worst_errors(LABELS, LABELS, PROBABILITIES).size == 0


def test_format_table_has_headline_and_a_row_per_class():
  got = report.build_report(LABELS, CLASSES, PROBABILITIES, 3, class_names=["zero", "one", "b"])
  lines = report.format_table(got).splitlines()
  assert lines[0] == "accuracy 0.6250 on 8 images, loss 0.7662, macro F1 0.6238"
  assert lines[1].split() == ["class", "name", "support", "precision", "recall", "F1"]
  assert lines[2].split() == ["0", "zero", "3", "0.5000", "0.6667", "0.5714"]
  assert lines[3].split() == ["1", "one", "2", "0.6667", "1.0000", "0.8000"]
  assert lines[4].split() == ["2", "b", "3", "1.0000", "0.3333", "0.5000"]
  assert len(lines) == 5
  assert len({len(line) for line in lines[1:]}) == 1  # aligned columns


def _images(n, dtype):
  """n distinct 28x28 images: a bright square at a position that depends on the index."""
  images = np.zeros((n, 28, 28, 1), dtype)
  for i in range(n):
    images[i, 4 + i % 16:10 + i % 16, 6:20, 0] = 255 if dtype == np.uint8 else 1.0
  return images


def test_write_report_writes_json_and_two_pictures(tmp_path):
  got = report.build_report(LABELS, CLASSES, PROBABILITIES, 3)
  out_dir = tmp_path / "new" / "report"
  paths = report.write_report(got, _images(8, np.uint8), LABELS, CLASSES, PROBABILITIES,
                              str(out_dir), k=2)
  assert paths == {"json": str(out_dir / "eval_report.json"),
                   "confusion_matrix": str(out_dir / "confusion_matrix.png"),
                   "worst_errors": str(out_dir / "worst_errors.png")}
  with open(paths["json"]) as f:
    written = json.load(f)
  assert written.pop("worst_errors") == [
      {"index": 6, "label": 2, "label_name": "2", "predicted": 0, "predicted_name": "0",
       "probability": pytest.approx(0.9)},
      {"index": 2, "label": 0, "label_name": "0", "predicted": 1, "predicted_name": "1",
       "probability": pytest.approx(0.6)}]
  assert written == got
  helpers.read_png(paths["confusion_matrix"])
  helpers.read_png(paths["worst_errors"])
  assert not plt.get_fignums()  # every figure was closed


def test_write_report_float_images_without_channel(tmp_path):
  got = report.build_report(LABELS, CLASSES, PROBABILITIES, 3)
  images = _images(8, np.float32)[..., 0]
  paths = report.write_report(got, images, LABELS, CLASSES, PROBABILITIES, str(tmp_path))
  helpers.read_png(paths["worst_errors"])


def test_write_report_without_errors(tmp_path):
  got = report.build_report(LABELS, LABELS, PROBABILITIES, 3)
  paths = report.write_report(got, _images(8, np.uint8), LABELS, LABELS, PROBABILITIES,
                              str(tmp_path))
  with open(paths["json"]) as f:
    assert json.load(f)["worst_errors"] == []
  helpers.read_png(paths["confusion_matrix"])
  helpers.read_png(paths["worst_errors"])  # the "no misclassified images" note


def test_modules_import_neither_tensorflow_nor_matplotlib():
  # matplotlib only when a picture is drawn: it cost ~0.35 s of every command's start.
  code = ("import sys; import mnist_estimator.artifacts.report, "
          "mnist_estimator.artifacts.weight_pictures; "
          "sys.exit(any(m in sys.modules for m in ('tensorflow', 'matplotlib')))")
  assert subprocess.run([sys.executable, "-c", code], cwd=helpers.ROOT, env=helpers.cli_env(),
                        check=False).returncode == 0


def test_rgb_errors_are_drawn_in_colour(tmp_path):
  rng = np.random.RandomState(0)
  images = rng.randint(0, 255, (6, 12, 10, 3)).astype(np.uint8)
  labels = np.array([0, 1, 2, 0, 1, 2])
  classes = (labels + 1) % 3
  probabilities = np.full((6, 3), 1 / 3)
  built = report.build_report(labels, classes, probabilities, 3, ["cat", "dog", "eel"])
  paths = report.write_report(built, images, labels, classes, probabilities, str(tmp_path))
  pixels = helpers.read_png(paths["worst_errors"])
  assert ((pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.2).mean() > 0.05


def _titles(monkeypatch):
  """The titles and captions (texts on an axes) of every figure report draws, read as each is
  closed."""
  titles = []
  real = report.pyplot()

  class Recording:
    def __getattr__(self, name):
      return getattr(real, name)

    def close(self, fig):
      for ax in fig.axes:
        titles.extend([ax.get_title()] * bool(ax.get_title()) + [t.get_text() for t in ax.texts])
      real.close(fig)

  monkeypatch.setattr(report, "pyplot", Recording)
  return titles


def test_worst_errors_name_their_files_and_classes(tmp_path, monkeypatch):
  titles = _titles(monkeypatch)
  files = [f"test/{name}/img_{i:04d}.png" for i, name in
           enumerate(["cat", "cat", "cat", "dog", "dog", "eel", "eel", "eel"])]
  got = report.build_report(LABELS, CLASSES, PROBABILITIES, 3, ["cat", "dog", "eel"])
  paths = report.write_report(got, _images(8, np.uint8), LABELS, CLASSES, PROBABILITIES,
                              str(tmp_path), k=3, files=files)
  with open(paths["json"]) as f:
    errors = json.load(f)["worst_errors"]
  assert errors[0] == {"index": 6, "file": files[6], "label": 2, "label_name": "eel",
                       "predicted": 0, "predicted_name": "cat",
                       "probability": pytest.approx(0.9)}
  assert [(e["file"], e["label_name"], e["predicted_name"]) for e in errors[1:]] == [
      (files[2], "cat", "dog"), (files[7], "eel", "cat")]
  assert titles[-3:] == ["true eel / pred cat (0.90)\nimg_0006.png",
                         "true cat / pred dog (0.60)\nimg_0002.png",
                         "true eel / pred cat (0.50)\nimg_0007.png"]
  report.write_report(got, _images(8, np.uint8), LABELS, CLASSES, PROBABILITIES,
                      str(tmp_path), k=1)  # no files: names only
  assert titles[-1] == "true eel / pred cat (0.90)"
  with pytest.raises(ValueError, match="8 images, 2 files but 8 labels"):
    report.write_report(got, _images(8, np.uint8), LABELS, CLASSES, PROBABILITIES,
                        str(tmp_path), files=files[:2])
  # A long file name is cut in the middle rather than overflowing its cell.
  assert report._short("dir/a_very_long_file_name_indeed.png") == "a_very_lo...deed.png"
