"""A weather model through train, evaluate (report), predict, export and the predict command."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import weekly_series, write_weather  # pylint: disable=g-bad-import-order

from mnist_estimator.common import saved_model
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.inputs import input_fns as inputs
from mnist_estimator.predict import main as predict
from mnist_estimator.predict import model as predict_model
from mnist_estimator.run import runner
from mnist_estimator.run.spec import RunSpec

WINDOW = 4


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """(spec, data, run result) of weather_rnn trained 6 steps on a generated series, exported."""
  root = tmp_path_factory.mktemp("weather")
  data_dir = write_weather(root)
  spec = RunSpec.for_model("weather_rnn", dataset="weather", data_dir=data_dir,
                           window=WINDOW, model_dir=str(root / "m"), steps=6, batch_size=32,
                           optimizer="adam", learning_rate=0.05, eval_batch_size=100,
                           export_dir=str(root / "e"), seed=0)
  return spec, datasets.load("weather", data_dir, window=WINDOW), runner.run(spec)


def test_train_and_evaluate_report_names_the_seasons(trained):
  spec, data, result = trained
  assert result["metrics"]["global_step"] == 6
  right = result["metrics"]["accuracy"] * len(data.y_test)
  assert abs(right - round(right)) < 1e-3
  with open(os.path.join(spec.model_dir, "eval_report", "eval_report.json")) as f:
    report = json.load(f)
  assert [row["name"] for row in report["per_class"]] == ["spring", "summer", "autumn",
                                                          "winter"]
  assert os.path.getsize(os.path.join(spec.model_dir, "eval_report", "worst_errors.png")) > 1000


def test_predict_mode_and_model_dir_guard(trained):
  spec, _, _ = trained
  rows = runner.run(spec.replace(mode="predict", num_predictions=3,
                                               export_dir=None))["predictions"]
  assert len(rows) == 3 and all(0 <= cls < 4 for _, _, cls, _ in rows)
  other = spec.replace(window=WINDOW + 1, export_dir=None)
  with pytest.raises(UsageError, match="image_shape"):  # another window: another graph
    runner.run(other)


def test_float_records_match_numpy_feeding(trained):
  _, data, _ = trained
  x, y = data.x_test[:5], data.y_test[:5]
  features, labels = next(iter(inputs.make_input_fn("tfdata", x, y, 5, train=False)()))
  np.testing.assert_array_equal(features["x"].numpy(), x)  # float32 records, not scaled
  np.testing.assert_array_equal(labels.numpy(), y)
  with tf.Graph().as_default():
    features, _ = inputs.make_input_fn("numpy", x, y, 5, train=False)()
    with tf.compat.v1.train.MonitoredSession() as session:
      np.testing.assert_array_equal(session.run(features["x"]), x)


def test_saved_model_takes_raw_weeks(trained, tmp_path):
  spec, data, result = trained
  model = predict_model.load_model(spec.export_dir)
  assert model.input_key == saved_model.SEQUENCES_KEY and model.image_shape == (WINDOW, 5, 1)
  mean, std = data.standardize
  raw = data.x_test[..., 0] * std + mean  # the test windows as raw weekly values
  classes, probabilities = predict_model.predict(model, raw)
  estimator = runner.estimator_for(spec, data)
  expected = np.concatenate([p["probabilities"] for p in estimator.predict(
      runner.eval_input_fn(spec, data), yield_single_examples=False)])
  np.testing.assert_allclose(probabilities, expected, atol=1e-5)
  np.testing.assert_array_equal(classes, expected.argmax(axis=1))
  assert result["export"].startswith(spec.export_dir)


def test_predict_command_reads_json_and_npy(trained, tmp_path):
  spec, _, _ = trained
  rows = weekly_series()[-10:, 1:]
  (tmp_path / "window.json").write_text(json.dumps(rows[-WINDOW:].tolist()))
  np.save(tmp_path / "series.npy", rows)
  out = tmp_path / "out.txt"
  with open(out, "w") as f:
    result = predict.predict_files(spec.export_dir, [str(tmp_path / "window.json"),
                                                     str(tmp_path / "series.npy")], out=f)
  assert result["count"] == 1 + (10 - WINDOW + 1)
  assert result["probabilities"].shape == (result["count"], 4)
  assert "window.json  class" in out.read_text() or "window.json[0]  class" in out.read_text()
  np.testing.assert_allclose(result["probabilities"][0], result["probabilities"][-1],
                             atol=1e-6)  # the JSON window is the series' last window
  (tmp_path / "bad.json").write_text("[[1, 2], [3]]")
  with pytest.raises(UsageError, match="bad.json"):
    predict.predict_files(spec.export_dir, [str(tmp_path / "bad.json")])
