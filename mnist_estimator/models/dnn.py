"""A fully connected network with hidden sizes and activation chosen by flag (seed 003)."""

import tensorflow as tf

from mnist_estimator.models import layers


def logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """Builds flatten -> [dense_i with activation, dropout] for each hidden size -> logits.

  Scopes are `dense`, `dense_1`, ... and `logits`, so weights read back by name.

  Args:
    features: dict with "x", images of params["image_shape"].
    mode: a tf.estimator.ModeKeys value (dropout is active in TRAIN only).
    params: dict with image_shape, n_classes, hidden_units, activation, dropout.

  Returns:
    Logits, float32 [batch, n_classes].
  """
  activation = layers.ACTIVATIONS[params["activation"]]
  net = layers.flat_input(features, params)
  for i, units in enumerate(params["hidden_units"]):
    suffix = f"_{i}" if i else ""
    net = layers.dense(net, units, "dense" + suffix, activation=activation)
    net = layers.dropout(net, params["dropout"], mode, name="dropout" + suffix)
  return layers.dense(net, params["n_classes"], "logits")
