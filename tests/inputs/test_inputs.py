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


@pytest.fixture(params=["in_memory", "by_record"])
def train_route(request, monkeypatch):
  """Training's two routes: the file in memory (the usual), or record by record (a big file)."""
  if request.param == "by_record":
    monkeypatch.setattr(inputs, "TABLE_MAX_BYTES", 0)
  return request.param


def test_train_input_shuffles_repeats_and_is_seeded(small, train_route):
  del train_route
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


def test_every_epoch_is_a_new_permutation_across_straddling_batches(small, train_route):
  del train_route
  # Images carry their own index (pixel 0, pixel 1 = index // 256, index % 256), so the
  # order is read back exactly; 64 does not divide 600: batches run across epochs.
  index = np.arange(600)
  images = np.zeros((600, 28, 28, 1), np.uint8)
  images[:, 0, 0, 0], images[:, 0, 1, 0] = index // 256, index % 256
  fn = inputs.tfdata_input_fn(images, small.y_train, 64, True, seed=7)
  x, y, _ = read_all(fn, batches=29)  # 1856 examples: three epochs and a part
  order = np.rint(x[:, 0, 0, 0] * 255).astype(int) * 256 + np.rint(x[:, 0, 1, 0] * 255).astype(int)
  np.testing.assert_array_equal(y, small.y_train[order])  # labels stay with their images
  epochs = order[:1800].reshape(3, 600)
  for epoch in epochs:
    np.testing.assert_array_equal(np.sort(epoch), index)  # each example once per epoch
  assert len({tuple(epoch) for epoch in epochs}) == 3  # a new order every epoch


def test_an_unseeded_train_input_differs_between_calls(small, train_route):
  del train_route
  fn = inputs.tfdata_input_fn(small.x_train, small.y_train, 100, True, seed=None)
  assert not np.array_equal(read_all(fn, batches=6)[1], read_all(fn, batches=6)[1])


def test_float_records_train_as_their_values(weeks, train_route):
  del train_route
  count = len(weeks.x_train)
  fn = inputs.tfdata_input_fn(weeks.x_train, weeks.y_train, count, True, seed=1)
  x, y, _ = read_all(fn, batches=1)  # one batch: the whole set, shuffled
  assert x.dtype == np.float32 and x.shape == weeks.x_train.shape
  order = [int(np.flatnonzero((weeks.x_train == row).all(axis=tuple(range(1, x.ndim))))[0])
           for row in x]
  assert sorted(order) == list(range(count)) and order != list(range(count))
  np.testing.assert_array_equal(y, np.asarray(weeks.y_train)[order])


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
