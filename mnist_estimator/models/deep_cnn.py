"""The book's two-conv network on the fonts set (seed 003, chapter 3)."""

import tensorflow as tf

from mnist_estimator.models import layers


def logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """conv 16x3x3 SAME ReLU -> pool 2x2 VALID -> conv 4x3x3 SAME ReLU -> pool 2x2 VALID
  -> dense 32 ReLU -> dropout (keep 0.5 in TRAIN) -> logits.

  On 36x36x1 and 5 classes this has 11,305 parameters; the book's text says 10,765,
  which no reading of its own code gives (conv 160 + conv 580 + dense 10,400 + 165).

  Args:
    features: dict with "x", images of params["image_shape"].
    mode: a tf.estimator.ModeKeys value.
    params: dict with image_shape, n_classes, hidden_units ([32]), dropout.

  Returns:
    Logits, float32 [batch, n_classes].
  """
  v1 = tf.compat.v1.layers
  net = layers.image_input(features, params)
  net = layers.conv_pool(net, 16, 3, "conv1", "pool1", mode)
  net = layers.conv_pool(net, 4, 3, "conv2", "pool2", mode)
  net = v1.flatten(net, name="flatten")
  net = layers.dense(net, params["hidden_units"][0], "dense", activation=tf.nn.relu)
  net = layers.dropout(net, params["dropout"], mode)
  return layers.dense(net, params["n_classes"], "logits")
