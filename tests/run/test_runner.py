"""Each model trains, evaluates, predicts and lists its weights on real MNIST (a few steps)."""

import inspect
import json
import os
import re
import signal
import tempfile

import helpers
import numpy as np
import pytest
import tensorflow as tf

import mnist_estimator as me
from mnist_estimator import models
from mnist_estimator.common.errors import UsageError
from mnist_estimator.estimator import checkpoint_shapes as record_lib
from mnist_estimator.estimator import weights
from mnist_estimator.run import runner
from mnist_estimator.run import spec as spec_lib


def run(spec, data):
  return runner.run(spec, data)


# The report's pictures and the weight pictures are drawn for a few (artifacts/ tests them).
REPORTED = ("cnn", "weather_rnn")
DRAWN = ("cnn", "mlp", "conv_learn")
# Predict mode runs for one model of each kind of PREDICT graph: flat, averaged weights (EMA),
# convolutions with dropout, Keras batch norm, recurrent, a weather series. Every model's
# PREDICT graph is built and checked in tests/models/test_models.py.
PREDICTED = ("linear", "mlp", "cnn", "keras_cnn", "rnn", "weather_lstm")


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_train_evaluate_predict_weights(name, small, weeks, tmp_path, capsys):
  series = models.get_model(name).inputs == "series"  # the weather RNNs read windows only
  small = weeks if series else small
  spec = helpers.small_spec(name, tmp_path, report=name in REPORTED,
                            dataset="weather" if series else "mnist_sample")
  result = run(spec, small)
  assert result["metrics"]["global_step"] == 12
  right = result["metrics"]["accuracy"] * len(small.y_test)  # a count of right answers
  assert abs(right - round(right)) < 1e-3
  assert np.isfinite(result["metrics"]["loss"])
  out = capsys.readouterr().out
  assert f"eval on {len(small.y_test)} {small.name} test images" in out
  if name in REPORTED:
    assert "macro F1" in out
    report = json.loads((tmp_path / "eval_report" / "eval_report.json").read_text())
    assert report["count"] == len(small.y_test)
    assert report["accuracy"] == pytest.approx(result["metrics"]["accuracy"], abs=1e-6)
    assert (tmp_path / "eval_report" / "confusion_matrix.png").stat().st_size > 1000

  if name in PREDICTED:
    predictions = run(spec.replace(mode="predict", num_predictions=7), small)["predictions"]
    assert [row[0] for row in predictions] == list(range(7))
    assert [row[1] for row in predictions] == list(small.y_test[:7])
    assert all(0 <= row[2] < 10 and 0.0 < row[3] <= 1.0 for row in predictions)

  out = tmp_path / "w.npz"
  pngs = tmp_path / "pngs" if name in DRAWN else None
  run(spec.replace(mode="weights", weights_out=str(out), weights_png_dir=pngs), small)
  listing = capsys.readouterr().out
  assert "layer weights" in listing and "global_step" in listing
  saved = np.load(out)
  assert sorted(saved.files) == sorted(
      n for n, _, kind in weights.list_variables(runner.estimator_for(spec, small))
      if kind == "layer")
  assert "logits/kernel" in saved.files or "fully_connected_1/kernel" in saved.files
  if pngs:
    assert sorted(os.listdir(pngs)) and all(f.endswith(".png") for f in os.listdir(pngs))


def test_training_learns_and_profile_steps_write_chrome_traces(small, tmp_path):
  spec = helpers.small_spec("linear", tmp_path, steps=60, batch_size=50, optimizer="sgd",
                            learning_rate=0.5, profile_steps=30, report=False)
  assert run(spec, small)["metrics"]["accuracy"] > 0.6
  traces = [f for f in os.listdir(tmp_path / "profile") if f.startswith("timeline-")]
  assert traces
  trace = json.loads((tmp_path / "profile" / sorted(traces)[0]).read_text())
  assert trace["traceEvents"]


def test_numpy_input_learns_and_feeds_what_tfdata_feeds(small, tmp_path):
  spec = helpers.small_spec("linear", tmp_path, input="numpy", steps=60, batch_size=50,
                            optimizer="sgd", learning_rate=0.5, report=False)
  by_numpy = run(spec, small)["metrics"]
  assert by_numpy["global_step"] == 60 and by_numpy["accuracy"] > 0.6
  # The same checkpoint evaluated through the record-file pipeline: the same images and
  # labels in, so the same metrics out.
  by_tfdata = run(spec.replace(mode="evaluate", input="tfdata"), small)["metrics"]
  assert by_tfdata["accuracy"] == pytest.approx(by_numpy["accuracy"], abs=1e-6)
  assert by_tfdata["loss"] == pytest.approx(by_numpy["loss"], rel=1e-5)


def test_same_seed_same_weights(small, tmp_path):
  values = []
  for sub in ("a", "b"):
    spec = helpers.small_spec("dnn", tmp_path / sub, steps=5, report=False)
    run(spec, small)
    values.append(runner.estimator_for(spec, small).get_variable_value("logits/kernel"))
  np.testing.assert_array_equal(values[0], values[1])


def test_train_and_evaluate(small, tmp_path):
  spec = helpers.small_spec("linear", tmp_path, mode="train_and_evaluate", steps=8,
                            report=False)
  assert run(spec, small)["metrics"]["global_step"] == 8


@pytest.fixture(scope="module")
def linear2(small, tmp_path_factory):
  """(spec, model_dir) of linear trained 2 steps: only read by the tests that take it."""
  model_dir = tmp_path_factory.mktemp("linear2")
  spec = helpers.small_spec("linear", model_dir, steps=2, report=False)
  run(spec, small)
  return spec, model_dir


def test_model_dir_of_another_model_is_refused(small, linear2):
  _, model_dir = linear2
  record = json.loads((model_dir / record_lib.RECORD_FILE).read_text())
  assert record["model"] == "linear" and record["image_shape"] == [28, 28, 1]
  before = sorted(os.listdir(model_dir))
  with pytest.raises(UsageError, match="holds a linear model.*this dnn run"):
    run(helpers.small_spec("dnn", model_dir), small)
  assert sorted(os.listdir(model_dir)) == before  # nothing written, checkpoints intact


def test_evaluate_without_checkpoint_is_a_usage_error(small, tmp_path):
  with pytest.raises(UsageError, match="no checkpoint in --model_dir"):
    run(helpers.small_spec("linear", tmp_path, mode="evaluate"), small)


def test_nan_loss_is_a_usage_error(small, tmp_path):
  from mnist_estimator.estimator import interrupts  # pylint: disable=g-import-not-at-top
  handlers = {signum: signal.getsignal(signum) for signum in interrupts.SIGNALS}
  # inf: NaN for certain (w - inf * 0 on the border pixels' weights); 1e30 may kill the ReLUs.
  spec = helpers.small_spec("dnn", tmp_path, optimizer="sgd", learning_rate=float("inf"),
                            steps=20)
  with pytest.raises(UsageError, match="loss became NaN.*lower --learning_rate"):
    run(spec, small)
  # Training's own Ctrl-C handler is gone: in the caller's session Ctrl-C interrupts again.
  assert {signum: signal.getsignal(signum) for signum in interrupts.SIGNALS} == handlers


def test_no_model_dir_means_one_per_model_and_data_set_and_steps_is_the_target(small, tmp_path,
                                                                             monkeypatch):
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
  expected = str(tmp_path / "mnist_estimator" / "linear-mnist_sample")
  assert spec_lib.default_model_dir("linear", "mnist_sample") == expected
  spec = helpers.small_spec("linear", None, dataset="mnist_sample", steps=2, report=False)
  result = run(spec, small)
  assert result["model_dir"] == expected and result["metrics"]["global_step"] == 2
  assert tf.train.latest_checkpoint(expected).endswith("model.ckpt-2")
  # The same command again resumes there: it trains nothing more (--steps is the target
  # global step); with a larger --steps it goes on from step 2 and finishes the job.
  assert run(spec, small)["metrics"]["global_step"] == 2
  assert tf.train.latest_checkpoint(expected).endswith("model.ckpt-2")
  assert run(spec.replace(steps=4), small)["metrics"]["global_step"] == 4


def test_weights_filter_and_errors(small, linear2, tmp_path):
  spec, _ = linear2
  estimator = runner.estimator_for(spec, small)
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


_RAN_FROM = []


def noting_logits(features, mode, params):
  """A user's logits function that notes the file its code runs from."""
  _RAN_FROM.append(inspect.currentframe().f_code.co_filename)
  flat = tf.compat.v1.layers.flatten(features["x"])
  return tf.compat.v1.layers.dense(flat, params["n_classes"], name="logits")


# Each training step re-initialized the weights under a strategy (a replica's initializer was
# taken for a Keras update): a mirrored run's loss stayed at chance while reporting progress.
@pytest.mark.parametrize("name", ["linear", "keras_cnn"])
def test_mirrored_strategy_learns_as_one_device_does(name, small, tmp_path):
  metrics = {}
  for distribute in ("none", "mirrored"):
    spec = helpers.small_spec(name, tmp_path / distribute, steps=30, distribute=distribute,
                              optimizer="sgd", learning_rate=0.1, report=False)
    metrics[distribute] = run(spec, small)["metrics"]
  assert metrics["none"]["accuracy"] > 0.3, metrics  # chance is 0.1
  assert metrics["mirrored"]["accuracy"] == pytest.approx(metrics["none"]["accuracy"], abs=0.02)
  assert metrics["mirrored"]["loss"] == pytest.approx(metrics["none"]["loss"], rel=0.05)


# The global step fetched beside the train op was read before or after its increment: "step
# 0/12", then "step 4/12" or "step 5/12" (always the earlier under a strategy).
@pytest.mark.parametrize("distribute", ["none", "mirrored"])
def test_progress_lines_show_the_step_just_done(distribute, small, tmp_path, capsys):
  run(helpers.small_spec("linear", tmp_path, distribute=distribute, report=False), small)
  shown = re.findall(r"^step (\d+)/12 ", capsys.readouterr().out, re.M)
  assert shown == ["1", "5", "10"]  # every --log_every_n_iter=5 steps, and the first


def test_mirrored_strategy_trains_and_evaluates(small, tmp_path):
  spec = helpers.small_spec("cnn", tmp_path, steps=4, distribute="mirrored", report=False)
  assert run(spec, small)["metrics"]["global_step"] == 4
  # Under a strategy tf.estimator calls the model_fn through autograph; the model_fn (and so
  # a user's code) runs as written, as without one, not from autograph's generated files.
  _RAN_FROM.clear()
  mirrored = me.train(noting_logits, model_dir=str(tmp_path / "own"), data=small, steps=2,
                      distribute="mirrored", report=False, batch_size=16, eval_batch_size=64)
  assert mirrored.metrics["global_step"] == 2
  assert _RAN_FROM and set(_RAN_FROM) == {__file__}, _RAN_FROM  # train and eval graphs
  with pytest.raises(UsageError, match="needs --input=tfdata"):
    run(helpers.small_spec("cnn", tmp_path / "n", distribute="mirrored", input="numpy"), small)
