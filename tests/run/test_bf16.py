"""The forced-bf16 group: --precision=bf16 with oneDNN on, on every CPU (emulated without bf16).

On a CPU without AVX512_BF16 the bf16 kernels are emulated and slow, so these runs are
a few steps of small batches; what they check is that bf16 training works everywhere
training works and that every number a run prints is the float32 SavedModel's.
"""

import json
import os
import shutil

import helpers
import numpy as np
import pytest
import tensorflow as tf
from helpers import write_weather  # pylint: disable=g-bad-import-order

from benchmarks import bench_lib
from mnist_estimator import models
from mnist_estimator.common import precision
from mnist_estimator.estimator import config as est_config
from mnist_estimator.head import model_fn
from mnist_estimator.inputs import input_fns as inputs
from mnist_estimator.predict import model as predict_model
from mnist_estimator.run import plan, runner
from mnist_estimator.run.spec import RunSpec

ModeKeys = tf.estimator.ModeKeys
needs_native_bf16 = pytest.mark.skipif(
    not helpers.NATIVE_BF16, reason=f"needs a CPU with AVX512_BF16 or AMX-BF16 "
    f"({precision.cpu_model()} has neither): oneDNN's bf16 kernels and fusions run only there")
pytestmark = [pytest.mark.bf16, pytest.mark.skipif(
    not precision.onednn_on(), reason=f"oneDNN is off ({precision.ONEDNN_ENV}="
    f"{os.environ.get(precision.ONEDNN_ENV)}); the bf16 group runs with oneDNN's rewrites on")]
BF16 = precision.resolve("bf16")


def _train_graph(model, train_precision, device=None):
  """A model's TRAIN graph from the real model_fn: (graph, EstimatorSpec)."""
  shape = (52, 9, 1) if model.startswith("weather") else (28, 28, 1)
  params = dict(plan.model_params(RunSpec.for_model(model), shape, 10, 600),
                train_precision=train_precision)
  graph = tf.Graph()
  with graph.as_default(), tf.compat.v1.device(device):
    tf.compat.v1.train.get_or_create_global_step()
    images = tf.constant(np.random.RandomState(0).rand(8, *shape), tf.float32)
    spec = model_fn.model_fn({"x": images}, tf.constant(np.arange(8) % 10), ModeKeys.TRAIN,
                            params)
  return graph, spec


def _dtypes(graph, ops=("MatMul", "Conv2D", "BiasAdd", "Relu")):
  return {op.type: op.get_attr("T") for op in graph.get_operations() if op.type in ops}


@pytest.mark.parametrize("model", models.model_names())
def test_train_step_computes_in_bf16_on_float32_master_weights(model):
  graph16, spec16 = _train_graph(model, "bf16")
  graph32, _ = _train_graph(model, "fp32")
  found = _dtypes(graph16)
  assert found and set(found.values()) == {tf.bfloat16}, found
  assert set(_dtypes(graph32).values()) == {tf.float32}
  with graph16.as_default():
    variables16 = {v.op.name: v.dtype.base_dtype for v in tf.compat.v1.global_variables()}
  with graph32.as_default():
    variables32 = {v.op.name: v.dtype.base_dtype for v in tf.compat.v1.global_variables()}
  assert variables16 == variables32  # same checkpoint either way: resume, warm start
  assert spec16.loss.dtype == tf.float32
  casts = [op for op in graph16.get_operations() if op.type == "Cast"
           and op.get_attr("DstT") == tf.bfloat16 and "gradients" not in op.name]
  # Keras' mixed_bfloat16 layout: each kernel and bias cast once, plus the input (and
  # a model's dropout mask, layers.dropout).
  trainable = [v for v in variables16 if "/ExponentialMovingAverage" not in v
               and v != "global_step"]
  assert len(casts) <= len(trainable) + 2, [op.name for op in casts]


def test_evaluation_and_serving_graphs_are_float32():
  params = dict(plan.model_params(RunSpec.for_model("cnn"), (28, 28, 1), 10, 600),
                train_precision="bf16")
  for mode in (ModeKeys.EVAL, ModeKeys.PREDICT):
    graph = tf.Graph()
    with graph.as_default():
      tf.compat.v1.train.get_or_create_global_step()
      images = tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 1])
      labels = None if mode == ModeKeys.PREDICT else tf.constant([1])
      model_fn.model_fn({"x": images}, labels, mode, params)
    bf16 = [op.name for op in graph.get_operations()
            if any(t.dtype == tf.bfloat16 for t in op.outputs)]
    assert not bf16, (mode, bf16)


@pytest.fixture(scope="module")
def conv_bf16(small, tmp_path_factory):
  """fast_cnn (two 5x5 convs, a dense layer) trained 6 bf16 steps of 16, evaluated (fp32) and
  exported: (spec, result). The recipe's network: a third of the cnn's work a step, which
  counts where bf16 is emulated (AVX2: 4.0 s against 2.5 s for this run alone)."""
  root = tmp_path_factory.mktemp("bf16")
  spec = helpers.small_spec("fast_cnn", root / "m", steps=6, optimizer="adam",
                            learning_rate=0.001, precision="bf16", report=False,
                            export_dir=str(root / "export"))
  return spec, runner.run(spec, small)


def test_printed_accuracy_is_the_saved_models(conv_bf16, small):
  spec, result = conv_bf16
  model = predict_model.load_model(result["export"])
  classes, probabilities = predict_model.predict(model, small.x_test)
  # The same images right, not only the same rate (the metric is a float32 ratio).
  right = int(np.sum(classes == small.y_test))
  assert right == round(float(result["metrics"]["accuracy"]) * len(small.y_test))
  estimator = runner.estimator_for(spec, small)
  rows = list(estimator.predict(inputs.make_input_fn("tfdata", small.x_test, None, 64,
                                                     train=False)))
  np.testing.assert_array_equal(classes, [row["classes"] for row in rows])
  np.testing.assert_allclose(probabilities, [row["probabilities"] for row in rows], atol=1e-6)


def test_resume_and_warm_start_across_precisions(conv_bf16, small, tmp_path):
  # A copy: the module's model_dir stays at its 6 exported steps for the other tests.
  shutil.copytree(conv_bf16[0].model_dir, tmp_path / "m")
  spec = conv_bf16[0].replace(model_dir=str(tmp_path / "m"))
  resumed = runner.run(spec.replace(steps=9, precision="fp32", export_dir=None), small)
  assert resumed["metrics"]["global_step"] == 9
  again = runner.run(spec.replace(steps=11, export_dir=None), small)
  assert again["metrics"]["global_step"] == 11
  reader = tf.train.load_checkpoint(spec.model_dir)
  dtypes = reader.get_variable_to_dtype_map()
  assert dtypes["conv1/kernel"] == tf.float32 and dtypes["dense/kernel"] == tf.float32
  warm = spec.replace(model_dir=str(tmp_path / "warm"), precision="fp32", steps=1,
                      warm_start_from=spec.model_dir, export_dir=None)
  runner.run(warm, small)  # one step from the bf16-trained weights: close to them
  moved = np.abs(tf.train.load_checkpoint(warm.model_dir).get_tensor("conv1/kernel")
                 - reader.get_tensor("conv1/kernel")).max()
  assert moved < 0.01


def test_ema_and_l2_stay_float32(small, tmp_path):
  spec = helpers.small_spec("mlp", tmp_path / "m", steps=4, precision="bf16", report=False)
  result = runner.run(spec, small)
  reader = tf.train.load_checkpoint(spec.model_dir)
  shadow = {n: reader.get_tensor(f"{n}/ExponentialMovingAverage")
            for n in ("hidden/kernel", "hidden/bias", "logits/kernel", "logits/bias")}
  assert all(value.dtype == np.float32 for value in shadow.values())
  x = small.x_test.reshape(len(small.x_test), -1) / 255.0
  logits = (np.maximum(x @ shadow["hidden/kernel"] + shadow["hidden/bias"], 0)
            @ shadow["logits/kernel"] + shadow["logits/bias"])
  # Evaluation ran in float32 on the averaged weights, exactly as this numpy pass.
  right = int(np.sum(logits.argmax(1) == small.y_test))
  assert right == round(float(result["metrics"]["accuracy"]) * len(small.y_test))
  graph, train_spec = _train_graph("mlp", "bf16")
  with graph.as_default(), tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    kernels = [v for v in tf.compat.v1.trainable_variables() if v.op.name.endswith("kernel")]
    loss, cross_entropy, values = session.run(
        [train_spec.loss, graph.get_tensor_by_name("cross_entropy:0"), kernels])
  assert len(values) == 2
  expected = spec.l2 * sum(np.sum(k.astype(np.float64) ** 2) / 2 for k in values)
  assert loss - cross_entropy == pytest.approx(expected, rel=1e-4)


def test_recurrent_and_weather_models_train(small, tmp_path):
  rnn = helpers.small_spec("rnn", tmp_path / "rnn", steps=3, precision="bf16", report=False)
  assert runner.run(rnn, small)["metrics"]["global_step"] == 3
  data_dir = write_weather(tmp_path)
  lstm = RunSpec.for_model("weather_lstm", dataset="weather", data_dir=data_dir, window=4,
                           model_dir=str(tmp_path / "lstm"), steps=3, precision="bf16",
                           report=False, seed=0)
  metrics = runner.run(lstm)["metrics"]
  assert metrics["global_step"] == 3 and np.isfinite(metrics["loss"])


def test_mirrored_strategy(small, tmp_path):
  spec = helpers.small_spec("dnn", tmp_path / "m", steps=3, precision="bf16", report=False,
                            distribute="mirrored")
  assert runner.run(spec, small)["metrics"]["global_step"] == 3


def _partition_ops(target, graph, spec, config):
  """{(op, T): count} of the graphs one training step on `target` really ran."""
  return bench_lib.partition_ops(graph, spec.train_op, target, config)


def _cluster(monkeypatch):
  """A chief and a ps in this process, and the RunConfig a chief task of theirs builds."""
  chief, ps = helpers.free_ports(2)
  spec = {"chief": [f"127.0.0.1:{chief}"], "ps": [f"127.0.0.1:{ps}"]}
  cluster = tf.train.ClusterSpec(spec)
  servers = [tf.compat.v1.train.Server(cluster, job, 0) for job in ("chief", "ps")]
  monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": spec,
                                              "task": {"type": "chief", "index": 0}}))
  config = est_config.run_config("/unused", precision=BF16)
  setter = tf.compat.v1.train.replica_device_setter(cluster=cluster,
                                                    worker_device="/job:chief/task:0")
  return servers, config, setter


# lenet's sigmoid convolutions train as TensorFlow builds them, conv -> bias -> activation ->
# pool (a ReLU network's conv blocks have a gradient of their own, models/layers.conv_pool):
# Conv2D + BiasAdd, which fusion joins.
def test_cluster_step_runs_bf16_convolutions_unfused(monkeypatch):
  servers, config, setter = _cluster(monkeypatch)
  assert config.session_config.graph_options.rewrite_options.remapping == 2  # OFF
  graph, spec = _train_graph("lenet", "bf16", device=setter)
  found = _partition_ops(servers[0].target, graph, spec, config.session_config)
  bf16 = tf.bfloat16.as_datatype_enum
  convolutions = {op: t for op, t in found if "Conv2D" in op and "Backprop" not in op}
  assert convolutions and set(convolutions.values()) == {bf16}, found
  assert not [op for op, t in found if op == "_FusedConv2D" and t == bf16]
  monkeypatch.delenv("TF_CONFIG")
  local = est_config.run_config("/unused", precision=BF16)  # no cluster: fusion stays on
  assert local.session_config.graph_options.rewrite_options.remapping == 0


@needs_native_bf16
def test_native_cluster_needs_the_remapper_off(monkeypatch):
  """The cause: with fusion on, a cluster task refuses the bf16 `_FusedConv2D`."""
  servers, config, setter = _cluster(monkeypatch)
  config.session_config.graph_options.rewrite_options.remapping = 0  # DEFAULT (on)
  graph, spec = _train_graph("lenet", "bf16", device=setter)
  with pytest.raises(tf.errors.InvalidArgumentError, match="_FusedConv2D"):
    _partition_ops(servers[0].target, graph, spec, config.session_config)


@needs_native_bf16
def test_native_local_step_runs_onednn_bf16_kernels():
  graph, spec = _train_graph("cnn", "bf16")
  found = _partition_ops("", graph, spec, tf.compat.v1.ConfigProto())
  bf16 = tf.bfloat16.as_datatype_enum
  assert any(op.startswith("_MklNative") and "Conv2D" in op and t == bf16
             for op, t in found), found
