"""The Keras CNN of seed 004: two 3x3 conv/pool blocks, dense 64, logits (121,930 parameters)."""

import tensorflow as tf

from mnist_estimator.models import layers


def logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """conv 32x3x3 ReLU VALID -> pool 2 -> conv 64x3x3 ReLU VALID -> pool 2 -> flatten (1600)
  -> dense 64 ReLU -> (dropout, off by default) -> logits.

  Args:
    features: dict with "x", images of params["image_shape"].
    mode: a tf.estimator.ModeKeys value.
    params: dict with image_shape, n_classes, hidden_units ([64]), dropout.

  Returns:
    Logits, float32 [batch, n_classes].
  """
  v1 = tf.compat.v1.layers
  net = layers.image_input(features, params)
  net = layers.conv_pool(net, 32, 3, "conv1", "pool1", mode, padding="valid")
  net = layers.conv_pool(net, 64, 3, "conv2", "pool2", mode, padding="valid")
  net = v1.flatten(net, name="flatten")
  net = layers.dense(net, params["hidden_units"][0], "dense", activation=tf.nn.relu)
  net = layers.dropout(net, params["dropout"], mode)
  return layers.dense(net, params["n_classes"], "logits")
