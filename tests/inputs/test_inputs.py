"""input_fns: every eval example once, seeded shuffling, and no data in the graph."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.inputs import input_fns as inputs
from mnist_estimator.inputs import record_cache as records


def read_all(input_fn, batches=None):
  """Runs an input_fn in a graph session; returns concatenated (images, labels)."""
  with tf.Graph().as_default() as graph:
    ds = input_fn()
    it = tf.compat.v1.data.make_one_shot_iterator(ds)
    nxt = it.get_next()
    xs, ys = [], []
    with tf.compat.v1.Session() as sess:
      for _ in range(batches or 10**9):
        try:
          features, labels = sess.run(nxt)
        except tf.errors.OutOfRangeError:
          break
        xs.append(features["x"])
        ys.append(labels)
  return np.concatenate(xs), np.concatenate(ys), graph


def test_eval_input_covers_every_example_once_in_order(small):
  x, y, _ = read_all(inputs.tfdata_input_fn(small.x_test, small.y_test, 64, train=False))
  assert x.shape == (200, 28, 28, 1) and x.dtype == np.float32
  np.testing.assert_array_equal(y, small.y_test)
  np.testing.assert_allclose(x, small.x_test / 255.0, rtol=1e-6)


def test_train_input_shuffles_repeats_and_is_seeded(small):
  fn = lambda seed: inputs.tfdata_input_fn(small.x_train, small.y_train, 100, True, seed)
  _, y1, _ = read_all(fn(3), batches=12)  # 1200 labels: two passes over 600
  _, y2, _ = read_all(fn(3), batches=12)
  _, y3, _ = read_all(fn(4), batches=12)
  np.testing.assert_array_equal(y1, y2)
  assert not np.array_equal(y1, y3)
  assert not np.array_equal(y1[:600], small.y_train)  # shuffled
  # Each pass is a permutation of the training set (shuffle before repeat).
  np.testing.assert_array_equal(np.bincount(y1[:600], minlength=10),
                                np.bincount(small.y_train, minlength=10))


def test_the_data_stays_out_of_the_graph(sample):
  fn = inputs.tfdata_input_fn(sample.x_train, sample.y_train, 100, train=True, seed=0)
  _, _, graph = read_all(fn, batches=1)
  # 5000 MNIST images are 3.9 MB as bytes; the graph must hold only a file path.
  assert graph.as_graph_def().ByteSize() < 20_000


def test_numpy_input_fn_is_the_tutorials(small):
  fn = inputs.make_input_fn("numpy", small.x_test, small.y_test, 50, train=False)
  with tf.Graph().as_default():
    features, labels = fn()
    with tf.compat.v1.train.MonitoredSession() as sess:
      batches = []
      while not sess.should_stop():
        batches.append(sess.run(labels))
  np.testing.assert_array_equal(np.concatenate(batches), small.y_test)
  assert features["x"].dtype == tf.float32


def test_predict_input_has_features_only(small):
  fn = inputs.tfdata_input_fn(small.x_test[:5], None, 2, train=False)
  with tf.Graph().as_default():
    element = tf.compat.v1.data.make_one_shot_iterator(fn()).get_next()
  assert set(element) == {"x"}


def test_records_are_written_once_per_content(small):
  first = records.write_records(small.x_test, small.y_test)
  written = os.stat(first).st_mtime_ns
  assert records.write_records(small.x_test, small.y_test) == first
  assert os.stat(first).st_mtime_ns == written  # the cached file is used, not rewritten
  raw = np.fromfile(first, np.uint8).reshape(len(small.y_test), -1)
  np.testing.assert_array_equal(raw[:, 0], small.y_test)  # a label byte, then the pixels
  np.testing.assert_array_equal(raw[:, 1:], small.x_test.reshape(len(small.y_test), -1))
  assert records.write_records(small.x_test[:10], small.y_test[:10]) != first


def test_unknown_input_kind():
  with pytest.raises(UsageError, match="choose from: tfdata, numpy"):
    inputs.make_input_fn("csv", None, None, 1, False)
