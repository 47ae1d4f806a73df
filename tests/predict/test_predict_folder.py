"""predict on folders: class folders as labels, accuracy, recall and the confusion table."""

import io
import json
import os

import helpers
import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.predict import folders
from mnist_estimator.predict import image_files
from mnist_estimator.predict import main as predict
from mnist_estimator.predict import model as predict_model
from mnist_estimator.predict import summary

DIGITS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def export_dir(trained):
  """The export base dir of conftest's linear model."""
  return trained[0].export_dir


def write_png(path, pixels):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tf.io.write_file(str(path), tf.io.encode_png(pixels))
  return str(path)


@pytest.fixture(scope="module")
def digits(tmp_path_factory, sample):
  """DIR/<digit>/*.png: 8 test images each of 0, 1, 7 and 9 (and what the sample says)."""
  root = tmp_path_factory.mktemp("digits")
  chosen = np.concatenate([np.flatnonzero(sample.y_test == d)[:8] for d in (0, 1, 7, 9)])
  for i in chosen:
    write_png(root / str(sample.y_test[i]) / f"img{i:04d}.png", sample.x_test[i])
  (root / "7" / "README.txt").write_text("not an image\n")  # ignored, and noted
  write_png(root / "1" / ".hidden.png", sample.x_test[0])  # hidden: skipped
  # In folder order (class ids sorted, then names): what predict reads.
  order = sorted(chosen, key=lambda i: (sample.y_test[i], f"img{i:04d}.png"))
  first = str(root / str(sample.y_test[order[0]]) / f"img{order[0]:04d}.png")
  return str(root), sample.x_test[order], sample.y_test[order].astype(np.int64), first


def test_class_folders_give_accuracy_recall_and_confusion(export_dir, digits, capsys):
  root, images, labels, first = digits
  expected, _ = predict_model.predict(predict_model.load_model(export_dir), images)
  out = io.StringIO()
  result = predict.predict_files(export_dir, [root], max_lines=2, out=out)
  np.testing.assert_array_equal(result["labels"], labels)
  np.testing.assert_array_equal(result["classes"], expected)
  right = int(np.sum(expected == labels))
  assert 16 < right < 32  # a few mistakes, so the table has something to show
  lines = out.getvalue().splitlines()
  assert lines[0].startswith(f"{first}  class ") and lines[0].endswith("  label 0")
  assert lines[2] == "... 30 more"
  assert lines[3] == f"accuracy {right / 32:.4f} on 32 images"
  assert result["accuracy"] == pytest.approx(right / 32)
  # A row per class: class, name, support, precision, recall, F1.
  rows = {line.split()[0]: line.split() for line in lines[5:15]}
  for digit in (0, 1, 7, 9):
    recall = np.mean(expected[labels == digit] == digit)
    assert rows[str(digit)][2] == "8" and rows[str(digit)][4] == f"{recall:.4f}"
  assert rows["3"][2] == "0"
  assert lines[15] == "confusion matrix (rows: true class, columns: predicted class)"
  assert lines[16].split() == ["true", "\\", "predicted"] + DIGITS
  table = {line.split()[0]: [int(n) for n in line.split()[1:]] for line in lines[17:27]}
  for digit in DIGITS:
    want = np.bincount(expected[labels == int(digit)], minlength=10).tolist()
    assert table[digit] == want, digit
  assert len(lines) == 27
  assert "note: ignored 1 file in the folders that are no images (.txt 1)" in \
      capsys.readouterr().err


def test_json_holds_the_summary(export_dir, digits):
  root, _, labels, _ = digits
  out = io.StringIO()
  result = predict.predict_files(export_dir, [root], as_json=True, out=out)
  rows = [json.loads(line) for line in out.getvalue().splitlines()]
  assert len(rows) == 33
  assert rows[0]["label"] == 0 and rows[0]["label_name"] == "0"
  final = rows[-1]
  assert final["count"] == 32 and final["accuracy"] == pytest.approx(result["accuracy"])
  assert final["class_names"] == DIGITS
  matrix = np.zeros([10, 10], int)
  np.add.at(matrix, (labels, result["classes"]), 1)
  assert final["confusion_matrix"] == matrix.tolist()
  assert [row["recall"] for row in final["per_class"]] == pytest.approx(
      [np.mean(result["classes"][labels == d] == d) if d in labels else 0.0
       for d in range(10)])


def test_a_subfolder_that_is_not_a_class_is_refused(export_dir, sample, tmp_path):
  write_png(tmp_path / "3" / "a.png", sample.x_test[0])
  write_png(tmp_path / "misc" / "b.png", sample.x_test[1])
  with pytest.raises(UsageError, match=r"misc is not a class of the model \(its classes: "
                                       r"0, 1, 2, .*9\), though 3/ beside it is; .* "
                                       r"--folder_labels=no"):
    predict.predict_files(export_dir, [str(tmp_path)], out=io.StringIO())
  out = io.StringIO()
  result = predict.predict_files(export_dir, [str(tmp_path)], folder_labels="no", out=out)
  assert result["accuracy"] is None and result["count"] == 2
  assert "accuracy" not in out.getvalue()


def test_a_folder_without_class_folders_predicts_without_accuracy(export_dir, sample,
                                                                    tmp_path):
  paths = [write_png(tmp_path / "2023" / "jan" / "x.png", sample.x_test[0]),
           write_png(tmp_path / "2023" / "y.PNG", sample.x_test[1]),
           write_png(tmp_path / "z.png", sample.x_test[2])]
  write_png(tmp_path / ".cache" / "w.png", sample.x_test[3])  # a hidden folder: skipped
  (tmp_path / "notes.md").write_text("# my digits\n")
  out = io.StringIO()
  result = predict.predict_files(export_dir, [str(tmp_path)], out=out)
  assert result["accuracy"] is None and result["report"] is None and result["count"] == 3
  lines = out.getvalue().splitlines()
  assert [line.split("  ")[0] for line in lines] == paths
  assert not any("accuracy" in line or "confusion" in line for line in lines)


@pytest.mark.parametrize("layout, args, match", [
    ({"3/a.png": 0, "b.png": 1}, {}, r"b.png is beside the class folders of .*; move it"),
    ({"a/b.png": 0}, {"folder_labels": "yes"},
     r"a is not a class of the model .*; with --folder_labels=yes every subfolder"),
    ({"b.png": 0}, {"folder_labels": "yes"}, "has no class subfolders, which "
                                             "--folder_labels=yes needs"),
    ({"3/notes.txt": None}, {}, "holds no PNG, JPEG.* images; pass a folder of images"),
    ({"3/a.png": 0}, {"labels": "y.npy"}, r"--labels=.*y.npy and the class folders of .* "
                                          "both give labels"),
    ({"3/a.png": 0}, {"extra": "loose.png"}, r"the class folders of .* label its images but "
                                             r".*loose.png has no labels"),
    ({}, {"folder_labels": "maybe"}, "unknown --folder_labels=maybe; choose from: auto, yes"),
])
def test_bad_folders_are_usage_errors(export_dir, sample, tmp_path, layout, args, match):
  root = tmp_path / "root"
  root.mkdir()
  for name, index in layout.items():
    if index is None:
      (root / name).parent.mkdir(parents=True, exist_ok=True)
      (root / name).write_text("x")
    else:
      write_png(root / name, sample.x_test[index])
  np.save(tmp_path / "y.npy", np.array([3]))
  paths = [str(root)] + ([write_png(tmp_path / args["extra"], sample.x_test[5])]
                         if "extra" in args else [])
  with pytest.raises(UsageError, match=match):
    predict.predict_files(export_dir, paths, out=io.StringIO(),
                          labels=str(tmp_path / args["labels"]) if "labels" in args else None,
                          folder_labels=args.get("folder_labels", "auto"))


def test_expand_follows_a_symlink_loop_once(tmp_path, sample):
  write_png(tmp_path / "d" / "a.png", sample.x_test[0])
  os.symlink(tmp_path / "d", tmp_path / "d" / "again")
  found = folders.expand([str(tmp_path / "d")], DIGITS)
  assert found.paths == [str(tmp_path / "d" / "a.png")] and found.labels is None


def test_reading_many_files_reports_progress_and_keeps_order(sample, tmp_path):
  paths = [write_png(tmp_path / f"{i:03d}.png", sample.x_test[i]) for i in range(300)]
  paths.insert(150, str(tmp_path / "x.npy"))
  np.save(paths[150], sample.x_test[:2])
  done = []
  files = image_files.load_files(paths, (28, 28, 1), progress=done.append)
  assert done == list(range(1, 302))
  assert [f.path for f in files] == paths and len(files[150].images) == 2
  np.testing.assert_array_equal(files[299].images[0], sample.x_test[298] / np.float32(255))


def test_confusion_lines_align_names_and_counts():
  lines = list(summary.confusion_lines([[12, 0], [3, 140]], ["cat", "sea lion"]))
  assert lines[1:] == ["true \\ predicted       cat  sea lion",
                       "cat                     12         0",
                       "sea lion                 3       140"]
  assert list(summary.confusion_lines(np.zeros([31, 31], int), [str(i) for i in range(31)])) \
      == ["confusion matrix: 31 classes are too many to print; --json holds it"]


def test_command_line_on_a_folder(export_dir, digits, sample, tmp_path):
  root = digits[0]
  write_png(tmp_path / "3" / "a.png", sample.x_test[0])
  write_png(tmp_path / "misc" / "b.png", sample.x_test[1])
  good = helpers.start_module("mnist_estimator.predict", f"--saved_model={export_dir}", root,
                              "--max_lines=0", merge_stderr=False)
  # The refused folder as the command runs it (predict_files), in this process.
  code, _, err = helpers.run_predict(export_dir, str(tmp_path))
  assert code == 2 and "Traceback" not in err, err
  helpers.one_error_line(code, err, "misc is not a class of the model")
  out, err = good.communicate(timeout=300)
  assert good.returncode == 0, err
  assert out.splitlines()[1].startswith("accuracy ") and "confusion matrix" in out
