"""The book's `conv_learn` model_fn for learn.Estimator (seed 003): one small conv layer."""

import tensorflow as tf

from mnist_estimator.models import layers


def logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """Builds conv_learn as the book wrote it, with its scope names.

  In scope `conv_layer`: conv 4 filters 5x5 ReLU (`conv_layer/Conv`) and max-pool
  2x2 VALID; then flatten -> `fully_connected` (5 units, ReLU) -> dropout (rate 0.5,
  i.e. keep 0.5, TRAIN only) -> `fully_connected_1` (linear logits).

  Args:
    features: dict with "x", images of params["image_shape"].
    mode: a tf.estimator.ModeKeys value.
    params: dict with image_shape, n_classes, dropout, hidden_units ([5]).

  Returns:
    Logits, float32 [batch, n_classes].
  """
  v1 = tf.compat.v1.layers
  net = layers.image_input(features, params)
  with tf.compat.v1.variable_scope("conv_layer"):
    net = layers.conv_pool(net, 4, 5, "Conv", "pool", mode)
  net = v1.flatten(net, name="flatten")
  net = layers.dense(net, params["hidden_units"][0], "fully_connected",
                     activation=tf.nn.relu)
  net = layers.dropout(net, params["dropout"], mode, name="dropout")
  return layers.dense(net, params["n_classes"], "fully_connected_1")
