"""Registry of optimizer names -> tf.compat.v1 optimizers, and the learning-rate tensor."""

from typing import Any, Callable, Dict, List, Mapping, Optional, Union

import tensorflow as tf

from mnist_estimator.common.errors import UsageError

_v1 = tf.compat.v1.train

# name -> (learning rate -> a tf.compat.v1.train.Optimizer)
OPTIMIZERS: Dict[str, Callable[[Any], Any]] = {
    "sgd": _v1.GradientDescentOptimizer,
    "momentum": lambda lr: _v1.MomentumOptimizer(lr, momentum=0.9),
    "adam": _v1.AdamOptimizer,
    "adagrad": _v1.AdagradOptimizer,
    "rmsprop": _v1.RMSPropOptimizer,
    "ftrl": _v1.FtrlOptimizer,
}


def optimizer_names() -> List[str]:
  """Returns the registered optimizer names, sorted."""
  return sorted(OPTIMIZERS)


def learning_rate(params: Mapping[str, Any], global_step: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Returns the learning-rate tensor, named `optimizer/learning_rate` for hooks.

  With params["lr_decay_rate"] (0 < rate < 1) and a global_step, the rate decays
  exponentially in stairs of params["lr_decay_steps"] steps, as in seed 002:
  lr * rate ** floor(step / decay_steps).

  Args:
    params: dict with "learning_rate" and optionally lr_decay_rate, lr_decay_steps.
    global_step: the global step tensor (needed for decay).
  """
  rate = params.get("lr_decay_rate") or 1.0
  with tf.name_scope("optimizer"):
    lr = tf.constant(params["learning_rate"], tf.float32)
    if rate < 1.0 and global_step is not None:
      lr = tf.compat.v1.train.exponential_decay(
          lr, global_step, params["lr_decay_steps"], rate, staircase=True)
    return tf.identity(lr, name="learning_rate")


def build(name: str, lr: Union[float, tf.Tensor]) -> Any:
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
