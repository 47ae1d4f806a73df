"""Small shared building blocks for the networks (input reshape, activations)."""

import tensorflow as tf

ACTIVATIONS = {
    "relu": tf.nn.relu,
    "sigmoid": tf.nn.sigmoid,
    "tanh": tf.nn.tanh,
    "elu": tf.nn.elu,
}


def image_input(features, params):
  """Returns `features["x"]` as a float batch of shape [-1, H, W, C].

  Args:
    features: dict with key "x", any shape that holds H*W*C values per example.
    params: dict with "image_shape" (H, W, C).
  """
  height, width, channels = params["image_shape"]
  return tf.reshape(tf.cast(features["x"], tf.float32), [-1, height, width, channels])


def flat_input(features, params):
  """Returns `features["x"]` flattened to [-1, H*W*C]."""
  height, width, channels = params["image_shape"]
  return tf.reshape(tf.cast(features["x"], tf.float32), [-1, height * width * channels])


def is_training(mode):
  """True in TRAIN mode: dropout and the like are active only then."""
  return mode == tf.estimator.ModeKeys.TRAIN
