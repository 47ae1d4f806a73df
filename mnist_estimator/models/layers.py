"""Small shared building blocks for the networks (input reshape, activations)."""

import tensorflow as tf

ACTIVATIONS = {
    "relu": tf.nn.relu,
    "sigmoid": tf.nn.sigmoid,
    "tanh": tf.nn.tanh,
    "elu": tf.nn.elu,
}


def float_input(features):
  """`features["x"]` as floats: float32, or bf16 as the training step may hand it in."""
  x = features["x"]
  return x if x.dtype in (tf.float32, tf.bfloat16) else tf.cast(x, tf.float32)


def image_input(features, params):
  """Returns `features["x"]` as a float batch of shape [-1, H, W, C].

  Args:
    features: dict with key "x", any shape that holds H*W*C values per example.
    params: dict with "image_shape" (H, W, C).
  """
  height, width, channels = params["image_shape"]
  return tf.reshape(float_input(features), [-1, height, width, channels])


def flat_input(features, params):
  """Returns `features["x"]` flattened to [-1, H*W*C]."""
  height, width, channels = params["image_shape"]
  return tf.reshape(float_input(features), [-1, height * width * channels])


def is_training(mode):
  """True in TRAIN mode: dropout and the like are active only then."""
  return mode == tf.estimator.ModeKeys.TRAIN


# tf.compat.v1.layers' default kernel initializer (Keras') draws its seed from Python's
# random module, so --seed would not fix it; the v1 initializer follows the graph seed.
def _kernel_init():
  return tf.compat.v1.glorot_uniform_initializer()


def dense(inputs, units, name, activation=None):
  """tf.compat.v1.layers.dense with a graph-seeded initializer; variables `name/kernel|bias`."""
  return tf.compat.v1.layers.dense(inputs, units, activation=activation, name=name,
                                   kernel_initializer=_kernel_init())


def conv2d(inputs, filters, kernel_size, name, padding="same", activation=tf.nn.relu):
  """tf.compat.v1.layers.conv2d with a graph-seeded initializer; variables `name/kernel|bias`."""
  return tf.compat.v1.layers.conv2d(inputs, filters, kernel_size, padding=padding,
                                    activation=activation, name=name,
                                    kernel_initializer=_kernel_init())


def dropout(inputs, rate, mode, name="dropout"):
  """Dropout at `rate` in TRAIN mode only, seeded by the graph seed; identity otherwise."""
  if not rate or not is_training(mode):
    return inputs
  return tf.nn.dropout(inputs, rate=rate, name=name)
