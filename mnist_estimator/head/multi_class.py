"""The one shared multi-class head: logits -> EstimatorSpec for TRAIN, EVAL and PREDICT."""

from typing import Any, Dict, Mapping, Optional, Sequence

import tensorflow as tf

from mnist_estimator.common.saved_model import SERVING_DEFAULT
from mnist_estimator.head import optimizers

ModeKeys = tf.estimator.ModeKeys


def _predictions(logits: tf.Tensor) -> Dict[str, tf.Tensor]:
  probabilities = tf.nn.softmax(logits, name="softmax_tensor")  # the tutorial's hook name
  classes = tf.argmax(logits, axis=1, output_type=tf.int32, name="classes")
  return {"classes": classes, "probabilities": probabilities}


def export_outputs(predictions: Mapping[str, tf.Tensor], n_classes: int,
                   class_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
  """Signatures: serving_default/predict (classes, probabilities) and classify.

  classify's classes are the data set's class names (a folder's subfolders), else "0"..
  """
  predict = tf.estimator.export.PredictOutput(predictions)
  probabilities = predictions["probabilities"]
  # ClassificationOutput wants string class names, one row per example.
  names = (tf.constant(list(class_names)) if class_names
           else tf.as_string(tf.range(n_classes)))
  names = tf.tile(tf.expand_dims(names, 0), [tf.shape(probabilities)[0], 1])
  classify = tf.estimator.export.ClassificationOutput(scores=probabilities, classes=names)
  return {SERVING_DEFAULT: predict, "predict": predict, "classify": classify}


def _moving_average(params: Mapping[str, Any]) -> Optional[tf.train.ExponentialMovingAverage]:
  """The ExponentialMovingAverage of seed 002 (num_updates = global_step), or None."""
  decay = params.get("moving_average_decay") or 0.0
  if not decay:
    return None
  return tf.train.ExponentialMovingAverage(
      decay, num_updates=tf.compat.v1.train.get_global_step())


def _l2_loss(params: Mapping[str, Any]) -> tf.Tensor:
  """l2 * sum(||w||^2 / 2) over kernels only, as the seeds' l2_regularizer (not biases)."""
  scale = params.get("l2") or 0.0
  kernels = [v for v in tf.compat.v1.trainable_variables() if v.op.name.endswith("kernel")]
  if not scale or not kernels:
    return tf.constant(0.0)
  with tf.name_scope("l2"):
    return tf.multiply(scale, tf.add_n([tf.nn.l2_loss(v) for v in kernels]), name="loss")


def _weighted_cross_entropy(labels: tf.Tensor, logits: tf.Tensor,
                            params: Mapping[str, Any]) -> Optional[tf.Tensor]:
  """The batch's cross-entropy with params["class_weights"], or None without them.

  As Keras' class_weight: each example's cross-entropy times its class's weight, summed
  and divided by the batch size (not by the weights' sum), so "balanced" weights, which
  average 1 over the training set, keep the loss's scale and so the learning rate's.
  """
  class_weights = params.get("class_weights")
  if class_weights is None:
    return None
  if len(class_weights) != params["n_classes"]:  # the caller's bug: say so while building
    raise ValueError(f"{len(class_weights)} class weights for {params['n_classes']} classes")
  example_weights = tf.gather(tf.constant(class_weights, tf.float32), labels)
  weighted = tf.compat.v1.losses.sparse_softmax_cross_entropy(
      labels, logits, weights=example_weights, loss_collection=None,
      reduction=tf.compat.v1.losses.Reduction.SUM_OVER_BATCH_SIZE)
  return tf.identity(weighted, name="weighted_cross_entropy")


def _train_op(loss: tf.Tensor, params: Mapping[str, Any],
              ema: Optional[tf.train.ExponentialMovingAverage]) -> tf.Operation:
  global_step = tf.compat.v1.train.get_global_step()
  lr = optimizers.learning_rate(params, global_step)
  tf.compat.v1.summary.scalar("learning_rate", lr)
  optimizer = optimizers.build(params["optimizer"], lr, params)
  # Batch-norm style layers put their moving-average updates in UPDATE_OPS; model_fn adds
  # the writes a logits function builds but its logits do not run (Keras layers' updates).
  update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  with tf.control_dependencies(update_ops):
    train_op = optimizer.minimize(loss, global_step=global_step)
  if ema is None:
    return train_op
  with tf.control_dependencies([train_op]):  # average the weights after each update
    return ema.apply(tf.compat.v1.trainable_variables())


def _scaffold(mode: str, ema: Optional[tf.train.ExponentialMovingAverage],
              ) -> Optional[tf.compat.v1.train.Scaffold]:
  """For EVAL/PREDICT/export with EMA: restore the averaged (shadow) weights into the model."""
  if ema is None or mode == ModeKeys.TRAIN:
    return None
  return tf.compat.v1.train.Scaffold(saver=tf.compat.v1.train.Saver(ema.variables_to_restore()))


def build_spec(logits: tf.Tensor, labels: Optional[tf.Tensor], mode: str,
               params: Mapping[str, Any]) -> tf.estimator.EstimatorSpec:
  """Turns a model's logits into the EstimatorSpec for `mode`.

  Named tensors for hooks: `softmax_tensor` (probabilities), `classes`,
  `cross_entropy` (the plain mean, in every mode), `train_accuracy` (the batch's
  accuracy) and `optimizer/learning_rate`. The train summary `accuracy` has the same tag
  as the eval metric (and `loss` as the eval loss), so TensorBoard overlays the curves.
  With params["moving_average_decay"], EVAL, PREDICT and the SavedModel use the
  averaged weights; params["l2"] adds L2 on kernels to the loss; params["class_weights"]
  (n_classes floats) weighs each example's cross-entropy in the TRAIN loss only (then
  `weighted_cross_entropy`, and the train `loss` is the weighted one).

  Args:
    logits: float32 [batch, n_classes].
    labels: int [batch] or [batch, 1] class ids; None in PREDICT.
    mode: a tf.estimator.ModeKeys value.
    params: dict with n_classes, optimizer, learning_rate (and optionally l2,
      moving_average_decay, lr_decay_rate, lr_decay_steps, class_weights).

  Returns:
    A tf.estimator.EstimatorSpec.
  """
  predictions = _predictions(logits)
  ema = _moving_average(params)
  scaffold = _scaffold(mode, ema)
  if mode == ModeKeys.PREDICT:
    return tf.estimator.EstimatorSpec(
        mode, predictions=predictions, scaffold=scaffold,
        export_outputs=export_outputs(predictions, params["n_classes"],
                                       params.get("class_names")))
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
  cross_entropy = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
  cross_entropy = tf.identity(cross_entropy, name="cross_entropy")
  # Class weights count in training only (as Keras' class_weight): an evaluation's loss
  # stays the plain mean cross-entropy, comparable between runs with and without them.
  weighted = (_weighted_cross_entropy(labels, logits, params)
              if mode == ModeKeys.TRAIN else None)
  loss = (cross_entropy if weighted is None else weighted) + _l2_loss(params)
  if mode == ModeKeys.EVAL:
    accuracy = tf.compat.v1.metrics.accuracy(labels, predictions["classes"], name="accuracy")
    return tf.estimator.EstimatorSpec(mode, loss=loss, predictions=predictions,
                                      eval_metric_ops={"accuracy": accuracy},
                                      scaffold=scaffold)
  correct = tf.cast(tf.equal(labels, predictions["classes"]), tf.float32)
  batch_accuracy = tf.reduce_mean(correct, name="train_accuracy")
  tf.compat.v1.summary.scalar("accuracy", batch_accuracy)
  # A summary's tag is its op name, so these tags must differ from the tensors' names.
  tf.compat.v1.summary.scalar("losses/cross_entropy", cross_entropy)
  if weighted is not None:  # what training minimises; losses/cross_entropy is eval's kind
    tf.compat.v1.summary.scalar("losses/weighted_cross_entropy", weighted)
  return tf.estimator.EstimatorSpec(mode, loss=loss, predictions=predictions,
                                    train_op=_train_op(loss, params, ema))
