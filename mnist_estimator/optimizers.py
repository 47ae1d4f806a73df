"""Registry of optimizer names -> tf.compat.v1 optimizers, and the learning-rate tensor."""

import tensorflow as tf

from mnist_estimator.errors import UsageError

_v1 = tf.compat.v1.train

OPTIMIZERS = {
    "sgd": _v1.GradientDescentOptimizer,
    "momentum": lambda lr: _v1.MomentumOptimizer(lr, momentum=0.9),
    "adam": _v1.AdamOptimizer,
    "adagrad": _v1.AdagradOptimizer,
    "rmsprop": _v1.RMSPropOptimizer,
    "ftrl": _v1.FtrlOptimizer,
}


def optimizer_names():
  """Returns the registered optimizer names, sorted."""
  return sorted(OPTIMIZERS)


def learning_rate(params):
  """Returns the learning-rate tensor, named `optimizer/learning_rate` for hooks.

  Args:
    params: dict with "learning_rate" (float).
  """
  with tf.name_scope("optimizer"):
    return tf.identity(tf.constant(params["learning_rate"], tf.float32), name="learning_rate")


def build(name, lr):
  """Creates an optimizer.

  Args:
    name: a registered optimizer name.
    lr: float or scalar tensor.

  Returns:
    A tf.compat.v1.train.Optimizer.

  Raises:
    UsageError: for an unknown name; the message lists the names.
  """
  if name not in OPTIMIZERS:
    raise UsageError(f"unknown optimizer {name!r}; choose --optimizer from: "
                     f"{', '.join(optimizer_names())}")
  return OPTIMIZERS[name](lr)
