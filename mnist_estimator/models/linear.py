"""Softmax regression on raw pixels (seed 003's LinearClassifier, seed 000's baseline)."""

import tensorflow as tf

from mnist_estimator.models import layers


def logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """Builds one dense layer from the flattened pixels to the classes.

  Args:
    features: dict with "x", images of params["image_shape"].
    mode: unused; the model is the same in every mode.
    params: dict with image_shape and n_classes.

  Returns:
    Logits, float32 [batch, n_classes].
  """
  del mode
  net = layers.flat_input(features, params)
  return layers.dense(net, params["n_classes"], "logits")
