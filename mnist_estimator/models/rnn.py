"""An RNN that reads an image row by row (the book's chapter-4 BasicRNNCell, seed 003)."""

import tensorflow as tf

from mnist_estimator.models import layers


def logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """Feeds the H rows (W*C values each) to a BasicRNNCell; its last state -> logits.

  Args:
    features: dict with "x", images of params["image_shape"].
    mode: a tf.estimator.ModeKeys value (dropout on the last state in TRAIN).
    params: dict with image_shape, n_classes, hidden_units ([state size]),
      activation, dropout.

  Returns:
    Logits, float32 [batch, n_classes].
  """
  height, width, channels = params["image_shape"]
  rows = tf.reshape(layers.image_input(features, params), [-1, height, width * channels])
  # The v1 initializer follows the graph seed, so --seed fixes the cell's weights.
  with tf.compat.v1.variable_scope("rnn", initializer=tf.compat.v1.glorot_uniform_initializer()):
    cell = tf.compat.v1.nn.rnn_cell.BasicRNNCell(
        params["hidden_units"][0], activation=layers.ACTIVATIONS[params["activation"]],
        name="cell")
    _, state = tf.compat.v1.nn.dynamic_rnn(cell, rows, dtype=rows.dtype)
  state = layers.dropout(state, params["dropout"], mode)
  return layers.dense(state, params["n_classes"], "logits")
