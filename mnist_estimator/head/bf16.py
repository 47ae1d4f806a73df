"""The training step in bfloat16: bf16 compute on float32 master weights (mixed_bfloat16)."""

import contextlib
from typing import Any, Callable, Iterator, Mapping

import tensorflow as tf


def _master_weights_getter(getter: Callable[..., Any], name: str, *args: Any,
                           **kwargs: Any) -> Any:
  """A variable asked for in bf16 is made float32 (the checkpointed master) and cast."""
  dtype = kwargs.get("dtype")
  if dtype is None or tf.as_dtype(dtype) != tf.bfloat16:
    return getter(name, *args, **kwargs)
  kwargs["dtype"] = tf.float32
  return tf.cast(getter(name, *args, **kwargs), tf.bfloat16)


@contextlib.contextmanager
def _master_weights() -> Iterator[None]:
  with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(),
                                   custom_getter=_master_weights_getter,
                                   auxiliary_name_scope=False):
    yield


def train_logits(logits_fn: Callable[..., tf.Tensor], features: Mapping[str, tf.Tensor],
                 mode: str, params: Mapping[str, Any]) -> tf.Tensor:
  """A model's logits for the training step in bf16: what Keras' mixed_bfloat16 does.

  The input is cast to bf16 once, so every layer computes and hands on bf16; each
  layer's variables stay float32 (same names and checkpoints as fp32 runs, so resume,
  warm start, EMA and L2 see float32) and are cast where they are read. The logits go
  back to float32 for the softmax, loss and metrics.

  Args:
    logits_fn: a model's `(features, mode, params) -> logits`.
    features: dict with "x", float32.
    mode: a tf.estimator.ModeKeys value (TRAIN).
    params: the model's params.

  Returns:
    float32 logits.
  """
  cast = dict(features, x=tf.cast(features["x"], tf.bfloat16))
  with _master_weights():
    logits = logits_fn(cast, mode, params)
  return tf.cast(logits, tf.float32)
