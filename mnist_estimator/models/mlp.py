"""The moving-average MLP of seed 002: 784 -> 500 ReLU -> 10."""

import tensorflow as tf

from mnist_estimator.models import layers


def logits(features: layers.Features, mode: str, params: layers.Params) -> tf.Tensor:
  """flatten -> `hidden` (hidden_units[0], ReLU) -> `logits`.

  The seed's other ingredients are generic head features set by this model's
  defaults: L2 on the kernels (params["l2"]), exponential learning-rate decay per
  epoch (lr_decay_rate, lr_decay_steps) and an ExponentialMovingAverage of the
  weights used for EVAL, PREDICT and export (moving_average_decay). Weights start
  as the seed's: truncated normal (stddev 0.1), biases 0.1.

  Args:
    features: dict with "x", images of params["image_shape"].
    mode: unused (no dropout).
    params: dict with image_shape, n_classes, hidden_units ([500]), activation.

  Returns:
    Logits, float32 [batch, n_classes].
  """
  del mode
  init = dict(kernel_initializer=tf.compat.v1.truncated_normal_initializer(stddev=0.1),
              bias_initializer=tf.compat.v1.constant_initializer(0.1))
  act = layers.ACTIVATIONS[params["activation"]]
  net = layers.flat_input(features, params)
  net = tf.compat.v1.layers.dense(net, params["hidden_units"][0], activation=act,
                                  name="hidden", **init)
  return tf.compat.v1.layers.dense(net, params["n_classes"], name="logits", **init)
