"""Keras layers in a logits function: their updates (batch-norm statistics) run once a step."""

import dataclasses
import re
import textwrap

import helpers
import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator import models
from mnist_estimator.common.errors import UsageError
from mnist_estimator.head import model_fn
from mnist_estimator.run import plan, runner
from mnist_estimator.run.spec import RunSpec

ModeKeys = tf.estimator.ModeKeys
UPDATE_OPS = tf.compat.v1.GraphKeys.UPDATE_OPS
IMAGES = np.random.RandomState(0).rand(8, 28, 28, 1)  # what the graph tests' models see

NETS = """
import tensorflow as tf

TRAIN = tf.estimator.ModeKeys.TRAIN


def bn(features, mode, params, training):
  x = tf.keras.layers.Flatten()(features["x"])
  x = tf.keras.layers.Dense(32, name="dense")(x)
  x = tf.keras.layers.BatchNormalization(momentum=0.9, name="bn")(x, training=training)
  x = tf.keras.layers.ReLU()(x)
  return tf.keras.layers.Dense(params["n_classes"], name="logits")(x)


def bn_by_mode(features, mode, params):
  return bn(features, mode, params, mode == TRAIN)


def bn_by_learning_phase(features, mode, params):  # training=None: the Keras learning phase
  return bn(features, mode, params, None)


class Counter(tf.keras.layers.Layer):
  # Counts the batches it sees: an add_update of its own, in every mode.
  def build(self, shape):
    self.count = self.add_weight("count", [], tf.int64, "zeros", trainable=False)

  def call(self, x):
    self.add_update(self.count.assign_add(1))
    return x


def legacy_bn(features, mode, params):  # the seeds' layers: their updates are in UPDATE_OPS
  x = tf.compat.v1.layers.flatten(features["x"])
  x = tf.compat.v1.layers.batch_normalization(x, training=mode == TRAIN, name="bn")
  return tf.compat.v1.layers.dense(x, params["n_classes"], name="logits")


def counted(features, mode, params):
  x = Counter(name="counter")(tf.keras.layers.Flatten()(features["x"]))
  training = tf.compat.v1.placeholder_with_default(True, [])  # a tensor: BN's updates in conds
  x = tf.keras.layers.BatchNormalization(name="bn")(x, training=training)
  return tf.keras.layers.Dense(params["n_classes"], name="logits")(x)
"""


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
  path = tmp_path_factory.mktemp("nets") / "keras_nets.py"
  path.write_text(textwrap.dedent(NETS))
  return str(path)


def _train_losses(out):
  """The training losses the progress lines show (`step N/M ... loss X`)."""
  return [float(x) for x in re.findall(r"^step \d+/\d+ .*?loss (\d+\.\d+)", out, re.M)]


@pytest.mark.parametrize("net", ["bn_by_mode", "bn_by_learning_phase"])
def test_batch_norm_statistics_train_and_eval_matches_train(nets, small, tmp_path, capsys, net):
  spec = helpers.small_spec(f"{nets}:{net}", tmp_path / "m", steps=60, batch_size=32,
                            optimizer="adam", learning_rate=0.01, report=False)
  runner.run(spec, small)
  train_loss = np.mean(_train_losses(capsys.readouterr().out)[-3:])
  reader = tf.train.load_checkpoint(spec.model_dir)
  mean, variance = reader.get_tensor("bn/moving_mean"), reader.get_tensor("bn/moving_variance")
  assert np.abs(mean).max() > 0.1 and np.abs(variance - 1).max() > 0.1, (mean, variance)
  # The training images through the eval graph (moving statistics): no worse than training.
  on_train = dataclasses.replace(small, x_test=small.x_train, y_test=small.y_train)
  eval_loss = runner.run(spec.replace(mode="evaluate"), on_train)["metrics"]["loss"]
  assert eval_loss < 2 * train_loss, (eval_loss, train_loss)


def _graph(model, mode, **overrides):
  """(spec, graph) of model_fn for `mode` on 8 fixed images, global step created."""
  params = plan.model_params(RunSpec.for_model(model, precision="fp32", optimizer="sgd",
                                               learning_rate=0.1), (28, 28, 1), 10, 600)
  params.update(overrides)
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.train.get_or_create_global_step()
    tf.compat.v1.set_random_seed(1)
    images = tf.constant(IMAGES, tf.float32)
    labels = tf.constant(np.arange(8) % 10)
    spec = model_fn.model_fn({"x": images}, None if mode == ModeKeys.PREDICT else labels,
                             mode, params)
  return spec, graph


def _variable(graph, name):
  return [v for v in graph.get_collection("variables") if v.op.name == name][0]


@pytest.mark.parametrize("overrides", [{}, {"train_precision": "bf16"},
                                       {"moving_average_decay": 0.9}],
                         ids=["fp32", "bf16", "ema"])
@pytest.mark.parametrize("net", ["counted", "legacy_bn"])
def test_each_training_step_runs_the_updates_once(nets, net, overrides):
  spec, graph = _graph(f"{nets}:{net}", ModeKeys.TRAIN, **overrides)
  with graph.as_default(), tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    for _ in range(5):
      session.run(spec.train_op)
    mean, step = session.run([_variable(graph, "bn/moving_mean"),
                              tf.compat.v1.train.get_global_step()])
    if net == "counted":
      assert session.run(_variable(graph, "counter/count")) == 5
  # BN sees the same images each step: after n updates at momentum 0.99 the moving mean
  # is (1 - 0.99^n) of their mean (5 steps: 0.049; run twice a step it would be 0.096).
  np.testing.assert_allclose(mean, (1 - 0.99 ** 5) * IMAGES.reshape(8, -1).mean(axis=0),
                             rtol=2e-2, atol=1e-4)
  assert step == 5


def test_the_updates_of_tf_compat_v1_layers_are_left_as_they_are(nets):
  _, graph = _graph(f"{nets}:legacy_bn", ModeKeys.TRAIN)
  assert [op.name for op in graph.get_collection(UPDATE_OPS)] == [
      "bn/AssignMovingAvg/AssignSubVariableOp", "bn/AssignMovingAvg_1/AssignSubVariableOp"]


@pytest.mark.parametrize("mode", [ModeKeys.EVAL, ModeKeys.PREDICT])
def test_eval_and_predict_run_no_updates(nets, mode):
  spec, graph = _graph(f"{nets}:counted", mode)
  with graph.as_default(), tf.compat.v1.Session() as session:
    session.run([tf.compat.v1.global_variables_initializer(),
                 tf.compat.v1.local_variables_initializer()])
    fetches = ([spec.loss, [update for _, update in spec.eval_metric_ops.values()]]
               if mode == ModeKeys.EVAL else spec.predictions)
    for _ in range(3):
      session.run(fetches)
    assert session.run(_variable(graph, "counter/count")) == 0
  assert not graph.get_collection(UPDATE_OPS)


def test_an_update_in_control_flow_v1_is_refused(nets):
  was_enabled = tf.compat.v1.control_flow_v2_enabled()
  tf.compat.v1.disable_control_flow_v2()  # BN's updates go into a v1 tf.cond's branch
  try:
    with pytest.raises(UsageError, match=r"updates bn/.* inside a .*control flow v1.*; "):
      _graph(f"{nets}:counted", ModeKeys.TRAIN)
  finally:
    if was_enabled:
      tf.compat.v1.enable_control_flow_v2()


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_a_seed_network_gets_no_updates_and_no_learning_phase(name):
  _, graph = _graph(name, ModeKeys.TRAIN)
  assert not graph.get_collection(UPDATE_OPS)
  assert not [op for op in graph.get_operations() if "keras_learning_phase" in op.name]
