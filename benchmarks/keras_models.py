"""Keras twins of the Estimator networks (same layers, same parameters) and their timed fit."""

import time

import numpy as np
import tensorflow as tf

_layers = tf.keras.layers


def _head(net, params):
  """flatten -> dense hidden_units[0] ReLU -> dropout (if any) -> logits, as both models end.

  Under a mixed policy the logits go back to float32 for the loss, as Keras' mixed
  precision guide says (and as our head does).
  """
  net = _layers.Flatten(name="flatten")(net)
  net = _layers.Dense(params["hidden_units"][0], activation="relu", name="dense")(net)
  if params.get("dropout"):  # layers.dropout is the identity at rate 0, so add none
    net = _layers.Dropout(params["dropout"], name="dropout")(net)
  logits = _layers.Dense(params["n_classes"], name="logits")(net)
  if tf.keras.mixed_precision.global_policy().compute_dtype != "float32":
    logits = _layers.Activation("linear", dtype="float32", name="float32_logits")(logits)
  return logits


def _convnet(name, image_shape, n_classes, params, kernel, padding):
  """conv1 32 -> pool 2 -> conv2 64 -> pool 2 (ReLU, kernel x kernel) -> the dense head."""
  inputs = tf.keras.Input(shape=tuple(image_shape), name="x")
  net = _layers.Conv2D(32, kernel, padding=padding, activation="relu", name="conv1")(inputs)
  net = _layers.MaxPooling2D(2, 2, name="pool1")(net)
  net = _layers.Conv2D(64, kernel, padding=padding, activation="relu", name="conv2")(net)
  net = _layers.MaxPooling2D(2, 2, name="pool2")(net)
  return tf.keras.Model(inputs, _head(net, {**params, "n_classes": n_classes}), name=name)


def build_cnn(image_shape, n_classes, params):
  """The cnn_mnist tutorial network of models/cnn.py as a Keras model returning logits.

  conv1 32x5x5 same ReLU -> pool 2x2 -> conv2 64x5x5 same ReLU -> pool 2x2
  -> flatten -> dense hidden_units[0] (1024) ReLU -> dropout -> logits.

  Args:
    image_shape: (H, W, C) of the data set.
    n_classes: number of classes (logits).
    params: dict with hidden_units and dropout (the Estimator's params).

  Returns:
    An uncompiled tf.keras.Model from float images [batch, H, W, C] to logits.
  """
  return _convnet("cnn", image_shape, n_classes, params, kernel=5, padding="same")


def build_keras_cnn(image_shape, n_classes, params):
  """The seed-004 Keras CNN of models/keras_cnn.py (121,930 parameters on MNIST).

  conv1 32x3x3 valid ReLU -> pool 2 -> conv2 64x3x3 valid ReLU -> pool 2
  -> flatten -> dense hidden_units[0] (64) ReLU -> (dropout) -> logits.

  Args and Returns: as build_cnn.
  """
  return _convnet("keras_cnn", image_shape, n_classes, params, kernel=3, padding="valid")


KERAS_MODELS = {"cnn": build_cnn, "keras_cnn": build_keras_cnn}

# The Keras counterparts of optimizers.OPTIMIZERS. Adam's epsilon is tf.compat.v1's 1e-8
# (Keras defaults to 1e-7) so that both sides run the same update.
KERAS_OPTIMIZERS = {
    "sgd": lambda lr: tf.keras.optimizers.SGD(lr),
    "momentum": lambda lr: tf.keras.optimizers.SGD(lr, momentum=0.9),
    "adam": lambda lr: tf.keras.optimizers.Adam(lr, epsilon=1e-8),
    "adagrad": lambda lr: tf.keras.optimizers.Adagrad(lr),
    "rmsprop": lambda lr: tf.keras.optimizers.RMSprop(lr),
}


def keras_optimizer(name, learning_rate):
  """Returns the Keras optimizer matching an optimizers.py name, or None if there is none."""
  make = KERAS_OPTIMIZERS.get(name)
  return make(learning_rate) if make else None


class _KerasTimer(tf.keras.callbacks.Callback):
  """StepTimer for Model.fit: wall time at the end of batch `warmup` and `warmup + steps`."""

  def __init__(self, warmup, steps):
    super().__init__()
    # Logs stay tensors: no numpy conversion per batch beyond what fit itself does.
    self._supports_tf_logs = True
    self._marks = (warmup, warmup + steps)
    self.started = self.ended = None

  def on_train_batch_begin(self, batch, logs=None):
    if batch == 0 and self._marks[0] == 0:
      self.started = time.perf_counter()

  def on_train_batch_end(self, batch, logs=None):
    # Eager execution is synchronous on the CPU: the step is done when fit calls back.
    if batch + 1 == self._marks[0]:
      self.started = time.perf_counter()
    if batch + 1 == self._marks[1]:
      self.ended = time.perf_counter()


def keras_dataset(data, batch_size):
  """The usual Keras pipeline: from_tensor_slices.shuffle(60000).repeat().batch(B).prefetch."""
  images = data.x_train.astype(np.float32) / 255.0  # as the Estimator's pipelines scale
  ds = tf.data.Dataset.from_tensor_slices((images, data.y_train.astype(np.int32)))
  return ds.shuffle(60000).repeat().batch(batch_size).prefetch(tf.data.AUTOTUNE)


def time_keras(params, data, batch_size, warmup, steps, bf16=False):
  """Times Keras Model.fit of the model's Keras twin on the same data and optimizer.

  One fit of warmup + steps steps, compiled as a user would (graph mode, no XLA);
  a callback notes the time after the warmup and after the last step, so building
  the iterator and filling the shuffle buffer fall outside, as graph building and
  session start do for the Estimator.

  Args:
    params: the Estimator params (model, image_shape, n_classes, hidden_units,
      dropout, optimizer, learning_rate).
    data: the datasets.Dataset.
    batch_size: images per step.
    warmup: untimed steps first.
    steps: timed steps.
    bf16: train under Keras' mixed_bfloat16 policy (bf16 compute, float32 variables).

  Returns:
    dict with seconds, steps, steps_per_sec, images_per_sec, precision and params
    (the Keras count_params), or None if the model or its optimizer has no Keras twin.
  """
  build = KERAS_MODELS.get(params["model"])
  optimizer = keras_optimizer(params["optimizer"], params["learning_rate"])
  if build is None or optimizer is None:
    return None
  policy = tf.keras.mixed_precision
  policy.set_global_policy("mixed_bfloat16" if bf16 else "float32")
  try:
    model = build(params["image_shape"], params["n_classes"], params)
    model.compile(optimizer=optimizer, metrics=["accuracy"],
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    timer = _KerasTimer(warmup, steps)
    model.fit(keras_dataset(data, batch_size), steps_per_epoch=warmup + steps, epochs=1,
              verbose=0, callbacks=[timer])
  finally:
    policy.set_global_policy("float32")
  seconds = timer.ended - timer.started
  return {"seconds": seconds, "steps": steps, "steps_per_sec": steps / seconds,
          "images_per_sec": steps * batch_size / seconds, "params": int(model.count_params()),
          "precision": "bf16" if bf16 else "fp32"}
