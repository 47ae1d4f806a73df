"""The reproduction command: one real run on a small fonts file, the table and the curves."""

import json
import os
import sys

import helpers
import numpy as np

from benchmarks import paths
from benchmarks import reproduce
from mnist_estimator import flagdefs
from mnist_estimator.data import datasets


def fonts_dir(tmp_path):
  """A small data_with_labels.npz in the book's format (40 images of 36x36, labels 0..4)."""
  rng = np.random.RandomState(0)
  labels = np.repeat(np.arange(5, dtype=np.uint8), 8)
  images = (rng.rand(40, 36, 36) * 255).astype(np.uint8)
  np.savez(tmp_path / "data_with_labels.npz", images, labels)
  return str(tmp_path)


def test_every_target_has_a_flagfile_with_steps():
  for name, target in reproduce.TARGETS.items():
    spec = flagdefs.spec_from_flagfile(paths.flagfile(target.flagfile or name))
    assert spec.steps > 0 and spec.dataset == target.dataset, name


def test_run_one_reads_the_accuracy_and_the_curve(tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  row = reproduce.run_one(reproduce.TARGETS["fonts_linear"], str(out), steps=4, evals=2,
                          data_dirs={"fonts": fonts_dir(tmp_path)})
  assert "error" not in row, row
  with open(out / "fonts_linear" / "eval_report" / "eval_report.json") as f:
    assert row["measured"] == json.load(f)["accuracy"]
  assert [step for step, _ in row["curve"]] == [2, 4]
  assert row["curve"][-1][1] == row["measured"]
  png = reproduce.plot_curves([row], str(tmp_path / "curves.png"))
  assert os.path.getsize(png) > 10_000


def test_a_failed_run_is_a_row_with_the_error(tmp_path, monkeypatch):
  argv = reproduce.command(reproduce.TARGETS["fonts_linear"], "/m", 2, 1,
                           {"fonts": str(tmp_path / "missing")})
  assert f"--data_dir={tmp_path / 'missing'}" in argv and "--steps=2" in argv
  # A run that fails as main fails: its last line, the error, becomes the row (no TF here).
  failing = [sys.executable, "-c", "import sys; print('training...'); sys.exit("
             "'error: The fonts data set needs data_with_labels.npz (see --data_dir)')"]
  monkeypatch.setattr(reproduce, "command", lambda *args: failing)
  row = reproduce.run_one(reproduce.TARGETS["fonts_linear"], str(tmp_path), steps=2, evals=1,
                          data_dirs={})
  assert "data_with_labels.npz" in row["error"]
  assert "not run" in reproduce.markdown_table([row])


def test_markdown_table_marks_rows_below_the_seed():
  rows = [dict(name="cnn", dataset="mnist", steps=20000, reported=0.9707, target=0.97,
               measured=0.9702, seconds=1000.0, steps_per_sec=20.5),
          dict(name="mlp", dataset="mnist", steps=30000, reported=0.984, target=0.983,
               measured=0.98)]
  table = reproduce.markdown_table(rows).splitlines()
  assert table[0].startswith("| run | data set | steps | seed reported | target | measured")
  assert table[2] == "| cnn | mnist | 20000 | 97.07% | 97.00% | 97.02% | 1000.0 | 20.5 | ✓ |"
  assert table[3].endswith("✗ below |")


def test_weather_majority_row_is_a_baseline(tmp_path):
  target = reproduce.TARGETS["weather_majority"]
  row = reproduce.majority_row(target, {"weather": helpers.write_weather(tmp_path)})
  assert "error" not in row, row
  data = datasets.load("weather", str(tmp_path), window=52)  # weather_rnn's window
  majority = np.bincount(data.y_train).argmax()
  assert row["measured"] == np.mean(data.y_test == majority) and row["steps"] == 0
  assert row["source"].endswith(f"({data.class_names[majority]})")
  last = reproduce.markdown_table([row]).splitlines()[-1]
  assert last.endswith(f"| — | {row['measured']:.2%} |  |  | baseline |")
  missing = reproduce.majority_row(target, {"weather": str(tmp_path / "none")})
  assert "weather.npz" in missing["error"]
