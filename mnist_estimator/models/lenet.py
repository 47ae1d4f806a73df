"""LeNet-5 with sigmoid activations, as in d2l's Keras version (seed 001)."""

import tensorflow as tf

from mnist_estimator.models import layers


def logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """conv 6x5x5 sigmoid VALID -> pool 2 -> conv 16x5x5 sigmoid VALID -> pool 2 -> flatten
  (256 on 28x28) -> dense 120 sigmoid -> dense 84 sigmoid -> logits.

  The seed ends in Dense(10, sigmoid) fed to a cross-entropy that renormalises the
  sigmoids; here the last layer gives logits for the shared softmax head.

  Args:
    features: dict with "x", images of params["image_shape"].
    mode: a tf.estimator.ModeKeys value (LeNet has no dropout).
    params: dict with image_shape, n_classes, hidden_units ([120, 84]), activation.

  Returns:
    Logits, float32 [batch, n_classes].
  """
  v1 = tf.compat.v1.layers
  act = layers.ACTIVATIONS[params["activation"]]
  net = layers.image_input(features, params)
  net = layers.conv_pool(net, 6, 5, "conv1", "pool1", mode, padding="valid", activation=act)
  net = layers.conv_pool(net, 16, 5, "conv2", "pool2", mode, padding="valid", activation=act)
  net = v1.flatten(net, name="flatten")
  net = layers.dense(net, params["hidden_units"][0], "dense1", activation=act)
  net = layers.dense(net, params["hidden_units"][1], "dense2", activation=act)
  return layers.dense(net, params["n_classes"], "logits")
