"""Seed 003's weather RNN: a BasicRNNCell (state 11) over weeks, then logits; and an LSTM."""

import math
from typing import Any

import tensorflow as tf

from mnist_estimator.models import layers

# The book's RNN chapter: W1 ~ truncated normal, stddev 1/sqrt(num_inputs); b1 = 0.1.
_BOOK_BIAS = 0.1


def _steps(features: layers.Features, params: layers.Params) -> tf.Tensor:
  """features["x"] [batch, T, F, C] (weather: [batch, window, 5, 1]) as T steps of F*C values."""
  steps, width, channels = params["image_shape"]
  return tf.reshape(layers.float_input(features), [-1, steps, width * channels])


def _run(cell: Any, features: layers.Features, params: layers.Params) -> tf.Tensor:
  """`cell`: a tf.compat.v1 RNN cell."""
  """Runs `cell` over the steps; the last step's output -> logits (named scopes rnn/, logits/)."""
  steps = _steps(features, params)
  # The v1 initializer follows the graph seed, so --seed fixes the cell's weights.
  with tf.compat.v1.variable_scope("rnn", initializer=tf.compat.v1.glorot_uniform_initializer()):
    outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, steps, dtype=steps.dtype)
  inputs = params["image_shape"][1] * params["image_shape"][2]
  return tf.compat.v1.layers.dense(
      outputs[:, -1, :], params["n_classes"], name="logits",
      kernel_initializer=tf.compat.v1.truncated_normal_initializer(
          stddev=1.0 / math.sqrt(inputs)),
      bias_initializer=tf.compat.v1.constant_initializer(_BOOK_BIAS))


def logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """The book's network: BasicRNNCell(hidden_units[0]) over the weeks, the last state -> logits.

  Args:
    features: dict with "x", windows of params["image_shape"] = (weeks, features, 1).
    mode: unused; the model has no dropout.
    params: dict with image_shape, n_classes, hidden_units ([state size], the book: 11).

  Returns:
    Logits, float32 [batch, n_classes].
  """
  del mode
  cell = tf.compat.v1.nn.rnn_cell.BasicRNNCell(params["hidden_units"][0], name="cell")
  return _run(cell, features, params)


def lstm_logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """The better recipe's network: an LSTMCell(hidden_units[0]) in place of the BasicRNNCell."""
  del mode
  cell = tf.compat.v1.nn.rnn_cell.LSTMCell(params["hidden_units"][0], name="cell")
  return _run(cell, features, params)
