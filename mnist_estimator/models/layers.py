"""Small shared building blocks for the networks (input reshape, activations)."""

import contextlib
import contextvars
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Union

import tensorflow as tf

from mnist_estimator.models import winograd

# What a network is called with: features {"x": a batch}, and the run's params (image_shape,
# n_classes, hidden_units, ...).
Features = Mapping[str, tf.Tensor]
Params = Mapping[str, Any]

ACTIVATIONS: Dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "relu": tf.nn.relu,
    "sigmoid": tf.nn.sigmoid,
    "tanh": tf.nn.tanh,
    "elu": tf.nn.elu,
}


def float_input(features: Features) -> tf.Tensor:
  """`features["x"]` as floats: float32, or bf16 as the training step may hand it in."""
  x = features["x"]
  return x if x.dtype in (tf.float32, tf.bfloat16) else tf.cast(x, tf.float32)


def image_input(features: Features, params: Params) -> tf.Tensor:
  """Returns `features["x"]` as a float batch of shape [-1, H, W, C].

  Args:
    features: dict with key "x", any shape that holds H*W*C values per example.
    params: dict with "image_shape" (H, W, C).
  """
  height, width, channels = params["image_shape"]
  return tf.reshape(float_input(features), [-1, height, width, channels])


def flat_input(features: Features, params: Params) -> tf.Tensor:
  """Returns `features["x"]` flattened to [-1, H*W*C]."""
  height, width, channels = params["image_shape"]
  return tf.reshape(float_input(features), [-1, height * width * channels])


def is_training(mode: str) -> bool:
  """True in TRAIN mode: dropout and the like are active only then."""
  return mode == tf.estimator.ModeKeys.TRAIN


# tf.compat.v1.layers' default kernel initializer (Keras') draws its seed from Python's
# random module, so --seed would not fix it; the v1 initializer follows the graph seed.
def _kernel_init() -> Any:
  return tf.compat.v1.glorot_uniform_initializer()


def dense(inputs: tf.Tensor, units: int, name: str,
          activation: Optional[Callable[[tf.Tensor], tf.Tensor]] = None) -> tf.Tensor:
  """tf.compat.v1.layers.dense with a graph-seeded initializer; variables `name/kernel|bias`."""
  return tf.compat.v1.layers.dense(inputs, units, activation=activation, name=name,
                                   kernel_initializer=_kernel_init())


# Set by winograd_convs() around a training step's network.
_WINOGRAD = contextvars.ContextVar("winograd", default=False)


@contextlib.contextmanager
def winograd_convs() -> Iterator[None]:
  """Within it, conv2d computes the convolutions Winograd suits by F(4x4, 5x5) matmuls.

  The training step's choice (--conv_algorithm): the variables, their names and the math are
  the same; evaluation, predict and export keep oneDNN's convolution (portable formats read
  a Conv2D op).
  """
  token = _WINOGRAD.set(True)
  try:
    yield
  finally:
    _WINOGRAD.reset(token)


class _WinogradConv2D(tf.compat.v1.layers.Conv2D):
  """tf.compat.v1.layers.Conv2D computed by winograd.conv5x5 (where winograd.applies)."""

  def convolution_op(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    return winograd.conv5x5(inputs, kernel)


def conv2d(inputs: tf.Tensor, filters: int, kernel_size: Union[int, Sequence[int]], name: str,
           padding: str = "same",
           activation: Optional[Callable[[tf.Tensor], tf.Tensor]] = tf.nn.relu) -> tf.Tensor:
  """tf.compat.v1.layers.conv2d with a graph-seeded initializer; variables `name/kernel|bias`."""
  if _WINOGRAD.get() and winograd.applies(inputs.shape, inputs.dtype, kernel_size,
                                          padding=padding):
    # As tf.compat.v1.layers.conv2d builds its layer (same scope, so the same variables).
    return _WinogradConv2D(filters, kernel_size, padding=padding, activation=activation,
                           kernel_initializer=_kernel_init(),
                           bias_initializer=tf.compat.v1.zeros_initializer(), name=name,
                           _scope=name)(inputs)
  return tf.compat.v1.layers.conv2d(inputs, filters, kernel_size, padding=padding,
                                    activation=activation, name=name,
                                    kernel_initializer=_kernel_init())


def dropout(inputs: tf.Tensor, rate: Optional[float], mode: str,
            name: str = "dropout") -> tf.Tensor:
  """Dropout at `rate` in TRAIN mode only, seeded by the graph seed; identity otherwise."""
  if not rate or not is_training(mode):
    return inputs
  return tf.nn.dropout(inputs, rate=rate, name=name)
