"""The cnn_mnist tutorial network (seed 000): two conv/pool blocks, dense 1024, dropout."""

import tensorflow as tf

from mnist_estimator.models import layers


def logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """Builds the tutorial CNN.

  conv1 32x5x5 same ReLU -> pool 2x2 -> conv2 64x5x5 same ReLU -> pool 2x2
  -> flatten -> dense 1024 ReLU -> dropout (TRAIN only) -> logits.

  Args:
    features: dict with "x", images of params["image_shape"].
    mode: a tf.estimator.ModeKeys value.
    params: dict with image_shape, n_classes, dropout, hidden_units ([1024]).

  Returns:
    Logits, float32 [batch, n_classes].
  """
  v1 = tf.compat.v1.layers
  net = layers.image_input(features, params)
  net = layers.conv_pool(net, 32, 5, "conv1", "pool1", mode)
  net = layers.conv_pool(net, 64, 5, "conv2", "pool2", mode)
  net = v1.flatten(net, name="flatten")
  net = layers.dense(net, params["hidden_units"][0], "dense", activation=tf.nn.relu)
  net = layers.dropout(net, params["dropout"], mode, name="dropout")
  return layers.dense(net, params["n_classes"], "logits")
