"""models/layers.py: the training step's conv/pool blocks and bf16 dropout."""

import contextlib

import helpers
import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.head import bf16
from mnist_estimator.models import layers

ModeKeys = tf.estimator.ModeKeys


def _both_blocks(x, dtype, winograd, padding, kernel):
  """(conv2d then max_pooling2d, conv_pool in TRAIN, their gradients) on the same variables."""
  def net(features, mode, params, training_block):
    del params
    if training_block:
      return layers.conv_pool(features["x"], 8, kernel, "conv", "pool", mode, padding=padding)
    out = layers.conv2d(features["x"], 8, kernel, "conv", padding=padding)
    return tf.compat.v1.layers.max_pooling2d(out, 2, 2, name="pool")

  outs = []
  for training_block in (False, True):
    fn = lambda f, m, p, block=training_block: net(f, m, p, block)
    with tf.compat.v1.variable_scope("", reuse=training_block):
      with layers.winograd_convs() if winograd else contextlib.nullcontext():
        outs.append(bf16.train_logits(fn, {"x": x}, ModeKeys.TRAIN, {}) if dtype == "bf16"
                    else fn({"x": x}, ModeKeys.TRAIN, {}))
  variables = tf.compat.v1.global_variables()
  assert [v.op.name for v in variables] == ["conv/kernel", "conv/bias"]
  dy = tf.constant(np.random.RandomState(1).randn(*outs[0].shape).astype(np.float32))
  grads = [tf.gradients(out, [*variables, x], grad_ys=dy) for out in outs]
  return outs, grads


def _run_both_blocks(dtype, winograd=False, padding="same", kernel=5):
  """Values of _both_blocks with a fixed kernel and a bias that zeroes some outputs."""
  graph = tf.Graph()
  with graph.as_default():
    rng = np.random.RandomState(0)
    x = tf.constant(rng.randn(3, 14, 14, 8).astype(np.float32))
    outs, grads = _both_blocks(x, dtype, winograd, padding, kernel)
    weights, bias = tf.compat.v1.global_variables()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      session.run([weights.assign(0.1 * rng.randn(kernel, kernel, 8, 8)),
                   bias.assign(np.linspace(-2.0, 0.5, 8))])
      return session.run([outs, grads])


@pytest.mark.parametrize("winograd, padding, kernel", [
    (False, "same", 5), (True, "same", 5), (False, "valid", 3)])
def test_the_training_block_computes_the_same_layer_and_gradients(winograd, padding, kernel):
  (a, b), (grads_before, grads_after) = _run_both_blocks("fp32", winograd, padding, kernel)
  assert a.shape == b.shape == ((3, 7, 7, 8) if padding == "same" else (3, 6, 6, 8))
  assert 0.1 < (a == 0).mean() < 0.9  # some ReLU zeros, some not: the bias is added
  # The same sums, perhaps in another order (a fused convolution adds its bias inside).
  np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())
  for got, want in zip(grads_after, grads_before):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_in_bf16_both_blocks_stay_near_float32():
  (exact, _), (exact_grads, _) = _run_both_blocks("fp32")
  (before, after), (grads_before, grads_after) = _run_both_blocks("bf16")

  def error(got, want):
    return np.linalg.norm(got - want) / np.linalg.norm(want)
  # bf16's near-ties pool to either neighbour, and its rounding lands differently in a
  # fused convolution: both blocks are a few percent off float32's gradients; the training
  # block stays within 10%, or 3x TensorFlow's own error where that is larger.
  assert error(after, exact) < 2 * error(before, exact) < 0.01
  for got, ref, want in zip(grads_after, grads_before, exact_grads):
    assert error(got, want) < max(3 * error(ref, want), 0.1)


def _pool_inputs(graph):
  """{MaxPool op name: the type of the op it pools}."""
  return {op.name: op.inputs[0].op.type for op in graph.get_operations()
          if op.type == "MaxPool"}


@pytest.mark.parametrize("name", ["cnn", "fast_cnn", "keras_cnn", "deep_cnn", "conv_learn"])
def test_the_training_step_fuses_conv_bias_relu_and_takes_their_gradients_pooled(name):
  graph = helpers.model_fn_graph(name, ModeKeys.TRAIN, conv_algorithm="direct")
  ops = graph.get_operations()
  pools = [op for op in ops if op.type == "MaxPool"]
  # conv -> bias -> ReLU, one oneDNN convolution once grappler fuses them, then the pool.
  assert pools and {(op.inputs[0].op.type, op.inputs[0].op.inputs[0].op.type,
                     op.inputs[0].op.inputs[0].op.inputs[0].op.type) for op in pools} == {
                         ("Relu", "BiasAdd", "Conv2D")}
  pooled = {tuple(op.outputs[0].shape[1:]) for op in pools}
  # ReLU's and the bias' gradients of the blocks on pooled maps: only MaxPoolGrad is full size.
  grads = [op for op in ops
           if op.type in ("ReluGrad", "BiasAddGrad") and op.inputs[0].shape.rank == 4]
  assert grads and {tuple(op.inputs[0].shape[1:]) for op in grads} <= pooled, grads


@pytest.mark.parametrize("name", ["cnn", "fast_cnn"])
def test_a_winograd_training_step_pools_before_bias_and_relu(name):
  graph = helpers.model_fn_graph(name, ModeKeys.TRAIN, precision="fp32",
                                 conv_algorithm="winograd")
  pools = _pool_inputs(graph)
  assert "BatchMatMulV2" in {op.type for op in graph.get_operations()}  # Winograd's matmuls
  # conv1 (one input channel: no Winograd) fused; conv2's Winograd output pooled first.
  assert pools["conv1/MaxPool2d"] == "Relu" and pools["conv2/MaxPool2d"] == "Transpose", pools


@pytest.mark.parametrize("mode", [ModeKeys.EVAL, ModeKeys.PREDICT])
def test_evaluate_predict_and_export_build_the_layers_as_written(mode):
  assert _pool_inputs(helpers.model_fn_graph("cnn", mode)) == {"pool1/MaxPool": "Relu",
                                                      "pool2/MaxPool": "Relu"}


def test_other_activations_keep_conv_activation_pool():
  # A sigmoid is monotone too, but its rounding need not be: only ReLU is reordered.
  pools = _pool_inputs(helpers.model_fn_graph("lenet", ModeKeys.TRAIN))
  assert pools == {"pool1/MaxPool": "Sigmoid", "pool2/MaxPool": "Sigmoid"}


def _dropout(dtype, seed, rate=0.4, shape=(200, 500)):
  """(layers.dropout of ones in TRAIN, its gradient, op types) under graph seed `seed`."""
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.set_random_seed(seed)
    x = tf.ones(shape, dtype)
    y = layers.dropout(x, rate, ModeKeys.TRAIN)
    grad = tf.gradients(tf.reduce_sum(tf.cast(y, tf.float32)), x)[0]
    types = {(op.type, op.outputs[0].dtype) for op in graph.get_operations() if op.outputs}
    with tf.compat.v1.Session() as session:
      out, g = session.run([tf.cast(y, tf.float32), tf.cast(grad, tf.float32)])
  return out, g, types


def test_bf16_dropout_drops_at_the_rate_and_scales_as_tf_nn_dropout():
  out, grad, types = _dropout(tf.bfloat16, seed=1)
  scale = float(tf.cast(tf.cast(1 / 0.6, tf.bfloat16), tf.float32))
  assert set(np.unique(out)) == {0.0, scale}
  assert abs((out == 0).mean() - 0.4) < 0.01  # 100,000 draws: 3 standard deviations ~0.005
  np.testing.assert_array_equal(grad, out)  # the gradient is the same mask
  assert ("SelectV2", tf.bfloat16) not in types  # Eigen's slow bf16 select (the point)
  again, _, _ = _dropout(tf.bfloat16, seed=1)
  other, _, _ = _dropout(tf.bfloat16, seed=2)
  np.testing.assert_array_equal(again, out)
  assert (other != out).any()


def test_float32_dropout_is_tf_nn_dropouts():
  out, _, _ = _dropout(tf.float32, seed=1)
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.set_random_seed(1)
    expected = tf.nn.dropout(tf.ones((200, 500)), rate=0.4, name="dropout")
    with tf.compat.v1.Session() as session:
      np.testing.assert_array_equal(out, session.run(expected))
