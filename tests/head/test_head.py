"""The shared head against hand-computed numbers: L2 term, staircase decay, EMA weights."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.head import model_fn, optimizers
from mnist_estimator.inputs import input_fns as inputs
from mnist_estimator.run import plan, runner
from mnist_estimator.run.spec import RunSpec

ModeKeys = tf.estimator.ModeKeys


def test_l2_term_is_half_the_scaled_sum_of_squared_kernels():
  params = plan.model_params(RunSpec.for_model("mlp", l2=0.01), (28, 28, 1), 10, 600)
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.train.get_or_create_global_step()
    images = tf.constant(np.random.RandomState(0).rand(4, 28, 28, 1), tf.float32)
    spec = model_fn.model_fn({"x": images}, tf.constant([1, 2, 3, 4]), ModeKeys.TRAIN, params)
    kernels = {v.op.name: v for v in tf.compat.v1.trainable_variables()}
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      loss, cross_entropy, values = session.run(
          [spec.loss, graph.get_tensor_by_name("cross_entropy:0"), kernels])
  expected = 0.01 * sum(np.sum(values[name] ** 2) / 2 for name in
                        ("hidden/kernel", "logits/kernel"))  # kernels only, not biases
  assert expected > 0.1  # large enough that a wrong term cannot hide in float error
  assert loss - cross_entropy == pytest.approx(expected, rel=1e-5)


def test_learning_rate_decays_in_stairs():
  params = dict(learning_rate=0.8, lr_decay_rate=0.5, lr_decay_steps=10)
  with tf.Graph().as_default():
    step = tf.compat.v1.placeholder(tf.int64, [])
    lr = optimizers.learning_rate(params, step)
    assert lr.name == "optimizer/learning_rate:0"
    with tf.compat.v1.Session() as session:
      got = [session.run(lr, {step: s}) for s in (0, 9, 10, 19, 20, 35)]
  np.testing.assert_allclose(got, [0.8, 0.8, 0.4, 0.4, 0.2, 0.1], rtol=1e-6)


def _mlp_probabilities(weights, images):
  """seed 002's forward pass in numpy: relu(x W1 + b1) W2 + b2, then softmax."""
  x = images.reshape(len(images), -1).astype(np.float64) / 255.0
  hidden = np.maximum(x @ weights["hidden/kernel"] + weights["hidden/bias"], 0)
  logits = hidden @ weights["logits/kernel"] + weights["logits/bias"]
  exp = np.exp(logits - logits.max(axis=1, keepdims=True))
  return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def mlp_run(small, tmp_path_factory):
  """mlp trained 10 steps (EMA 0.99, so the average still lags the weights), exported."""
  root = tmp_path_factory.mktemp("ema")
  spec = RunSpec.for_model("mlp", model_dir=str(root / "m"), steps=10, batch_size=32,
                           learning_rate=0.5, eval_batch_size=100, report=False, seed=1,
                           export_dir=str(root / "export"))
  result = runner.run(spec, small)
  reader = tf.train.load_checkpoint(spec.model_dir)
  names = ("hidden/kernel", "hidden/bias", "logits/kernel", "logits/bias")
  raw = {name: reader.get_tensor(name) for name in names}
  shadow = {name: reader.get_tensor(f"{name}/ExponentialMovingAverage") for name in names}
  return spec, result, raw, shadow


def test_ema_shadow_weights_differ_from_the_raw_ones(mlp_run, small):
  _, _, raw, shadow = mlp_run
  gap = np.abs(_mlp_probabilities(raw, small.x_test) - _mlp_probabilities(shadow, small.x_test))
  assert gap.max() > 1e-2  # else the tests below could not tell the two copies apart


def test_predict_uses_the_ema_weights(mlp_run, small):
  spec, _, _, shadow = mlp_run
  est = runner.estimator_for(spec, small)
  input_fn = inputs.make_input_fn("tfdata", small.x_test, None, 100, train=False)
  got = np.stack([p["probabilities"] for p in est.predict(input_fn)])
  np.testing.assert_allclose(got, _mlp_probabilities(shadow, small.x_test), atol=1e-5)


def test_evaluate_uses_the_ema_weights(mlp_run, small):
  spec, result, _, shadow = mlp_run
  probabilities = _mlp_probabilities(shadow, small.x_test)
  labels = small.y_test
  accuracy = np.mean(probabilities.argmax(axis=1) == labels)
  cross_entropy = -np.mean(np.log(probabilities[np.arange(len(labels)), labels]))
  l2 = spec.l2 * sum(np.sum(shadow[name] ** 2) / 2 for name in ("hidden/kernel",
                                                                 "logits/kernel"))
  assert result["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
  assert result["metrics"]["loss"] == pytest.approx(cross_entropy + l2, rel=1e-4)


def test_export_uses_the_ema_weights(mlp_run, small):
  _, result, _, shadow = mlp_run
  serve = tf.saved_model.load(result["export"]).signatures["serving_default"]
  images = small.x_test[:50, ..., 0].astype(np.float32) / 255.0
  got = serve(images=tf.constant(images))["probabilities"].numpy()
  np.testing.assert_allclose(got, _mlp_probabilities(shadow, small.x_test[:50]), atol=1e-5)


def test_weights_mode_names_the_moving_averages(mlp_run, small, tmp_path, capsys):
  spec = mlp_run[0]
  runner.run(spec.replace(mode="weights", weights_out=str(tmp_path / "w.npz")), small)
  out = capsys.readouterr().out
  averages = out.index("moving averages of the layer weights (what evaluate, predict and export")
  assert "hidden/kernel/ExponentialMovingAverage" in out[averages:out.index("bookkeeping")]
  assert "(the raw layer weights; evaluate, predict and export use their moving averages)" in out
