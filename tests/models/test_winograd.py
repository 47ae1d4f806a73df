"""models/winograd.py, --conv_algorithm: Winograd's convolution equals TensorFlow's; TRAIN only."""

import helpers
import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.models import layers
from mnist_estimator.models import winograd

ModeKeys = tf.estimator.ModeKeys


@pytest.mark.parametrize("m", [2, 3, 4])
def test_the_transforms_compute_a_1d_correlation(m):
  at, g, bt = winograd.matrices(m)
  rng = np.random.RandomState(m)
  d, kernel = rng.randn(m + 4), rng.randn(5)
  expected = [d[i:i + 5] @ kernel for i in range(m)]
  np.testing.assert_allclose(at @ ((g @ kernel) * (bt @ d)), expected, rtol=1e-10, atol=1e-10)


def test_points_without_an_algorithm_are_refused():
  with pytest.raises(ValueError, match="no Winograd algorithm"):
    winograd.matrices(2, points=(0, 1, 1, 2, -2))


@pytest.mark.parametrize("size, ci, co, m", [(14, 8, 16, 4), (9, 3, 5, 4), (7, 16, 4, 2),
                                             (28, 8, 8, 3), (4, 2, 3, 4)])
def test_conv5x5_and_its_gradients_equal_conv2ds(size, ci, co, m):
  rng = np.random.RandomState(size)
  x = tf.constant(rng.randn(3, size, size, ci).astype(np.float32))
  w = tf.constant(rng.randn(5, 5, ci, co).astype(np.float32))
  dy = tf.constant(rng.randn(3, size, size, co).astype(np.float32))

  expected = helpers.conv_and_gradients(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), x, w, dy)
  fast = helpers.conv_and_gradients(lambda x, w: winograd.conv5x5(x, w, m), x, w, dy)
  for got, want in zip(fast, expected):
    assert got.shape == want.shape
    # float32 rounding of sums of hundreds of terms; a wrong tap would be off by O(1).
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(tf.reduce_max(abs(want))))


def _applies(shape=(None, 14, 14, 8), dtype=tf.float32, kernel=5, **options):
  return winograd.applies(shape, dtype, kernel, **options)


def test_applies_to_5x5_same_stride_1_float32_square_images_of_8_channels():
  assert _applies()
  assert _applies((4, 28, 28, 32), kernel=(5, 5), padding="SAME")


@pytest.mark.parametrize("change", [
    {"dtype": tf.bfloat16}, {"strides": (2, 2)}, {"padding": "valid"}, {"kernel": 3},
    {"kernel": (5, 3)}, {"dilation": (2, 2)}, {"data_format": "channels_first"},
    {"shape": (None, 28, 28, 1)},  # the transforms would cost more than they save
    {"shape": (None, 14, 12, 8)}, {"shape": (None, None, None, 8)}, {"shape": None}])
def test_does_not_apply_elsewhere(change):
  assert not _applies(**change)


def test_the_layer_trains_the_same_variables_by_winograd():
  graph = tf.Graph()
  with graph.as_default():
    x = tf.constant(np.random.RandomState(0).randn(2, 14, 14, 8).astype(np.float32))
    direct = layers.conv2d(x, 16, 5, "conv")
    with tf.compat.v1.variable_scope("", reuse=True), layers.winograd_convs():
      fast = layers.conv2d(x, 16, 5, "conv")
    assert [v.op.name for v in tf.compat.v1.global_variables()] == ["conv/kernel", "conv/bias"]
    ops = {op.type for op in graph.get_operations()}
    kernel = tf.compat.v1.global_variables()[0]
    grads = tf.gradients(tf.reduce_sum(direct ** 2), kernel) + tf.gradients(
        tf.reduce_sum(fast ** 2), kernel)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      a, b, ga, gb = session.run([direct, fast, *grads])
  assert "BatchMatMulV2" in ops
  np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(gb, ga, rtol=1e-4, atol=1e-4 * np.abs(ga).max())


def _graph(mode, algorithm, seed=None, precision="fp32"):
  """The cnn's model_fn graph in `mode` under --conv_algorithm=algorithm.

  fp32 unless asked: --precision=auto trains in bf16 on a CPU with native bf16, and
  Winograd's transforms are float32 only.
  """
  return helpers.model_fn_graph("cnn", mode, seed, conv_algorithm=algorithm,
                                precision=precision)


def _conv_ops(mode, algorithm, precision="fp32"):
  """{layer: op types} of the cnn's convolutions as the model_fn builds them in `mode`."""
  graph = _graph(mode, algorithm, precision=precision)
  found = {}
  for op in graph.get_operations():
    top = op.name.split("/")[0]
    if top in ("conv1", "conv2") and op.type in ("Conv2D", "BatchMatMulV2"):
      found.setdefault(top, set()).add(op.type)
  return found


def test_train_runs_conv2_by_winograd_and_conv1_direct():
  assert _conv_ops(ModeKeys.TRAIN, "winograd") == {"conv1": {"Conv2D"},
                                                   "conv2": {"BatchMatMulV2"}}


@pytest.mark.parametrize("mode", [ModeKeys.EVAL, ModeKeys.PREDICT])
def test_evaluate_predict_and_export_stay_direct(mode):
  assert _conv_ops(mode, "winograd") == {"conv1": {"Conv2D"}, "conv2": {"Conv2D"}}


def test_a_bf16_training_step_keeps_onednns_convolution():
  assert _conv_ops(ModeKeys.TRAIN, "winograd", "bf16") == {"conv1": {"Conv2D"},
                                                           "conv2": {"Conv2D"}}


def test_direct_trains_by_conv2d():
  assert _conv_ops(ModeKeys.TRAIN, "direct") == {"conv1": {"Conv2D"}, "conv2": {"Conv2D"}}


def test_a_seed_starts_from_the_same_weights_under_either_algorithm():
  def initial(algorithm):
    graph = _graph(ModeKeys.TRAIN, algorithm, seed=3)
    with graph.as_default(), tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      return {v.op.name: session.run(v) for v in tf.compat.v1.trainable_variables()}
  winograd_start, direct_start = initial("winograd"), initial("direct")
  assert sorted(winograd_start) == sorted(direct_start) and len(direct_start) == 8
  for name, value in direct_start.items():
    np.testing.assert_array_equal(winograd_start[name], value, err_msg=name)
