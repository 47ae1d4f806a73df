"""WORKSPACE.md's recipes, done: a model, a run option and a data set each land in one place."""

import dataclasses

import numpy as np
import tensorflow as tf

from mnist_estimator import flagdefs
from mnist_estimator import models
from mnist_estimator.data import datasets
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.data.dataset import DatasetInfo
from mnist_estimator.models import layers
from mnist_estimator.run import header
from mnist_estimator.run import plan as plan_lib
from mnist_estimator.run import history as records
from mnist_estimator.run import runner
from mnist_estimator.run import spec as spec_lib
from mnist_estimator.run.spec import RunSpec


def _tiny_logits(features, mode, params):
  """A model module's whole content: one hidden layer."""
  net = layers.dense(layers.flat_input(features, params), 16, "hidden", tf.nn.relu)
  net = layers.dropout(net, params["dropout"], mode)
  return layers.dense(net, params["n_classes"], "logits")


def test_a_model_is_a_module_and_a_registry_line(small, tmp_path, monkeypatch):
  # The registry line (models/__init__.py): the model and its seed's defaults.
  monkeypatch.setitem(models.MODELS, "tiny", models.ModelInfo(
      "tiny", _tiny_logits, dict(optimizer="adam", learning_rate=0.01, batch_size=20,
                                 steps=5, dropout=0.1)))
  spec = RunSpec.for_model("tiny", model_dir=str(tmp_path), precision="fp32", report=False)
  assert (spec.optimizer, spec.batch_size, spec.dropout, spec.activation) == (
      "adam", 20, 0.1, "relu")  # its own defaults, the base values for the rest
  result = runner.run(spec, small)
  assert result["metrics"]["global_step"] == 5
  names = {name for name, _ in tf.train.list_variables(str(tmp_path))}
  assert {"hidden/kernel", "logits/kernel"} <= names  # weights by name


def test_a_run_options_roles_reach_every_place(small):
  spec = RunSpec.for_model("mlp", seed=3, model_dir="/m", mode="evaluate", dataset="mnist")
  record = plan_lib.graph_record(spec, small)
  params = plan_lib.params(spec, small)
  hparams = records.hparams(spec)
  changed = {line.split("=")[0] for line in header.changed_settings(spec)}
  for field in dataclasses.fields(RunSpec):
    option = spec_lib.option(field.name)
    assert (field.name in hparams) == option.hparam, field.name
    assert (option.record in record) if option.record else True, field.name
    assert (field.name in params) == option.param, field.name
    if option.header:
      assert field.name not in changed, field.name
    assert field.name in flagdefs.FLAGS, field.name
  assert record["moving_average"] is True  # record_value: the decay's recorded as on/off
  assert "seed" in changed and "mode" not in changed


def _tiny_digits(data_dir=None, seed=0):
  """A data set module's loader: the sample's digits at 14x14."""
  del data_dir
  sample = datasets.load("mnist_sample")
  shrink = lambda x: x[:, ::2, ::2]
  rng = np.random.RandomState(seed)
  train = rng.permutation(len(sample.y_train))[:300]
  return Dataset("tiny_digits", (14, 14, 1), 10, shrink(sample.x_train[train]),
                 sample.y_train[train], shrink(sample.x_test[:100]), sample.y_test[:100],
                 source="every second pixel of the bundled sample")


def test_a_data_set_is_a_module_and_a_registry_line(tmp_path, monkeypatch):
  # The registry line (data/datasets.py).
  monkeypatch.setitem(datasets.DATASETS, "tiny_digits", DatasetInfo(
      "tiny_digits", _tiny_digits, panel="tiny", about="14x14 digits"))
  spec = RunSpec.for_model("cnn", dataset="tiny_digits", model_dir=str(tmp_path), steps=3,
                           batch_size=10, precision="fp32", report=False)
  result = runner.run(spec)  # loaded by name, like --dataset=tiny_digits
  assert result["metrics"]["global_step"] == 3
  assert plan_lib.make(spec, _tiny_digits()).found["image_shape"] == [14, 14, 1]
