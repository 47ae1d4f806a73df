"""Registry of optimizer names -> tf.compat.v1 optimizers, and the learning-rate tensor."""

from typing import Any, Callable, Dict, List, Mapping, Optional, Union

import tensorflow as tf

from mnist_estimator.common.errors import UsageError

_v1 = tf.compat.v1.train

# name -> ((learning rate, params) -> a tf.compat.v1.train.Optimizer)
OPTIMIZERS: Dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "sgd": lambda lr, _: _v1.GradientDescentOptimizer(lr),
    "momentum": lambda lr, _: _v1.MomentumOptimizer(lr, momentum=0.9),
    "adam": lambda lr, p: _v1.AdamOptimizer(lr, p.get("adam_beta1", 0.9),
                                            p.get("adam_beta2", 0.999),
                                            p.get("adam_epsilon", 1e-8)),
    "adagrad": lambda lr, _: _v1.AdagradOptimizer(lr),
    "rmsprop": lambda lr, _: _v1.RMSPropOptimizer(lr),
    "ftrl": lambda lr, _: _v1.FtrlOptimizer(lr),
}

# --lr_schedule: name -> what it does (the help and the error list are made from it).
SCHEDULES = {
    "decay": "constant, or decayed in stairs with --lr_decay_rate < 1",
    "one_cycle": "a linear rise from --learning_rate/10 to --learning_rate over the first "
                 "--lr_warmup share of the steps, then a linear fall to 0 at the last step",
}


def optimizer_names() -> List[str]:
  """Returns the registered optimizer names, sorted."""
  return sorted(OPTIMIZERS)


def schedule_help() -> str:
  """--lr_schedule's help, from SCHEDULES."""
  return "Learning-rate schedule: " + "; ".join(f"{k} - {v}" for k, v in SCHEDULES.items())


def one_cycle(peak: float, step: tf.Tensor, total_steps: int, warmup: float) -> tf.Tensor:
  """The one-cycle rate at `step` of `total_steps` (benchmarks/tta_recipe.py writes it again).

  Why: a short run reaches its accuracy soonest with a high rate in the middle of its steps
  and none at the end (99.0% on MNIST in one epoch of fast_cnn).
  """
  t = tf.cast(step, tf.float32) / float(max(1, total_steps))
  rise = peak * (0.1 + 0.9 * t / max(warmup, 1e-6))
  fall = peak * tf.maximum(0.0, (1.0 - t) / (1.0 - warmup))
  return tf.where(t < warmup, rise, fall)


def learning_rate(params: Mapping[str, Any], global_step: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Returns the learning-rate tensor, named `optimizer/learning_rate` for hooks.

  --lr_schedule=decay: with params["lr_decay_rate"] (0 < rate < 1) and a global_step, the
  rate decays exponentially in stairs of params["lr_decay_steps"] steps, as in seed 002:
  lr * rate ** floor(step / decay_steps). one_cycle: see `one_cycle`, over
  params["total_steps"] (the run's last step).

  Args:
    params: dict with "learning_rate" and optionally lr_schedule, lr_decay_rate,
      lr_decay_steps, lr_warmup, total_steps.
    global_step: the global step tensor (needed for a schedule).
  """
  rate = params.get("lr_decay_rate") or 1.0
  with tf.name_scope("optimizer"):
    lr = tf.constant(params["learning_rate"], tf.float32)
    if global_step is not None and params.get("lr_schedule") == "one_cycle":
      lr = one_cycle(params["learning_rate"], global_step, params["total_steps"],
                     params["lr_warmup"])
    elif rate < 1.0 and global_step is not None:
      lr = tf.compat.v1.train.exponential_decay(
          lr, global_step, params["lr_decay_steps"], rate, staircase=True)
    return tf.identity(lr, name="learning_rate")


def build(name: str, lr: Union[float, tf.Tensor],
          params: Optional[Mapping[str, Any]] = None) -> Any:
  """Creates an optimizer.

  Args:
    name: a registered optimizer name.
    lr: float or scalar tensor.
    params: the model_fn's params (adam_beta1, adam_beta2, adam_epsilon for Adam).

  Returns:
    A tf.compat.v1.train.Optimizer.

  Raises:
    UsageError: for an unknown name; the message lists the names.
  """
  if name not in OPTIMIZERS:
    raise UsageError(f"unknown optimizer {name!r}; choose --optimizer from: "
                     f"{', '.join(optimizer_names())}")
  return OPTIMIZERS[name](lr, params or {})
