"""The Python API (mnist_estimator.train, evaluate, export, predict) and docs/python_api.md."""

import os
import re
import subprocess
import sys
import types

import helpers
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

import mnist_estimator as me
from mnist_estimator import api
from mnist_estimator.common.errors import UsageError
from mnist_estimator.run import spec as spec_lib

PAGE = os.path.join(helpers.ROOT, "docs", "python_api.md")
FEW = dict(steps=12, batch_size=16, eval_batch_size=250, seed=1, precision="fp32",
           report=False, log_every_n_iter=5)


def tiny_logits(features, mode, params):
  """A logits function of the test's own, passed as a Python function."""
  del mode
  net = tf.compat.v1.layers.flatten(features["x"])
  return tf.compat.v1.layers.dense(net, params["n_classes"], name="logits")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
  """docs/python_api.md's python blocks, in order, in a fresh folder (one notebook).

  Returns (its blocks, the folder, the notebook's namespace). The page trains the tutorial's
  fast_cnn 30 steps on the bundled sample into runs/fast_cnn: the model of the other tests here.
  """
  with open(PAGE, encoding="utf-8") as f:
    blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
  folder = tmp_path_factory.mktemp("page")
  notebook = types.ModuleType("python_api_page")  # a notebook's __main__: functions by name
  with pytest.MonkeyPatch.context() as patch:
    patch.chdir(folder)
    patch.setitem(sys.modules, notebook.__name__, notebook)
    for n, block in enumerate(blocks):
      exec(compile(block, f"{PAGE} block {n + 1}", "exec"), notebook.__dict__)  # pylint: disable=exec-used
  return blocks, folder, notebook


def test_import_stays_light():
  code = ("import sys, mnist_estimator as me; assert 'tensorflow' not in sys.modules; "
          "assert 'train' in dir(me)")
  proc = subprocess.run([sys.executable, "-c", code], env=helpers.cli_env(), cwd=helpers.ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr


def test_train_returns_metrics_and_evaluate_needs_no_settings(page):
  _, folder, notebook = page
  result = notebook.run  # me.train("fast_cnn", ..., model_dir="runs/fast_cnn", ...)
  assert os.path.join(folder, result.model_dir) == str(folder / "runs" / "fast_cnn")
  assert result.export is None
  assert result.metrics["global_step"] == 30 and 0 <= result.accuracy <= 1
  assert isinstance(result.metrics["loss"], float)
  again = notebook.again  # me.evaluate("runs/fast_cnn"): the record names fast_cnn on mnist_sample
  assert again.metrics == pytest.approx(result.metrics, rel=1e-5)  # sums in another order


def test_predict_on_arrays_and_files_agrees_with_the_predict_command(page, tmp_path):
  model_dir = str(page[1] / "runs" / "fast_cnn")
  exported = me.export(model_dir, export_dir=str(tmp_path / "export"))
  data = me.load_data("mnist_sample")
  files = []
  for i in range(3):
    files.append(str(tmp_path / f"digit{i}.png"))
    Image.fromarray(data.x_test[i, :, :, 0]).save(files[-1])
  code, out, err = helpers.run_predict(exported.export, *files)
  assert code == 0, err
  command = [int(c) for c in re.findall(r"  class (\d+)  probability", out)]
  from_files = me.predict(exported.export, files)
  from_arrays = me.predict(str(tmp_path / "export"), data.x_test[:3])
  from_model_dir = me.predict(model_dir, data.x_test[:3].astype(np.float32) / 255)
  assert list(from_files.classes) == command == list(from_arrays.classes)
  assert list(from_model_dir.classes) == command
  np.testing.assert_allclose(from_files.probabilities, from_arrays.probabilities, atol=1e-5)
  assert from_arrays.class_names == [str(i) for i in range(10)]
  assert from_arrays.probabilities.shape == (3, 10)
  assert me.predict(exported.export, data.x_test[0, :, :, 0]).classes[0] == command[0]


def test_a_python_logits_function_trains(tmp_path):
  result = me.train(tiny_logits, model_dir=str(tmp_path / "mine"), **FEW)
  assert result.metrics["global_step"] == 12
  assert me.evaluate(result.model_dir).metrics == pytest.approx(result.metrics, rel=1e-5)


def test_a_redefined_notebook_function_is_the_one_trained(tmp_path, monkeypatch):
  cell = types.ModuleType("api_cell")
  monkeypatch.setitem(sys.modules, "api_cell", cell)
  calls = []
  for width in (8, 16):
    exec(f"def net(features, mode, params):\n  calls.append({width})\n"  # pylint: disable=exec-used
         "  return tiny_logits(features, mode, params)\n",
         {**cell.__dict__, "calls": calls, "tiny_logits": tiny_logits}, cell.__dict__)
    me.train(cell.net, model_dir=str(tmp_path / f"w{width}"), **{**FEW, "steps": 2})
  assert 8 in calls and 16 in calls


def test_an_unknown_setting_is_refused_with_the_close_names():
  with pytest.raises(UsageError, match=r"unknown setting 'setps': did you mean steps\?"):
    me.train(setps=3)
  with pytest.raises(UsageError, match="did you mean batch_size or eval_batch_size"):
    me.evaluate("nowhere", batchsize=3)
  with pytest.raises(UsageError, match=r"settings\(\) lists them"):
    me.train(colour="blue")


def test_values_are_checked_as_the_flags_check_them():
  with pytest.raises(UsageError, match="optimizer='nope' is not one of"):
    me.train(optimizer="nope")
  with pytest.raises(UsageError, match="steps=0 must be >= 1"):
    me.train(steps=0)
  with pytest.raises(UsageError, match="top level"):
    me.train(lambda features, mode, params: features)
  with pytest.raises(UsageError, match="evaluate"):
    me.train(mode="evaluate")
  spec = api.make_spec(model="mlp", hidden_units="64,32", augment="shift")
  assert spec.hidden_units == (64, 32) and spec.augment == ("shift",)
  assert spec == spec_lib.RunSpec.for_model("mlp", hidden_units=["64", "32"], augment=["shift"])


def test_every_mode_has_its_function():
  assert set(api.MODES) == set(spec_lib.MODES)
  assert me.predict is api.predict or callable(me.predict)


def test_the_page_runs_as_written(page):
  """docs/python_api.md's python blocks ran in order, as they are (the `page` fixture)."""
  blocks, folder, notebook = page
  assert len(blocks) >= 6
  assert notebook.mine.metrics["global_step"] == 30
  assert os.path.isfile(os.path.join(folder, notebook.exported.exports["tflite"]))
