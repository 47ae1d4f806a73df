"""SavedModel export: signatures seen by saved_model_cli, tf.Example input, newest export."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.common import saved_model
from mnist_estimator.common.errors import UsageError
from mnist_estimator.estimator import export
from mnist_estimator.run import runner
from mnist_estimator.run.spec import RunSpec


@pytest.fixture(scope="module")
def exported(small, tmp_path_factory):
  """(spec, SavedModel path) of linear trained 10 steps and exported after training."""
  root = tmp_path_factory.mktemp("export")
  spec = RunSpec.for_model("linear", model_dir=str(root / "m"), steps=10, batch_size=32,
                            optimizer="sgd", learning_rate=0.5, eval_batch_size=100,
                            export_dir=str(root / "e"), seed=0, report=False)
  return spec, runner.run(spec, small)["export"]


def test_saved_model_cli_lists_the_signatures(exported):
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  out = subprocess.run([cli, "show", "--dir", exported[1], "--all"], capture_output=True,
                       text=True, check=True, timeout=120).stdout
  for name in ("serving_default", "predict", "examples:classify", "examples:predict"):
    assert f"signature_def['{name}']" in out
  assert "shape: (-1, 28, 28)" in out and "outputs['probabilities']" in out


def test_example_and_image_inputs_agree(exported, small):
  loaded = tf.saved_model.load(exported[1])
  images = small.x_test[:8, :, :, 0].astype(np.float32) / 255.0
  by_image = loaded.signatures["serving_default"](images=tf.constant(images))
  examples = [tf.train.Example(features=tf.train.Features(feature={"x": tf.train.Feature(
      float_list=tf.train.FloatList(value=image.ravel()))})).SerializeToString()
              for image in images]
  by_example = loaded.signatures["examples:predict"](examples=tf.constant(examples))
  np.testing.assert_array_equal(by_image["classes"], by_example["classes"])
  np.testing.assert_allclose(by_image["probabilities"], by_example["probabilities"], atol=1e-6)
  scores = loaded.signatures["examples:classify"](inputs=tf.constant(examples))["scores"]
  np.testing.assert_allclose(scores, by_image["probabilities"], atol=1e-6)


def test_export_mode_and_newest_export(exported, small):
  spec, first = exported
  second = runner.run(spec.replace(mode="export"), small)["export"]
  assert second != first
  assert saved_model.newest(spec.export_dir) == max(first, second)
  assert saved_model.newest(second) == second
  with pytest.raises(UsageError, match="needs --export_dir"):
    runner.run(spec.replace(mode="export", export_dir=None), small)


def test_no_saved_model(tmp_path):
  with pytest.raises(UsageError, match="no SavedModel in"):
    saved_model.newest(str(tmp_path))


def test_serving_shape():
  assert export.serving_shape((28, 28, 1)) == [None, 28, 28]
  assert export.serving_shape((36, 36, 3)) == [None, 36, 36, 3]
