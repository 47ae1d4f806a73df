"""The stop rules on evaluations: at an accuracy (>=), and when it stalls (as tf.estimator's)."""

import tensorflow as tf

from mnist_estimator.estimator import hooks


def test_accuracy_reached_counts_equal_as_reached():
  rule = hooks.accuracy_reached(0.995)
  assert rule({}) is None
  assert rule({100: {"accuracy": 0.9949}}) is None
  assert "accuracy 0.9950 at step 200 reached --stop_at_accuracy=0.995" in rule(
      {100: {"accuracy": 0.9949}, 200: {"accuracy": 0.995}})


def test_accuracy_reached_looks_at_the_latest_evaluation_only():
  assert hooks.accuracy_reached(0.9)({100: {"accuracy": 0.95}, 200: {"accuracy": 0.85}}) is None


def test_accuracy_stalled_as_stop_if_no_increase_hook():
  rule = hooks.accuracy_stalled(20)
  assert rule({}) is None
  assert rule({10: {"accuracy": 0.5}, 20: {"accuracy": 0.6}, 30: {"accuracy": 0.6}}) is None
  # A tie is no improvement: the best stays the first step that reached it.
  reason = rule({10: {"accuracy": 0.5}, 20: {"accuracy": 0.6}, 30: {"accuracy": 0.6},
                 40: {"accuracy": 0.55}})
  assert "not improved for 20 steps (best 0.6000 at step 20" in reason


def write_evaluations(eval_dir, accuracies):
  with tf.Graph().as_default():
    writer = tf.compat.v1.summary.FileWriter(str(eval_dir))
    for step, accuracy in accuracies.items():
      writer.add_summary(tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(
          tag="accuracy", simple_value=accuracy)]), step)
    writer.close()


def test_should_stop_reads_the_eval_dir_and_says_why(tmp_path, capsys):
  assert not hooks.should_stop(hooks.accuracy_reached(0.9), str(tmp_path / "none"))
  write_evaluations(tmp_path, {10: 0.85, 20: 0.95})
  assert hooks.should_stop(hooks.accuracy_reached(0.9), str(tmp_path))
  assert "stopping: accuracy 0.9500 at step 20 reached --stop_at_accuracy=0.9" in (
      capsys.readouterr().out)
