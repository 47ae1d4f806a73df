"""Your own model and data, end to end: the README's (and examples/README.md's) commands, then
the same through evaluate, export, predict and the server for both kinds of model and three
kinds of data."""

import os
import re
import shlex
import subprocess
import sys

import helpers
import numpy as np
import pytest

from mnist_estimator.common import saved_model
from mnist_estimator.predict import model as predict_model
from mnist_estimator.run import plan
from mnist_estimator.run import runner
from mnist_estimator.run.spec import RunSpec
from mnist_estimator.serve import server
from serve.serve_helpers import call  # pylint: disable=g-bad-import-order

EXAMPLES = os.path.join(helpers.ROOT, "examples")
CNN = f"{EXAMPLES}/nets.py:small_cnn"
MODEL_FN = f"{EXAMPLES}/nets.py:linear_model_fn"


def _first_block(text):
  """The commands of the first code block of `text`, a command a line."""
  block = re.search(r"```\n(.*?)```", text, re.S).group(1)
  return [shlex.split(line, comments=True) for line in block.strip().splitlines()]


def readme_commands():
  """The README's own-model commands, which must be examples/README.md's: the front door's
  example and the example's own page run the same two commands."""
  with open(os.path.join(helpers.ROOT, "README.md")) as f:
    section = re.search(r"^## Your own model and data\n(.*?)^## ", f.read(), re.S | re.M)
  assert section, "README.md has no '## Your own model and data' section"
  commands = _first_block(section.group(1))
  with open(os.path.join(EXAMPLES, "README.md")) as f:
    assert _first_block(f.read()) == commands, "README.md and examples/README.md differ"
  return commands


def test_the_readme_commands_run_as_written(tmp_path):
  os.symlink(EXAMPLES, tmp_path / "examples")  # the commands run from a checkout's root
  outputs = []
  for argv in readme_commands():
    assert argv[0] == "python"
    done = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=helpers.cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    outputs.append(done.stdout)
  assert "classes: circle, square, triangle" in outputs[1]
  accuracy = float(re.search(r"eval on \d+ \S+ test images: accuracy ([\d.]+)",
                             outputs[1]).group(1))
  assert accuracy >= 0.9, outputs[1]  # the README says 100%; shapes are easy
  assert saved_model.versions(str(tmp_path / "shapes_model" / "export"))


def _npz(root, data):
  path = os.path.join(root, "mine.npz")
  np.savez(path, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
           y_test=data.y_test)
  return f"npz:{path}"


def _tfrecord(root, data):
  train = helpers.write_tfrecord(os.path.join(root, "train.tfrecord"), data.x_train,
                                 data.y_train)
  test = helpers.write_tfrecord(os.path.join(root, "test.tfrecord"), data.x_test, data.y_test)
  return f"tfrecord:{train},{test}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """A generated RGB folder of three classes (12x10 images) and its Dataset."""
  root = helpers.write_image_folder(tmp_path_factory.mktemp("mine") / "f", per_class=20)
  return root, plan.load_data(RunSpec.for_model(CNN, dataset=f"folder:{root}"))


@pytest.mark.parametrize("model, kind", [(CNN, "folder"), (MODEL_FN, "folder"), (CNN, "npz"),
                                         (CNN, "tfrecord")])
def test_your_model_on_your_data_trains_exports_predicts_and_serves(model, kind, folder,
                                                                    tmp_path):
  root, data = folder
  dataset = {"folder": lambda: f"folder:{root}", "npz": lambda: _npz(str(tmp_path), data),
             "tfrecord": lambda: _tfrecord(str(tmp_path), data)}[kind]()
  names = ["cat", "dog", "eel"] if kind == "folder" else ["0", "1", "2"]
  spec = RunSpec.for_model(model, dataset=dataset, model_dir=str(tmp_path / "m"), steps=3,
                           export_dir=str(tmp_path / "e"), precision="fp32", report=False,
                           seed=0)
  result = runner.run(spec)
  assert result["metrics"]["global_step"] == 3
  evaluation = runner.run(spec.replace(mode="evaluate", export_dir=None))["metrics"]
  assert evaluation["accuracy"] == result["metrics"]["accuracy"]
  # predict: a PNG of the folder, resized and named by its class.
  loaded = predict_model.load_model(result["export"])
  assert loaded.image_shape == (12, 10, 3) and loaded.class_names == names
  png = os.path.join(root, "dog", "001.png")
  code, out, err = helpers.run_predict(result["export"], png)
  assert code == 0, err
  assert re.search(r"001.png  class \d \(\w+\)|001.png  class \d  ", out), out
  # serve: classify's labels are the class names.
  app, _, batcher = server.build(os.path.dirname(result["export"]), poll_seconds=0)
  with server.BackgroundServer(app) as background:
    pixels = [float(v) + 0.5 / 255 for v in (data.x_test[0] / 255.0).ravel()]
    status, body = call(background.url, "POST", "/v1/models/mnist:classify",
                        {"signature_name": "examples:classify", "examples": [{"x": pixels}]})
  batcher.close()
  assert status == 200, body
  assert [label for label, _ in body["results"][0]] == names
