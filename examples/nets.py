"""Two networks of your own for mnist_estimator: a logits function and a full model_fn."""

import tensorflow as tf

from mnist_estimator.models import custom


@custom.logits(optimizer="adam", learning_rate=0.002, batch_size=32, steps=150)
def small_cnn(features, mode, params):
  """conv 16 -> pool -> conv 32 -> pool -> dense 64 -> logits; the shared head does the rest."""
  height, width, channels = params["image_shape"]
  net = tf.reshape(features["x"], [-1, height, width, channels])
  for i, filters in enumerate((16, 32)):
    net = tf.compat.v1.layers.conv2d(net, filters, 3, padding="same", activation=tf.nn.relu,
                                     name=f"conv{i + 1}")
    net = tf.compat.v1.layers.max_pooling2d(net, 2, 2, name=f"pool{i + 1}")
  net = tf.compat.v1.layers.dense(tf.compat.v1.layers.flatten(net), 64, tf.nn.relu,
                                  name="dense")
  if mode == tf.estimator.ModeKeys.TRAIN:
    net = tf.nn.dropout(net, rate=0.2)
  return tf.compat.v1.layers.dense(net, params["n_classes"], name="logits")


@custom.model_fn(optimizer="adam", learning_rate=0.005, batch_size=32, steps=150)
def linear_model_fn(features, labels, mode, params):
  """A whole tf.estimator model_fn: softmax regression with its own loss and metrics."""
  pixels = tf.compat.v1.layers.flatten(features["x"])
  logits = tf.compat.v1.layers.dense(pixels, params["n_classes"], name="logits")
  predictions = {"classes": tf.argmax(logits, 1, output_type=tf.int32),
                 "probabilities": tf.nn.softmax(logits)}
  if mode == tf.estimator.ModeKeys.PREDICT:
    return tf.estimator.EstimatorSpec(mode, predictions=predictions)
  loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
  accuracy = tf.compat.v1.metrics.accuracy(labels, predictions["classes"])
  step = tf.compat.v1.train.get_global_step()
  train_op = tf.compat.v1.train.AdamOptimizer(params["learning_rate"]).minimize(loss, step)
  return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op, predictions=predictions,
                                    eval_metric_ops={"accuracy": accuracy})
