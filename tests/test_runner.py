"""Each model trains, evaluates, predicts and lists its weights on real MNIST (a few steps)."""

import dataclasses
import json
import os

import numpy as np
import pytest

from mnist_estimator import estimator as est_lib
from mnist_estimator import models
from mnist_estimator import runner
from mnist_estimator import weights
from mnist_estimator.errors import UsageError


def spec_for(name, model_dir, **overrides):
  """A RunSpec with the model's defaults, 12 steps, small batches."""
  values = dict(models.get_model(name).defaults)
  values.update(model=name, model_dir=str(model_dir), steps=12, batch_size=16,
                eval_batch_size=64, log_every_n_iter=5, seed=1)
  values.update(overrides)
  return runner.RunSpec(**values)


def run(spec, data, monkeypatch):
  monkeypatch.setattr(runner.datasets, "load",
                      lambda name, data_dir=None, seed=0, window=None: data)
  return runner.run(spec)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_train_evaluate_predict_weights(name, small, tmp_path, monkeypatch, capsys):
  spec = spec_for(name, tmp_path)
  result = run(spec, small, monkeypatch)
  assert result["metrics"]["global_step"] == 12
  assert 0.0 <= result["metrics"]["accuracy"] <= 1.0
  assert np.isfinite(result["metrics"]["loss"])
  out = capsys.readouterr().out
  assert "eval on 200 mnist_sample test images" in out and "macro F1" in out
  report = json.loads((tmp_path / "eval_report" / "eval_report.json").read_text())
  assert report["count"] == 200
  assert report["accuracy"] == pytest.approx(result["metrics"]["accuracy"], abs=1e-6)
  assert (tmp_path / "eval_report" / "confusion_matrix.png").stat().st_size > 1000

  predictions = run(dataclasses.replace(spec, mode="predict", num_predictions=7), small,
                    monkeypatch)["predictions"]
  assert [row[0] for row in predictions] == list(range(7))
  assert [row[1] for row in predictions] == list(small.y_test[:7])
  assert all(0 <= row[2] < 10 and 0.0 < row[3] <= 1.0 for row in predictions)

  out = tmp_path / "w.npz"
  # The recurrent models have no pixel-shaped weights.
  pngs = None if name in ("rnn", "weather_rnn", "weather_lstm") else tmp_path / "pngs"
  run(dataclasses.replace(spec, mode="weights", weights_out=str(out), weights_png_dir=pngs),
      small, monkeypatch)
  listing = capsys.readouterr().out
  assert "layer weights" in listing and "global_step" in listing
  saved = np.load(out)
  assert sorted(saved.files) == sorted(
      n for n, _, kind in weights.list_variables(runner.build(spec, small, False))
      if kind == "layer")
  assert "logits/kernel" in saved.files or "fully_connected_1/kernel" in saved.files
  if pngs:
    assert sorted(os.listdir(pngs)) and all(f.endswith(".png") for f in os.listdir(pngs))


def test_steps_is_the_target_global_step(small, tmp_path, monkeypatch):
  spec = spec_for("linear", tmp_path, steps=6)
  assert run(spec, small, monkeypatch)["metrics"]["global_step"] == 6
  # Re-running the same command trains nothing more; a larger --steps finishes the job.
  assert run(spec, small, monkeypatch)["metrics"]["global_step"] == 6
  spec = dataclasses.replace(spec, steps=10)
  assert run(spec, small, monkeypatch)["metrics"]["global_step"] == 10


def test_training_learns(small, tmp_path, monkeypatch):
  spec = spec_for("linear", tmp_path, steps=60, batch_size=50, optimizer="sgd",
                  learning_rate=0.5)
  assert run(spec, small, monkeypatch)["metrics"]["accuracy"] > 0.6


def test_numpy_input_matches_the_tutorial_path(small, tmp_path, monkeypatch):
  spec = spec_for("linear", tmp_path, input="numpy")
  assert run(spec, small, monkeypatch)["metrics"]["global_step"] == 12


def test_same_seed_same_weights(small, tmp_path, monkeypatch):
  values = []
  for sub in ("a", "b"):
    spec = spec_for("dnn", tmp_path / sub, steps=5)
    run(spec, small, monkeypatch)
    values.append(runner.build(spec, small, False).get_variable_value("logits/kernel"))
  np.testing.assert_array_equal(values[0], values[1])


def test_train_and_evaluate(small, tmp_path, monkeypatch):
  spec = spec_for("linear", tmp_path, mode="train_and_evaluate", steps=8)
  assert run(spec, small, monkeypatch)["metrics"]["global_step"] == 8


def test_model_dir_of_another_model_is_refused(small, tmp_path, monkeypatch):
  run(spec_for("linear", tmp_path, steps=2), small, monkeypatch)
  record = json.loads((tmp_path / est_lib.RECORD_FILE).read_text())
  assert record["model"] == "linear" and record["image_shape"] == [28, 28, 1]
  before = sorted(os.listdir(tmp_path))
  with pytest.raises(UsageError, match="holds a linear model.*this dnn run"):
    run(spec_for("dnn", tmp_path), small, monkeypatch)
  assert sorted(os.listdir(tmp_path)) == before  # nothing written, checkpoints intact


def test_evaluate_without_checkpoint_is_a_usage_error(small, tmp_path, monkeypatch):
  with pytest.raises(UsageError, match="no checkpoint in --model_dir"):
    run(spec_for("linear", tmp_path, mode="evaluate"), small, monkeypatch)


def test_nan_loss_is_a_usage_error(small, tmp_path, monkeypatch):
  spec = spec_for("dnn", tmp_path, optimizer="sgd", learning_rate=1e30, steps=20)
  with pytest.raises(UsageError, match="loss became NaN.*lower --learning_rate"):
    run(spec, small, monkeypatch)


def test_default_model_dir_is_stable():
  assert runner.default_model_dir("cnn", "mnist") == runner.default_model_dir("cnn", "mnist")
  assert runner.default_model_dir("cnn", "mnist").endswith(os.path.join("mnist_estimator",
                                                                        "cnn-mnist"))


def test_weights_filter_and_errors(small, tmp_path, monkeypatch):
  spec = spec_for("linear", tmp_path, steps=2)
  run(spec, small, monkeypatch)
  estimator = runner.build(spec, small, False)
  out = str(tmp_path / "bias.npz")
  assert weights.save(estimator, out, "bias$") == ["logits/bias"]
  assert np.load(out)["logits/bias"].shape == (10,)
  with pytest.raises(UsageError, match="no layer variable matches --weights_names 'conv'"):
    weights.save(estimator, out, "conv")
  with pytest.raises(UsageError, match="is not a regular expression"):
    weights.save(estimator, out, "(")
  rows = weights.list_variables(estimator)
  assert ("global_step", (), "bookkeeping") in rows
  assert ("logits/kernel", (784, 10), "layer") in rows
  assert any(kind == "optimizer" for _, _, kind in rows)  # FTRL's accumulators


def test_profile_steps_writes_a_chrome_trace(small, tmp_path, monkeypatch):
  run(spec_for("linear", tmp_path, steps=12, profile_steps=5, report=False), small, monkeypatch)
  traces = [f for f in os.listdir(tmp_path / "profile") if f.startswith("timeline-")]
  assert traces
  trace = json.loads((tmp_path / "profile" / sorted(traces)[0]).read_text())
  assert trace["traceEvents"]


def test_mirrored_strategy_trains_and_evaluates(small, tmp_path, monkeypatch):
  spec = spec_for("cnn", tmp_path, steps=4, distribute="mirrored", report=False)
  assert run(spec, small, monkeypatch)["metrics"]["global_step"] == 4
  with pytest.raises(UsageError, match="needs --input=tfdata"):
    run(spec_for("cnn", tmp_path / "n", distribute="mirrored", input="numpy"), small,
        monkeypatch)
