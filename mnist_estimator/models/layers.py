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


def _winograd_applies(inputs: tf.Tensor, kernel_size: Union[int, Sequence[int]],
                      padding: str) -> bool:
  return _WINOGRAD.get() and winograd.applies(inputs.shape, inputs.dtype, kernel_size,
                                              padding=padding)


class _Conv2D(tf.compat.v1.layers.Conv2D):
  """conv2d's layer as a training step computes it: by Winograd, or max pooled, or both.

  Built as tf.compat.v1.layers.conv2d builds its layer (same scope, so the same variables,
  `name/kernel|bias`). use_winograd: the convolution is winograd.conv5x5. pool (size, strides,
  padding, as max_pooling2d takes them): the layer's output is max pooled, and the bias' and
  ReLU's gradients run on the pooled map (_fused_conv_pool); on the full maps these
  element-wise ops cost, in bf16, as much as a convolution. With Winograd, whose convolution
  no bias or ReLU fuses into, the pool comes before the bias and the activation: max pooling
  commutes with a per-channel bias and with ReLU (both are monotone, and so is their
  floating-point rounding), so `relu(pool(conv) + b)` is `pool(relu(conv + b))`.
  """

  def __init__(self, filters: int, kernel_size: Union[int, Sequence[int]], name: str,
               padding: str, activation: Optional[Callable[[tf.Tensor], tf.Tensor]],
               use_winograd: bool, pool: Optional[Sequence[Any]] = None) -> None:
    super().__init__(filters, kernel_size, padding=padding, activation=activation,
                     kernel_initializer=_kernel_init(),
                     bias_initializer=tf.compat.v1.zeros_initializer(), name=name, _scope=name)
    self._use_winograd = use_winograd
    self._pool = None if pool is None else tuple(pool)

  def convolution_op(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    # Only a Winograd layer gets here: a pooled layer without it is _fused_conv_pool's.
    if self._use_winograd:
      return winograd.conv5x5(inputs, kernel)
    return super().convolution_op(inputs, kernel)

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    if self._pool is None:
      return super().call(inputs)
    size, strides, padding = self._pool
    if not self._use_winograd:
      return _fused_conv_pool(inputs, tf.convert_to_tensor(self.kernel),
                              tf.convert_to_tensor(self.bias), self.padding.upper(),
                              (size, strides, padding.upper()), self.activation is not None)
    net = self.convolution_op(inputs, self.kernel)
    net = tf.nn.max_pool2d(net, size, strides, padding.upper())
    net = tf.nn.bias_add(net, self.bias)
    return self.activation(net) if self.activation is not None else net


def _fused_conv_pool(inputs: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, padding: str,
                     pool: Sequence[Any], relu: bool) -> tf.Tensor:
  """max_pool(relu(conv(inputs) + bias)), with the bias and ReLU gradients on the pooled map.

  Forward, grappler fuses the convolution, bias and ReLU into one oneDNN convolution: no
  element-wise op runs. Backward, ReLU's mask and the bias' sum are taken on the pooled
  gradient (a 2x2 max pool hands each window's gradient to one value, so the sum is the
  same), and only the max pool's gradient runs on the full map.

  Args:
    inputs: NHWC batch, float32 or bf16.
    kernel, bias: the layer's weights, as tensors of the inputs' dtype.
    padding: the convolution's, "SAME" or "VALID" (stride 1).
    pool: (size, strides, padding) of the max pool; size == strides (windows that do not
      overlap, which the bias' pooled sum needs).
    relu: ReLU after the bias (else a linear layer).

  Returns:
    The pooled activations.
  """
  size, strides, pool_padding = pool
  assert size == strides, "the bias' pooled gradient needs windows that do not overlap"

  @tf.custom_gradient
  def block(inputs: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor) -> Any:
    full = tf.nn.bias_add(tf.nn.conv2d(inputs, kernel, 1, padding, name="Conv2D"), bias)
    full = tf.nn.relu(full) if relu else full
    pooled = tf.nn.max_pool2d(full, size, strides, pool_padding)

    def grad(dy: tf.Tensor) -> Any:
      if relu:  # zero where the pooled value is 0: there the window's maximum was clipped
        dy = tf.raw_ops.ReluGrad(gradients=dy, features=pooled)
      dfull = tf.raw_ops.MaxPoolGrad(orig_input=full, orig_output=pooled, grad=dy,
                                     ksize=[1, size, size, 1], strides=[1, strides, strides, 1],
                                     padding=pool_padding)
      strides4 = [1, 1, 1, 1]
      return (tf.compat.v1.nn.conv2d_backprop_input(tf.shape(inputs), kernel, dfull, strides4,
                                                    padding),
              tf.compat.v1.nn.conv2d_backprop_filter(inputs, tf.shape(kernel), dfull, strides4,
                                                     padding),
              tf.raw_ops.BiasAddGrad(out_backprop=dy))

    return pooled, grad

  return block(inputs, kernel, bias)


def conv2d(inputs: tf.Tensor, filters: int, kernel_size: Union[int, Sequence[int]], name: str,
           padding: str = "same",
           activation: Optional[Callable[[tf.Tensor], tf.Tensor]] = tf.nn.relu) -> tf.Tensor:
  """tf.compat.v1.layers.conv2d with a graph-seeded initializer; variables `name/kernel|bias`."""
  if _winograd_applies(inputs, kernel_size, padding):
    return _Conv2D(filters, kernel_size, name, padding, activation, use_winograd=True)(inputs)
  return tf.compat.v1.layers.conv2d(inputs, filters, kernel_size, padding=padding,
                                    activation=activation, name=name,
                                    kernel_initializer=_kernel_init())


def conv_pool(inputs: tf.Tensor, filters: int, kernel_size: int, name: str, pool_name: str,
              mode: str, padding: str = "same", pool_padding: str = "valid",
              activation: Optional[Callable[[tf.Tensor], tf.Tensor]] = tf.nn.relu) -> tf.Tensor:
  """conv2d(inputs, ...) then 2x2 max pooling of stride 2 named `pool_name`.

  The training step of a ReLU (or linear) layer takes the bias' and the ReLU's gradients on
  the pooled map (_Conv2D: the same values); evaluation, predict and export build conv2d and
  max_pooling2d as they read, so the SavedModel's graph is the layers' own.

  Args:
    inputs: NHWC batch, float32 or bf16.
    filters, kernel_size, name, padding, activation: as conv2d takes them.
    pool_name: the pooling layer's name where it is built as written.
    mode: a tf.estimator.ModeKeys value.
    pool_padding: the pooling's padding ("valid" or "same").

  Returns:
    The pooled activations, [batch, H/2, W/2, filters] (H and W after the convolution).
  """
  if not is_training(mode) or activation not in (tf.nn.relu, None):
    net = conv2d(inputs, filters, kernel_size, name, padding=padding, activation=activation)
    return tf.compat.v1.layers.max_pooling2d(net, 2, 2, padding=pool_padding, name=pool_name)
  return _Conv2D(filters, kernel_size, name, padding, activation,
                 use_winograd=_winograd_applies(inputs, kernel_size, padding),
                 pool=(2, 2, pool_padding))(inputs)


def dropout(inputs: tf.Tensor, rate: Optional[float], mode: str,
            name: str = "dropout") -> tf.Tensor:
  """Dropout at `rate` in TRAIN mode only, seeded by the graph seed; identity otherwise."""
  if not rate or not is_training(mode):
    return inputs
  if inputs.dtype != tf.bfloat16:
    return tf.nn.dropout(inputs, rate=rate, name=name)
  # tf.nn.dropout draws, compares and selects in the input's dtype, and Eigen's bf16
  # select is 7x slower than its float32 one, twice per step (forward and gradient). The
  # same dropout as one multiply by a mask drawn and scaled in float32, off the critical
  # path: kept values times 1/(1 - rate) (rounded to bf16, as tf.nn.dropout rounds it).
  with tf.name_scope(name):
    keep = tf.random.uniform(tf.shape(inputs), dtype=tf.float32) >= rate
    scale = float(tf.bfloat16.as_numpy_dtype(1.0 / (1.0 - rate)))
    return inputs * tf.cast(tf.where(keep, scale, 0.0), tf.bfloat16)
