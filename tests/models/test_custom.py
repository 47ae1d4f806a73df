"""Models of your own by import path: both kinds, defaults, the record's source hash, errors."""

import json
import os
import textwrap

import helpers
import numpy as np
import pytest

from mnist_estimator import models
from mnist_estimator.common.errors import UsageError
from mnist_estimator import runtime
from mnist_estimator.models import custom
from mnist_estimator.run import runner
from mnist_estimator.run.spec import RunSpec

LOGITS = """
import tensorflow as tf

def net(features, mode, params):
  x = tf.compat.v1.layers.flatten(features["x"])
  x = tf.compat.v1.layers.dense(x, {hidden}, tf.nn.relu, name="hidden")
  return tf.compat.v1.layers.dense(x, params["n_classes"], name="logits")

net.defaults = dict(optimizer="adam", learning_rate=0.01, batch_size=20, steps=4)
"""


def write(tmp_path, text, name="nets.py"):
  path = tmp_path / name
  path.write_text(textwrap.dedent(text))
  return str(path)


def spec(tmp_path, model, **overrides):
  return RunSpec.for_model(model, model_dir=str(tmp_path / "m"), precision="fp32", report=False,
                           eval_batch_size=100, **overrides)


def test_a_logits_function_by_file_gets_the_shared_head_and_a_changed_one_is_named(tmp_path,
                                                                                  small, capsys):
  path = write(tmp_path, LOGITS.format(hidden=8))
  model = f"{path}:net"
  run = spec(tmp_path, model)
  assert (run.optimizer, run.batch_size, run.steps) == ("adam", 20, 4)  # its defaults
  result = runner.run(run.replace(export_dir=str(tmp_path / "e")), small)
  assert result["metrics"]["global_step"] == 4
  out = capsys.readouterr().out
  assert f"model: {model}: a logits function; the shared head adds" in out
  assert "loss" in out and "batch accuracy" in out  # the head's named tensors
  record = json.loads((tmp_path / "m" / "mnist_estimator.json").read_text())
  assert record["model"] == model and len(record["source_sha256"]) == 64
  loaded = runtime.load(result["export"])
  assert {"serving_default", "examples:classify"} <= set(loaded.signatures)
  # The same file, another network: resuming the model_dir names the change.
  write(tmp_path, LOGITS.format(hidden=16))
  custom._LOADED.clear()  # pylint: disable=protected-access  # as a new process would
  with pytest.raises(UsageError) as error:
    runner.run(spec(tmp_path, model, steps=8), small)
  message = str(error.value)
  assert "nets.py changed since" in message and "no longer restores" in message, message


def test_a_dotted_module_and_the_decorators(tmp_path, small, monkeypatch):
  write(tmp_path, """
      import tensorflow as tf
      from mnist_estimator.models import custom

      @custom.logits(steps=3, batch_size=10)
      def tiny(features, mode, params):
        x = tf.compat.v1.layers.flatten(features["x"])
        return tf.compat.v1.layers.dense(x, params["n_classes"], name="logits")
      """, "mypkg_nets.py")
  monkeypatch.syspath_prepend(str(tmp_path))
  fn, kind, defaults, source = custom.load("mypkg_nets:tiny")
  assert kind == "logits" and defaults == {"steps": 3, "batch_size": 10}
  assert source.endswith("mypkg_nets.py")
  assert runner.run(spec(tmp_path, "mypkg_nets:tiny"), small)["metrics"]["global_step"] == 3


def test_a_full_model_fn_is_used_as_it_is(tmp_path, small, capsys):
  model = f"{helpers.ROOT}/examples/nets.py:linear_model_fn"
  run = spec(tmp_path, model, steps=5, export_dir=str(tmp_path / "e"))
  result = runner.run(run, small)
  out = capsys.readouterr().out
  assert "a full model_fn, used as it is" in out and "fp32" in out
  assert result["metrics"]["global_step"] == 5
  rows = runner.run(run.replace(mode="predict", num_predictions=3), small)["predictions"]
  assert [row[1] for row in rows] == list(small.y_test[:3])
  loaded = runtime.load(result["export"])
  assert "examples:classify" in loaded.signatures  # added: TF Serving's classify, as ours


def test_a_model_fn_with_a_saver_of_its_own_checkpoints_with_it(tmp_path, small):
  """A whole model_fn's Scaffold(saver=...) is handed to tf.estimator's checkpoint hook, which
  a whole model_fn keeps (ours, hooks.CheckpointSaver, reads the graph's savers)."""
  path = write(tmp_path, """
      import tensorflow as tf

      def keep_two(features, labels, mode, params):
        logits = tf.compat.v1.layers.dense(tf.compat.v1.layers.flatten(features["x"]), 10)
        loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
        step = tf.compat.v1.train.get_or_create_global_step()
        train = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss, step)
        saver = tf.compat.v1.train.Saver(max_to_keep=2, sharded=True)
        accuracy = tf.compat.v1.metrics.accuracy(labels, tf.argmax(logits, 1))
        return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train,
                                          eval_metric_ops={"accuracy": accuracy},
                                          scaffold=tf.compat.v1.train.Scaffold(saver=saver))
      """)
  result = runner.run(spec(tmp_path, f"{path}:keep_two", steps=6, save_checkpoints_steps=2),
                      small)
  assert result["metrics"]["global_step"] == 6
  kept = sorted(f for f in os.listdir(tmp_path / "m") if f.endswith(".index"))
  assert kept == ["model.ckpt-4.index", "model.ckpt-6.index"]  # its Saver's max_to_keep=2


@pytest.mark.parametrize("text, model, words", [
    (None, "./no_such_file.py:net", ["there is no file", "no_such_file.py"]),
    (None, "no_such_module_xyz:net", ["no module named no_such_module_xyz"]),
    ("def other(features, mode, params): pass\n", "FILE:net", ["has no net", "other"]),
    ("net = 3\n", "FILE:net", ["net is a int, not a function"]),
    ("def net(x): return x\n", "FILE:net", ["takes (x)", "fn(features, mode, params)"]),
    ("import no_such_dependency_xyz\n", "FILE:net", ["importing", "ModuleNotFoundError",
                                                     "no_such_dependency_xyz"]),
    ("def net(features, mode, params): pass\nnet.defaults = {'speed': 3}\n", "FILE:net",
     ["defaults name speed", "a model sets only"]),
])
def test_a_model_that_does_not_load_is_one_line(tmp_path, text, model, words):
  if text is not None:
    model = model.replace("FILE", write(tmp_path, text, "broken.py"))
  with pytest.raises(UsageError) as error:
    RunSpec.for_model(model)
  assert all(word in str(error.value) for word in words), str(error.value)


def test_wrong_logits_and_a_raising_model_name_the_fault(tmp_path, small):
  wrong = write(tmp_path, """
      import tensorflow as tf
      def net(features, mode, params):
        x = tf.compat.v1.layers.flatten(features["x"])
        return tf.compat.v1.layers.dense(x, 7, name="logits")
      """, "wrong.py")
  with pytest.raises(UsageError, match=r"returned shape \[(None|100), 7\].*\[batch, 10\]"):
    runner.run(spec(tmp_path, f"{wrong}:net", steps=1), small)
  raising = write(tmp_path, """
      def helper(x):
        return x["no_such_feature"]

      def net(features, mode, params):
        return helper(features)
      """, "raising.py")
  code, _, err = helpers.run_main(f"--model={raising}:net", "--dataset=mnist_sample",
                                  f"--model_dir={tmp_path}/r", "--steps=1")
  assert code == 2 and "in your code:" in err and "raising.py" in err
  assert 'return x["no_such_feature"]' in err  # the user's frames, not the package's
  assert "head/model_fn.py" not in err
  helpers.one_error_line(code, err, "(building its graph) raised KeyError", "no_such_feature")


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_every_built_in_model_runs_on_rgb_images_or_says_why(name, tmp_path):
  root = helpers.write_image_folder(tmp_path / "f", per_class=5, size=(12, 10))
  run = RunSpec.for_model(name, dataset=f"folder:{root}", model_dir=str(tmp_path / "m"), steps=2,
                          batch_size=5, precision="fp32", report=False, seed=1,
                          test_split=0.2)
  if models.get_model(name).inputs == "series":
    with pytest.raises(UsageError, match="reads windows of a series"):
      runner.run(run)
    return
  try:
    metrics = runner.run(run)["metrics"]
  except UsageError as e:  # a network too deep for 12x10 images says so
    assert "cannot take 12x10x3 images" in str(e) and "--image_size" in str(e), str(e)
    return
  assert metrics["global_step"] == 2 and np.isfinite(metrics["loss"])


def test_a_model_file_not_named_py_is_one_line(tmp_path):
  nets = write(tmp_path, "def net(features, mode, params): pass\n", "nets")  # no .py
  with pytest.raises(UsageError, match=r"is not a Python file \(\.py\)"):
    RunSpec.for_model(f"{nets}:net")
  code, _, err = helpers.run_main(f"--model={nets}:net", f"--model_dir={tmp_path}/m")
  helpers.one_error_line(code, err, f"{nets} is not a Python file (.py)", "PATH.py:net")
  assert "Traceback" not in err
