"""train_and_evaluate: evaluations every N steps, both stops, the exporters, warm start."""

import dataclasses
import filecmp
import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from mnist_estimator.common.errors import UsageError
from mnist_estimator.estimator import export
from mnist_estimator.run import runner
from mnist_estimator.run import training
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


def test_latest_copies_the_best_export_of_the_same_checkpoint(small, tmp_path, monkeypatch):
  built = []
  export_saved_model = tf.estimator.Estimator.export_saved_model
  monkeypatch.setattr(tf.estimator.Estimator, "export_saved_model",
                      lambda self, *a, **k: built.append(1) or export_saved_model(self, *a, **k))
  # A learning rate of 0: the first evaluation (step 10) is the best; the second is not.
  runner.run(spec_for(tmp_path, steps=20, learning_rate=0.0, eval_every_steps=10,
                      report=False), small)
  best, latest = (tmp_path / "export" / "best", tmp_path / "export" / "latest")
  [version] = os.listdir(best)
  assert sorted(os.listdir(latest))[0] == version and len(os.listdir(latest)) == 2
  files = lambda root: sorted(os.path.relpath(os.path.join(folder, name), root)
                              for folder, _, names in os.walk(root) for name in names)
  assert "saved_model.pb" in files(best / version) == files(latest / version)
  _, differ, unread = filecmp.cmpfiles(best / version, latest / version, files(best / version),
                                       shallow=False)
  assert not differ and not unread
  assert len(built) == 2  # best at step 10 (latest copied it), latest at step 20


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


def test_stop_at_accuracy_stops_at_the_evaluation_that_reaches_it(small, tmp_path, capsys):
  # Any accuracy is at least 0: training stops at the first evaluation (step 5), not at the
  # next check an evaluation interval later.
  result = runner.run(spec_for(tmp_path, steps=100, eval_every_steps=5, stop_at_accuracy=0.0,
                               report=False), small)
  assert eval_steps(str(tmp_path), "eval_validation") == [5]
  assert result["metrics"]["global_step"] == 5
  assert "stopping: accuracy" in capsys.readouterr().out


def test_stop_at_accuracy_on_the_test_set_without_validation(small, tmp_path):
  # No validation set: the evaluations along the way are of the test set, and the last
  # one's figures go to eval_stats.json (its time inside train_stats.json's).
  data = dataclasses.replace(small, x_val=None, y_val=None)
  runner.run(spec_for(tmp_path, steps=100, eval_every_steps=5, stop_at_accuracy=0.0,
                      report=False), data)
  assert eval_steps(str(tmp_path)) == [5]
  stats = json.loads((tmp_path / "eval_stats.json").read_text())
  assert stats["global_step"] == 5 and stats["within_training"] and stats["examples"] == 200


def test_stop_at_accuracy_not_reached_trains_to_the_end(small, tmp_path):
  # Learning rate 0 keeps the first accuracy, far below 1: every evaluation runs.
  result = runner.run(spec_for(tmp_path, steps=15, eval_every_steps=5, stop_at_accuracy=1.0,
                               learning_rate=0.0, report=False), small)
  assert eval_steps(str(tmp_path), "eval_validation") == [5, 10, 15]
  assert result["metrics"]["global_step"] == 15


def test_stop_at_accuracy_ignores_an_earlier_runs_evaluations(small, tmp_path):
  runner.run(spec_for(tmp_path, steps=5, eval_every_steps=5, report=False), small)
  result = runner.run(spec_for(tmp_path, steps=15, eval_every_steps=5, stop_at_accuracy=0.0,
                               report=False), small)
  assert result["metrics"]["global_step"] == 10  # the new run's first evaluation


def test_early_stopping_resumes_a_run_trained_without_it(small, tmp_path):
  # tf.estimator's stop hooks put a variable in the graph, which a checkpoint made without
  # them lacks: resuming with --early_stopping_steps failed to restore.
  runner.run(spec_for(tmp_path, mode="train", steps=5, report=False), small)
  result = runner.run(spec_for(tmp_path, steps=10, eval_every_steps=5, early_stopping_steps=50,
                               report=False), small)
  assert result["metrics"]["global_step"] == 10


def test_a_cluster_stops_through_tf_estimators_hooks(tmp_path):
  # Its workers follow the stop variable of tf.estimator's hooks; the rules are the same. The
  # StopSignal comes first: it makes that variable, out of the checkpoints, before they ask.
  spec = spec_for(tmp_path, early_stopping_steps=5, stop_at_accuracy=0.9, eval_every_steps=5)
  estimator = tf.estimator.Estimator(lambda features, labels, mode: None, str(tmp_path))
  found = training._stop_hooks(types.SimpleNamespace(spec=spec, local=False), estimator,
                               str(tmp_path / "eval"))
  assert list(found) == ["stop_signal", "early_stopping", "stop_at_accuracy"]
  assert type(found.pop("stop_signal")).__name__ == "StopSignal"
  assert all(type(h).__name__ == "_StopOnPredicateHook" for h in found.values())
  assert not any(h._should_stop_fn() for h in found.values())
  none = spec_for(tmp_path, eval_every_steps=5)  # no rule: no hook
  assert not training._stop_hooks(types.SimpleNamespace(spec=none, local=False), estimator,
                                  str(tmp_path / "eval"))


@pytest.mark.parametrize("option", [dict(stop_at_accuracy=0.9), dict(early_stopping_steps=5),
                                    dict(eval_every_steps=5)])
def test_evaluation_options_with_mode_train_are_refused(small, tmp_path, option):
  with pytest.raises(UsageError, match=f"--{next(iter(option))} acts on evaluations along the "
                     "way, which --mode=train does not make; add --mode=train_and_evaluate"):
    runner.run(spec_for(tmp_path, mode="train", **option), small)


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
