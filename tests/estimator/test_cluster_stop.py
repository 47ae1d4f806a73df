"""cluster_stop: the stop signal shared by name and kept out of checkpoints; the evaluator's end."""

import os

import tensorflow as tf
from tensorflow_estimator.python.estimator import early_stopping
from tensorflow_estimator.python.estimator import training as estimator_training

from mnist_estimator.estimator import cluster_stop


def test_the_stop_signal_is_tf_estimators_variable_in_no_checkpoint():
  with tf.Graph().as_default():
    signal = cluster_stop.StopSignal()
    signal.begin()
    stop = early_stopping._get_or_create_stop_var()  # what its hooks read and set
    assert stop.name == "signal_early_stopping/STOP:0"
    assert stop not in tf.compat.v1.global_variables() + tf.compat.v1.local_variables()
    set_stop = stop.assign(True)
    with tf.compat.v1.Session() as session:
      signal.after_create_session(session, None)  # the first task sets it False
      assert not session.run(stop)
      session.run(set_stop)  # the chief stops
      signal.after_create_session(session, None)  # a worker that starts after it
      assert session.run(stop)


def _result(step):
  return estimator_training._EvalResult(  # pylint: disable=protected-access
      status=estimator_training._EvalStatus.EVALUATED,  # pylint: disable=protected-access
      metrics={"global_step": step, "accuracy": 0.5}, checkpoint_path=f"model.ckpt-{step}")


def _no_new():
  return estimator_training._EvalResult(  # pylint: disable=protected-access
      status=estimator_training._EvalStatus.NO_NEW_CHECKPOINT)  # pylint: disable=protected-access


def _checkpoint(model_dir, step):
  with tf.Graph().as_default():
    tf.compat.v1.train.create_global_step()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      session.run(tf.compat.v1.train.get_global_step().assign(step))
      tf.compat.v1.train.Saver().save(session, os.path.join(model_dir, "model.ckpt"),
                                      global_step=step)


def test_the_evaluator_ends_after_the_chiefs_last_checkpoint(tmp_path):
  marker = tmp_path / ".cluster-chief-done"
  marker.write_text("an earlier job's\n")  # there before the job: not its end
  _checkpoint(str(tmp_path), 20)
  listener = cluster_stop.UntilTrainingEnds(str(tmp_path), str(marker))
  assert listener.after_eval(_result(20))  # the chief trains on
  _checkpoint(str(tmp_path), 37)
  marker.write_text("this job's, a longer line\n")  # the chief stopped early at 37
  assert listener.after_eval(_no_new())  # 37 is not evaluated yet
  assert listener.after_eval(_result(20))
  assert not listener.after_eval(_result(37))  # its last checkpoint evaluated: the end
  again = cluster_stop.UntilTrainingEnds(str(tmp_path), str(marker))
  assert again.after_eval(_result(37))  # a new job's evaluator: the marker is history
