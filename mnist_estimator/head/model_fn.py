"""The tf.estimator model_fn of every model: its logits through the shared head, per mode."""

import tensorflow as tf

from mnist_estimator import models
from mnist_estimator.head import bf16
from mnist_estimator.head import multi_class as head
from mnist_estimator.head import summaries
from mnist_estimator.models import layers


def model_fn(features, labels, mode, params, config=None):
  """The tf.estimator model_fn of every registered model.

  Args:
    features: dict with "x", a float batch of images.
    labels: int class ids, or None in PREDICT.
    mode: a tf.estimator.ModeKeys value.
    params: dict with "model" (a registered name) and the model's settings;
      "histogram_steps" sets how often the heavy summaries are written;
      "train_precision" "bf16" computes the training step in bfloat16.
    config: the RunConfig (tf.estimator passes it): where and whether to write them.

  Returns:
    A tf.estimator.EstimatorSpec built by the shared head.
  """
  info = models.get_model(params["model"])
  if mode != tf.estimator.ModeKeys.TRAIN:  # always float32: what the SavedModel computes
    return head.build_spec(info.logits_fn(features, mode, params), labels, mode, params)
  if params.get("train_precision") == "bf16":
    logits = bf16.train_logits(info.logits_fn, features, mode, params)
  else:
    logits = info.logits_fn(features, mode, params)
  summaries.add_train_summaries(layers.image_input(features, params))
  spec = head.build_spec(logits, labels, mode, params)
  chief = config is None or config.is_chief
  hook = summaries.heavy_summary_hook(params.get("histogram_steps"),
                                      config.model_dir if config and chief else None)
  return spec._replace(training_hooks=list(spec.training_hooks) + [hook]) if hook else spec
