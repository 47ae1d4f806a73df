"""Every registered model: graph per mode, shapes, dtypes, parameter counts, variable names."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator import models
from mnist_estimator.common.errors import UsageError
from mnist_estimator.head import model_fn
from mnist_estimator.run import plan
from mnist_estimator.run.spec import RunSpec

ModeKeys = tf.estimator.ModeKeys
MNIST = (28, 28, 1)
FONTS = (36, 36, 1)

# Trainable parameters on MNIST (28x28x1, 10 classes) with each model's defaults.
PARAMS_MNIST = {
    "cnn": 832 + 51264 + (7 * 7 * 64 * 1024 + 1024) + (1024 * 10 + 10),  # 3,274,634
    "linear": 784 * 10 + 10,
    "dnn": (784 * 10 + 10) + (10 * 5 + 5) + (5 * 10 + 10),
    "conv_learn": (5 * 5 * 4 + 4) + (14 * 14 * 4 * 5 + 5) + (5 * 10 + 10),
    "lenet": 156 + 2416 + (256 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10),
    "mlp": (784 * 500 + 500) + (500 * 10 + 10),
    "keras_cnn": 121930,  # as the seed's model.summary() reports
    "deep_cnn": 160 + 580 + (7 * 7 * 4 * 32 + 32) + (32 * 10 + 10),
    "rnn": ((28 + 128) * 128 + 128) + (128 * 10 + 10),
    # The weather models read an image as 28 steps of 28 values, as rnn does.
    "weather_rnn": ((28 + 11) * 11 + 11) + (11 * 10 + 10),
    "weather_lstm": ((28 + 32) * 128 + 128) + (32 * 10 + 10),
    "fast_cnn": 624 + 19232 + (7 * 7 * 32 * 256 + 256) + (256 * 10 + 10),  # 424,090
}

LAYER_NAMES = {
    "cnn": ["conv1/bias", "conv1/kernel", "conv2/bias", "conv2/kernel", "dense/bias",
            "dense/kernel", "logits/bias", "logits/kernel"],
    "linear": ["logits/bias", "logits/kernel"],
    "dnn": ["dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel", "logits/bias",
            "logits/kernel"],
    "conv_learn": ["conv_layer/Conv/bias", "conv_layer/Conv/kernel", "fully_connected/bias",
                   "fully_connected/kernel", "fully_connected_1/bias",
                   "fully_connected_1/kernel"],
    "lenet": ["conv1/bias", "conv1/kernel", "conv2/bias", "conv2/kernel", "dense1/bias",
              "dense1/kernel", "dense2/bias", "dense2/kernel", "logits/bias", "logits/kernel"],
    "mlp": ["hidden/bias", "hidden/kernel", "logits/bias", "logits/kernel"],
    "keras_cnn": ["conv1/bias", "conv1/kernel", "conv2/bias", "conv2/kernel", "dense/bias",
                  "dense/kernel", "logits/bias", "logits/kernel"],
    "deep_cnn": ["conv1/bias", "conv1/kernel", "conv2/bias", "conv2/kernel", "dense/bias",
                 "dense/kernel", "logits/bias", "logits/kernel"],
    "rnn": ["logits/bias", "logits/kernel", "rnn/rnn/cell/bias", "rnn/rnn/cell/kernel"],
    "weather_rnn": ["logits/bias", "logits/kernel", "rnn/rnn/cell/bias", "rnn/rnn/cell/kernel"],
    "weather_lstm": ["logits/bias", "logits/kernel", "rnn/rnn/cell/bias",
                     "rnn/rnn/cell/kernel"],
    "fast_cnn": ["conv1/bias", "conv1/kernel", "conv2/bias", "conv2/kernel", "dense/bias",
                 "dense/kernel", "logits/bias", "logits/kernel"],
}


def params_for(name, image_shape=MNIST, n_classes=10):
  return plan.model_params(RunSpec.for_model(name), image_shape, n_classes, 60000)


def build(name, mode, image_shape=MNIST, n_classes=10, batch=3):
  """Builds the model_fn in a fresh graph; returns (spec, graph)."""
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.train.get_or_create_global_step()
    features = {"x": tf.zeros([batch, *image_shape])}
    labels = None if mode == ModeKeys.PREDICT else tf.zeros([batch], tf.int32)
    spec = model_fn.model_fn(features, labels, mode, params_for(name, image_shape, n_classes))
  return spec, graph


def trainable_count(graph):
  with graph.as_default():
    return sum(int(np.prod(v.shape)) for v in tf.compat.v1.trainable_variables())


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_predict_spec(name):
  spec, graph = build(name, ModeKeys.PREDICT)
  assert spec.predictions["classes"].dtype == tf.int32
  assert spec.predictions["classes"].shape.as_list() == [3]
  assert spec.predictions["probabilities"].dtype == tf.float32
  assert spec.predictions["probabilities"].shape.as_list() == [3, 10]
  assert graph.get_tensor_by_name("softmax_tensor:0") is spec.predictions["probabilities"]
  assert set(spec.export_outputs) == {"serving_default", "predict", "classify"}
  assert spec.train_op is None and spec.loss is None


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_eval_spec(name):
  spec, _ = build(name, ModeKeys.EVAL)
  assert spec.loss.shape.as_list() == []
  assert set(spec.eval_metric_ops) == {"accuracy"}
  assert spec.train_op is None


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_train_spec_and_parameter_count(name):
  spec, graph = build(name, ModeKeys.TRAIN)
  assert spec.train_op is not None
  for tensor in ("cross_entropy:0", "train_accuracy:0", "optimizer/learning_rate:0"):
    graph.get_tensor_by_name(tensor)  # the hooks fetch these by name
  assert trainable_count(graph) == PARAMS_MNIST[name]
  with graph.as_default():
    names = sorted(v.op.name for v in tf.compat.v1.trainable_variables())
  assert names == LAYER_NAMES[name]


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_shape_and_classes_come_from_params(name):
  spec, _ = build(name, ModeKeys.PREDICT, image_shape=FONTS, n_classes=5)
  assert spec.predictions["probabilities"].shape.as_list() == [3, 5]


def test_conv_learn_on_fonts_has_the_books_shapes():
  _, graph = build("conv_learn", ModeKeys.TRAIN, image_shape=FONTS, n_classes=5)
  with graph.as_default():
    shapes = {v.op.name: v.shape.as_list() for v in tf.compat.v1.trainable_variables()}
  assert shapes["conv_layer/Conv/kernel"] == [5, 5, 1, 4]
  assert shapes["fully_connected/kernel"] == [18 * 18 * 4, 5]  # 2x2 VALID pool of 36x36
  assert shapes["fully_connected_1/kernel"] == [5, 5]


def test_deep_cnn_on_fonts_parameter_count():
  _, graph = build("deep_cnn", ModeKeys.TRAIN, image_shape=FONTS, n_classes=5)
  # 160 + 580 + 10,400 + 165; the book's text says 10,765 (see models/deep_cnn.py).
  assert trainable_count(graph) == 11305


def test_weather_rnn_has_the_books_shapes():
  _, graph = build("weather_rnn", ModeKeys.TRAIN, image_shape=(26, 5, 1), n_classes=4)
  with graph.as_default():
    shapes = {v.op.name: v.shape.as_list() for v in tf.compat.v1.trainable_variables()}
  assert shapes == {"rnn/rnn/cell/kernel": [5 + 11, 11], "rnn/rnn/cell/bias": [11],
                    "logits/kernel": [11, 4], "logits/bias": [4]}


def test_dropout_only_in_train():
  for mode, expect_dropout in ((ModeKeys.TRAIN, True), (ModeKeys.EVAL, False)):
    _, graph = build("cnn", mode)
    ops = [op.name for op in graph.get_operations()
           if op.name.startswith("dropout/") and op.type == "RandomUniform"]
    assert bool(ops) == expect_dropout, (mode, ops)


def test_unknown_model_lists_names():
  with pytest.raises(UsageError, match="choose --model from: cnn, conv_learn, deep_cnn, dnn, "):
    models.get_model("resnet")
