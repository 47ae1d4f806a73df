"""SavedModel export: serving inputs (images or tf.Examples) and the exporters."""

import os

import tensorflow as tf

from mnist_estimator.common.saved_model import CLASS_NAMES_FILE
from mnist_estimator.common.saved_model import EXAMPLES_KEY
from mnist_estimator.common.saved_model import IMAGES_KEY
from mnist_estimator.common.saved_model import SEQUENCES_KEY


def serving_shape(image_shape):
  """[None, H, W] for one channel (MNIST's [None, 28, 28]), else [None, H, W, C]."""
  height, width, channels = image_shape
  return [None, height, width] if channels == 1 else [None, height, width, channels]


def _standardized(values, standardize):
  """(values - mean) / std over the last axis, with the training set's statistics as constants."""
  mean, std = standardize
  return (values - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def serving_input_receiver_fn(image_shape, standardize=None):
  """Returns a receiver fn taking float images (0..1) or serialized tf.Examples.

  Signatures: `serving_default` and `predict` take `images`; `examples:serving_default`,
  `examples:predict` and `examples:classify` take `examples`, strings of tf.Example
  protos whose float feature "x" holds the H*W*C pixels. With `standardize`, a sequence
  data set's model (weather), they take `sequences` instead of `images`: raw values
  [None, steps, features] (weather: weeks of rain, snow depth, snowfall, high, low), which the
  graph standardises with the training set's mean and std.

  Args:
    image_shape: (H, W, C) of the model's data set.
    standardize: None, or (mean, std) of the raw features (C == 1), from the Dataset.
  """
  shape = serving_shape(image_shape)
  pixels = image_shape[0] * image_shape[1] * image_shape[2]
  key = IMAGES_KEY if standardize is None else SEQUENCES_KEY

  def receiver_fn():
    # Each input defaults to the other's path, so either one alone feeds the model.
    examples = tf.compat.v1.placeholder_with_default(
        tf.constant([], tf.string), [None], name=EXAMPLES_KEY)
    parsed = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([pixels], tf.float32)})
    from_examples = tf.reshape(parsed["x"], [-1, *shape[1:]])
    images = tf.compat.v1.placeholder_with_default(from_examples, shape, name=key)
    features = images if standardize is None else _standardized(images, standardize)
    return tf.estimator.export.ServingInputReceiver(
        {"x": features}, {key: images},
        receiver_tensors_alternatives={EXAMPLES_KEY: {EXAMPLES_KEY: examples}})

  return receiver_fn


def class_names_asset(estimator):
  """assets_extra carrying the class names (assets.extra/class_names.txt), or None.

  TF Serving ignores assets.extra; predict and the server's page read the names there.
  """
  names = estimator.params.get("class_names")
  if not names:
    return None
  os.makedirs(estimator.model_dir, exist_ok=True)
  path = os.path.join(estimator.model_dir, CLASS_NAMES_FILE)
  with open(path, "w", encoding="utf-8") as f:
    f.write("".join(f"{name}\n" for name in names))
  return {CLASS_NAMES_FILE: path}


def export(estimator, export_dir, image_shape, standardize=None):
  """Exports the latest checkpoint as a SavedModel under export_dir/<timestamp>.

  Args:
    estimator: the trained Estimator.
    export_dir: the SavedModel goes to a new timestamped folder under it.
    image_shape, standardize: as for `serving_input_receiver_fn`.

  Returns:
    The path of the new SavedModel directory.
  """
  receiver = serving_input_receiver_fn(image_shape, standardize)
  path = estimator.export_saved_model(export_dir, receiver,
                                      assets_extra=class_names_asset(estimator))
  return path.decode() if isinstance(path, bytes) else path


def _higher_accuracy(best_eval_result, current_eval_result):
  """BestExporter's compare_fn: the stock one keeps the lowest loss; we keep the best accuracy."""
  return current_eval_result["accuracy"] > best_eval_result["accuracy"]


class _Printer(tf.estimator.Exporter):
  """Prints every evaluation: a cluster's evaluator task hands no metrics back to its caller."""

  def __init__(self, describe):
    self._describe = describe

  @property
  def name(self):
    return "printer"

  def export(self, estimator, export_path, checkpoint_path, eval_result,
             is_the_final_export):
    del estimator, export_path, checkpoint_path, is_the_final_export
    print(self._describe(eval_result), flush=True)


def exporters(image_shape, standardize=None, describe=None, assets_extra=None):
  """train_and_evaluate's exporters: export/best (highest eval accuracy) and export/latest.

  Args:
    image_shape, standardize: as for `serving_input_receiver_fn`.
    describe: if given, `eval_result -> line`, printed after every evaluation.
    assets_extra: as class_names_asset returns.
  """
  receiver = serving_input_receiver_fn(image_shape, standardize)
  found = [tf.estimator.BestExporter("best", receiver, compare_fn=_higher_accuracy,
                                     exports_to_keep=1, assets_extra=assets_extra),
           tf.estimator.LatestExporter("latest", receiver, exports_to_keep=2,
                                       assets_extra=assets_extra)]
  return found + [_Printer(describe)] if describe else found
