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
  net = layers.conv2d(net, 32, 5, name="conv1")
  net = v1.max_pooling2d(net, 2, 2, name="pool1")
  net = layers.conv2d(net, 64, 5, name="conv2")
  net = v1.max_pooling2d(net, 2, 2, name="pool2")
  net = v1.flatten(net, name="flatten")
  net = layers.dense(net, params["hidden_units"][0], "dense", activation=tf.nn.relu)
  net = layers.dropout(net, params["dropout"], mode, name="dropout")
  return layers.dense(net, params["n_classes"], "logits")
