"""train_and_evaluate: evaluation every N steps, early stopping, exporters, warm start."""

import os

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from mnist_estimator.common.errors import UsageError
from mnist_estimator.estimator import export
from mnist_estimator.run import runner
from mnist_estimator.run.spec import RunSpec


def spec_for(model_dir, **overrides):
  values = dict(mode="train_and_evaluate", model_dir=str(model_dir), steps=30,
                batch_size=32, optimizer="sgd", learning_rate=0.5, eval_batch_size=100,
                log_every_n_iter=10, seed=0)
  values.update(overrides)
  return RunSpec.for_model("linear", **values)


def eval_steps(model_dir, folder="eval"):
  acc = event_accumulator.EventAccumulator(os.path.join(model_dir, folder))
  acc.Reload()
  return [e.step for e in acc.Scalars("accuracy")]


def test_evaluates_every_n_steps_and_exports_best_and_latest(small, tmp_path):
  result = runner.run(spec_for(tmp_path, steps=20, eval_every_steps=10), small)
  # Every 10 steps on the validation set; the test set once, at the end.
  assert eval_steps(str(tmp_path), "eval_validation") == [10, 20]
  assert eval_steps(str(tmp_path)) == [20]
  assert result["metrics"]["global_step"] == 20
  best = os.listdir(tmp_path / "export" / "best")
  latest = os.listdir(tmp_path / "export" / "latest")
  assert len(best) == 1 and 1 <= len(latest) <= 2
  assert os.path.exists(tmp_path / "export" / "best" / best[0] / "saved_model.pb")


def test_best_exporter_compares_accuracy_not_loss():
  assert export._higher_accuracy({"accuracy": 0.8, "loss": 0.1}, {"accuracy": 0.9, "loss": 0.5})
  assert not export._higher_accuracy({"accuracy": 0.9, "loss": 0.5},
                                     {"accuracy": 0.8, "loss": 0.1})


def test_early_stopping_when_accuracy_stalls(small, tmp_path):
  # A learning rate of 0 never improves the accuracy: training stops long before step 100
  # (after the evaluation 5 steps past the first).
  result = runner.run(spec_for(tmp_path, steps=100, learning_rate=0.0, eval_every_steps=5,
                               early_stopping_steps=5, report=False), small)
  assert result["metrics"]["global_step"] < 50


def test_warm_start_from_another_model_dir(small, tmp_path):
  runner.run(spec_for(tmp_path / "source", mode="train", steps=5, report=False), small)
  source = runner.estimator_for(spec_for(tmp_path / "source"), small)
  # lr 0: the warm-started weights stay exactly what they were loaded as.
  target = spec_for(tmp_path / "target", mode="train", steps=2, learning_rate=0.0, report=False,
                    warm_start_from=str(tmp_path / "source"), warm_start_vars="logits/.*")
  runner.run(target, small)
  loaded = runner.estimator_for(target, small)
  np.testing.assert_array_equal(loaded.get_variable_value("logits/kernel"),
                                source.get_variable_value("logits/kernel"))


def test_warm_start_from_nothing_is_a_usage_error(small, tmp_path):
  with pytest.raises(UsageError, match="--warm_start_from .* is neither a checkpoint"):
    runner.run(spec_for(tmp_path / "t", warm_start_from=str(tmp_path / "missing")), small)
