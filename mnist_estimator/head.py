"""The one shared head: logits -> EstimatorSpec for TRAIN, EVAL and PREDICT."""

import tensorflow as tf

from mnist_estimator import optimizers

ModeKeys = tf.estimator.ModeKeys
# Signature names in every SavedModel; serving_default is what TF Serving calls by default.
SERVING_KEY = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY


def _predictions(logits):
  probabilities = tf.nn.softmax(logits, name="softmax_tensor")  # the tutorial's hook name
  classes = tf.argmax(logits, axis=1, output_type=tf.int32, name="classes")
  return {"classes": classes, "probabilities": probabilities}


def _export_outputs(predictions, n_classes):
  """Signatures: serving_default/predict (classes, probabilities) and classify."""
  predict = tf.estimator.export.PredictOutput(predictions)
  probabilities = predictions["probabilities"]
  # ClassificationOutput wants string class names, one row per example.
  names = tf.as_string(tf.range(n_classes))
  names = tf.tile(tf.expand_dims(names, 0), [tf.shape(probabilities)[0], 1])
  classify = tf.estimator.export.ClassificationOutput(scores=probabilities, classes=names)
  return {SERVING_KEY: predict, "predict": predict, "classify": classify}


def _train_op(loss, params):
  lr = optimizers.learning_rate(params)
  tf.compat.v1.summary.scalar("learning_rate", lr)
  optimizer = optimizers.build(params["optimizer"], lr)
  # Batch-norm style layers put their moving-average updates in UPDATE_OPS.
  update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  with tf.control_dependencies(update_ops):
    return optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())


def build_spec(logits, labels, mode, params):
  """Turns a model's logits into the EstimatorSpec for `mode`.

  Named tensors for hooks: `softmax_tensor` (probabilities), `classes`,
  `cross_entropy`, `train_accuracy` (the batch's accuracy) and
  `optimizer/learning_rate`. The train summary `accuracy` has the same tag as the
  eval metric (and `loss` as the eval loss), so TensorBoard overlays the curves.

  Args:
    logits: float32 [batch, n_classes].
    labels: int [batch] or [batch, 1] class ids; None in PREDICT.
    mode: a tf.estimator.ModeKeys value.
    params: dict with n_classes, optimizer, learning_rate.

  Returns:
    A tf.estimator.EstimatorSpec.
  """
  predictions = _predictions(logits)
  if mode == ModeKeys.PREDICT:
    return tf.estimator.EstimatorSpec(
        mode, predictions=predictions,
        export_outputs=_export_outputs(predictions, params["n_classes"]))
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
  cross_entropy = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
  cross_entropy = tf.identity(cross_entropy, name="cross_entropy")
  loss = cross_entropy + tf.compat.v1.losses.get_regularization_loss()
  if mode == ModeKeys.EVAL:
    accuracy = tf.compat.v1.metrics.accuracy(labels, predictions["classes"], name="accuracy")
    return tf.estimator.EstimatorSpec(mode, loss=loss, predictions=predictions,
                                      eval_metric_ops={"accuracy": accuracy})
  correct = tf.cast(tf.equal(labels, predictions["classes"]), tf.float32)
  batch_accuracy = tf.reduce_mean(correct, name="train_accuracy")
  tf.compat.v1.summary.scalar("accuracy", batch_accuracy)
  # A summary's tag is its op name, so these tags must differ from the tensors' names.
  tf.compat.v1.summary.scalar("losses/cross_entropy", cross_entropy)
  return tf.estimator.EstimatorSpec(mode, loss=loss, predictions=predictions,
                                    train_op=_train_op(loss, params))
