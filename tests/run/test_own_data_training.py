"""Training your own data: epochs, the own-data recipe, a validation set apart from the test set."""

import dataclasses
import io
import sys

import helpers
import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.data import images as images_lib
from mnist_estimator.data import validation
from mnist_estimator.models import layers
from mnist_estimator.run import runner
from mnist_estimator.run.spec import OWN_DATA_EPOCHS
from mnist_estimator.run.spec import RunSpec


def test_epochs_train_until_their_last_step_and_the_header_says_both(small, tmp_path, capsys):
  spec = RunSpec.for_model("linear", epochs=2, batch_size=100, model_dir=str(tmp_path),
                           report=False, seed=0)
  result = runner.run(spec, small)
  assert result["metrics"]["global_step"] == 12  # 2 x 600 / 100
  out = capsys.readouterr().out
  assert "training: 2 epochs = 12 steps of 100 (6 per epoch)" in out
  # With --steps instead the header gives the epochs: test_train_and_evaluate_prints_each_...


def test_steps_and_epochs_together_are_one_error_line():
  with pytest.raises(UsageError, match=r"--steps=5 and --epochs=2 both say how long to train; "
                                       "give one of them"):
    RunSpec.for_model("cnn", steps=5, epochs=2)
  code, _, err = helpers.run_main("--steps=5", "--epochs=2")
  helpers.one_error_line(code, err, "--epochs=2", "give one of them")


def test_your_own_data_trains_with_the_recipe_unless_flags_say_otherwise():
  own = RunSpec.for_model("cnn", dataset="folder:/photos")
  assert (own.optimizer, own.learning_rate, own.batch_size, own.epochs) == (
      "adam", 0.001, 32, OWN_DATA_EPOCHS)
  mlp = RunSpec.for_model("mlp", dataset="npz:/a.npz")
  assert (mlp.moving_average_decay, mlp.lr_decay_rate, mlp.hidden_units) == (0.0, 1.0, (500,))
  given = RunSpec.for_model("cnn", dataset="tfrecord:/t*", learning_rate=0.01, steps=50,
                            optimizer="sgd")
  assert (given.optimizer, given.learning_rate, given.steps, given.epochs) == (
      "sgd", 0.01, 50, None)
  seed = RunSpec.for_model("cnn", dataset="mnist")
  assert (seed.optimizer, seed.steps, seed.epochs) == ("sgd", 20000, None)


def test_the_recipe_trains_a_folder_and_evaluate_needs_no_flags(tmp_path, capsys):
  root = helpers.write_image_folder(tmp_path / "f", per_class=20)
  model_dir = str(tmp_path / "m")
  spec = RunSpec.for_model("cnn", dataset=f"folder:{root}", epochs=1, model_dir=model_dir,
                           precision="fp32", report=False, seed=1)
  runner.run(spec)
  out = capsys.readouterr().out
  assert "own-data recipe where no flag says otherwise: adam at 0.001, batch 32" in out
  assert "training: 1 epoch = 2 steps of 32 (2 per epoch)" in out
  # Evaluate with the model_dir only: the recorded data and settings, the same test set.
  result = runner.run(RunSpec.for_model("cnn", mode="evaluate", model_dir=model_dir))
  assert result["metrics"]["global_step"] == 2
  assert "from the model_dir's training run: " in capsys.readouterr().out


def test_train_and_evaluate_prints_each_validation_and_the_test_once(small, tmp_path, capsys):
  spec = RunSpec.for_model("linear", mode="train_and_evaluate", steps=20, eval_every_steps=10,
                           batch_size=32, model_dir=str(tmp_path), report=False, seed=0)
  runner.run(spec, small)
  out = capsys.readouterr().out
  # --steps: the header says how many epochs they are (ceil(600 / 32) = 19 steps an epoch).
  assert "training: 20 steps of 32 = 1.1 epochs of 600 images" in out
  lines = [line for line in out.splitlines() if line.startswith("eval on")]
  assert [line.split(":")[0] for line in lines] == [
      "eval on 200 mnist_sample validation images"] * 2 + ["eval on 200 mnist_sample test images"]
  assert lines[0].endswith("global_step 10") and lines[2].endswith("global_step 20")


def test_without_a_validation_set_evaluations_use_the_test_set_and_say_so(small, tmp_path,
                                                                          capsys):
  data = dataclasses.replace(small, x_val=None, y_val=None)
  spec = RunSpec.for_model("linear", mode="train_and_evaluate", steps=10, eval_every_steps=10,
                           model_dir=str(tmp_path), report=False)
  runner.run(spec, data)
  out = capsys.readouterr().out
  assert "validation: no validation set: periodic evaluations use the test set" in out
  assert "eval on 200 mnist_sample test images" in out


def test_built_in_sets_have_a_fixed_validation_cut(sample):
  whole = helpers.load_whole("mnist_sample")
  assert (len(sample.y_train), len(sample.y_val), len(sample.y_test)) == (4500, 500, 1000)
  np.testing.assert_array_equal(sample.x_val, whole.x_train[-500:])
  np.testing.assert_array_equal(sample.x_train, whole.x_train[:-500])
  assert sample.validation_source == "the last 500 training images"
  share = datasets.load("mnist_sample", validation_split=0.2, validation_seed=1)
  assert abs(len(share.y_val) - 1000) <= 5 and share.validation_source.startswith("20% of each")
  assert len(share.y_val) + len(share.y_train) == 5000
  assert not whole.has_validation


def test_validation_split_on_a_series_is_refused(tmp_path):
  folder = helpers.write_weather(tmp_path)
  with pytest.raises(UsageError, match=r"--validation_split does not apply to weather"):
    datasets.load("weather", folder, window=4, validation_split=0.1)


def test_an_npz_brings_its_own_validation_set(tmp_path):
  rng = np.random.RandomState(0)
  arrays = {f"x_{s}": rng.randint(0, 255, (n, 8, 8), np.uint8) for s, n in
            (("train", 30), ("test", 6), ("val", 9))}
  arrays.update({f"y_{s}": np.arange(n) % 3 for s, n in (("train", 30), ("test", 6),
                                                         ("val", 9))})
  np.savez(tmp_path / "a.npz", **arrays)
  data = datasets.load(f"npz:{tmp_path / 'a.npz'}")
  assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (30, 9, 6)
  np.testing.assert_array_equal(data.x_val[..., 0], arrays["x_val"])
  np.testing.assert_array_equal(data.y_val, arrays["y_val"])
  del arrays["y_val"]
  np.savez(tmp_path / "b.npz", **arrays)
  with pytest.raises(UsageError, match=r"has x_val without its pair"):
    datasets.load(f"npz:{tmp_path / 'b.npz'}")


def test_a_third_tfrecord_glob_is_the_validation_set(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top

  def png(seed):
    out = io.BytesIO()
    Image.fromarray(np.random.RandomState(seed).randint(0, 255, (6, 5), np.uint8)).save(
        out, "PNG")
    return out.getvalue()

  for name, count in (("train", 12), ("test", 6), ("val", 3)):
    helpers.write_tfrecord_examples(tmp_path / f"{name}.tfrecord", [png(i) for i in range(count)],
                                    [i % 3 for i in range(count)])
  data = datasets.load(f"tfrecord:{tmp_path}/train.tfrecord,{tmp_path}/test.tfrecord,"
                       f"{tmp_path}/val.tfrecord")
  assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (12, 3, 6)
  carved = datasets.load(f"tfrecord:{tmp_path}/train.tfrecord,,{tmp_path}/val.tfrecord")
  assert (len(carved.y_train) + len(carved.y_test), len(carved.y_val)) == (12, 3)


def test_the_opening_lines_print_before_decoding_and_the_report_names_the_worst_files(
    tmp_path, monkeypatch, capsys):
  import json  # pylint: disable=g-import-not-at-top
  root = helpers.write_image_folder(tmp_path / "f", per_class=10)
  monkeypatch.setattr(images_lib, "_PROGRESS_AFTER", 0.0)
  monkeypatch.setattr(sys, "stderr", sys.stdout)  # one stream: the order shows
  monkeypatch.setattr(images_lib.os, "environ", {**images_lib.os.environ,
                                                  images_lib.CACHE_ENV: str(tmp_path / "c")})
  # Zero weights and no learning: every image is called the first class, so the other classes'
  # test images (the split is stratified) are errors whatever the seed. From a random start the
  # model sometimes called every test image right, and there was no error to name (a CI run).
  monkeypatch.setattr(layers, "_kernel_init", tf.compat.v1.zeros_initializer)
  spec = RunSpec.for_model("linear", dataset=f"folder:{root}", steps=1, learning_rate=0.0,
                           precision="fp32", model_dir=str(tmp_path / "m"))
  runner.run(spec)
  out = capsys.readouterr().out
  assert out.index(f"train linear on folder:{root}") < out.index("decoding 30 images") < out.index(
      "data: ")
  # The eval report names the files of the worst errors.
  report = json.loads((tmp_path / "m" / "eval_report" / "eval_report.json").read_text())
  worst = report["worst_errors"]
  assert worst and all(row["file"].startswith(root) for row in worst)
  for row in worst:  # the file's folder is its true class
    assert row["file"].split("/")[-2] == row["label_name"] != row["predicted_name"]


def test_validation_leaves_no_class_without_training_images():
  data = datasets.Dataset("x", (2, 2, 1), 2, np.zeros((3, 2, 2, 1), np.uint8),
                          np.array([0, 0, 1], np.int32), np.zeros((1, 2, 2, 1), np.uint8),
                          np.array([0], np.int32), "made")
  with pytest.raises(UsageError, match=r"class 1 has no training images; lower "
                                       "--validation_split"):
    validation._split(data, np.array([0, 1]), np.array([2]), "x")


def test_augment_is_said_trained_and_drawn_in_tensorboard(small, tmp_path, capsys):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  spec = RunSpec.for_model("linear", augment=("flip", "shift"), steps=2, histogram_steps=1,
                           model_dir=str(tmp_path), report=False, seed=0)
  runner.run(spec, small)
  assert "augment: flip, shift ±10% (training images only)" in capsys.readouterr().out
  events = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"images": 0})
  events.Reload()
  assert "augmented_images/image" in events.Tags()["images"]


def test_augment_errors_are_one_line_with_the_reason():
  code, _, err = helpers.run_main("--augment=shfit")
  helpers.one_error_line(code, err, "shfit", "flip, shift, rotate")
  code, _, err = helpers.run_main("--augment=shift", "--input=numpy", "--steps=1")
  helpers.one_error_line(code, err, "--augment", "--input=tfdata")


def test_a_streamed_folder_trains_evaluates_exports_and_predicts(tmp_path, capsys):
  root = helpers.write_image_folder(tmp_path / "f", per_class=12)
  spec = RunSpec.for_model("linear", dataset=f"folder:{root}", steps=4, stream="yes",
                           mode="train_and_evaluate", eval_every_steps=2, precision="fp32",
                           model_dir=str(tmp_path / "m"), export_dir=str(tmp_path / "e"),
                           seed=0)
  result = runner.run(spec)
  out = capsys.readouterr().out
  assert "streamed from the files" in out and "images: streamed from the files" in out
  assert out.count("validation images: accuracy") == 2 and "test images: accuracy" in out
  memory = runner.run(spec.replace(mode="evaluate", stream="no", export_dir=None))
  assert memory["metrics"]["accuracy"] == result["metrics"]["accuracy"]  # the same pixels
  rows = runner.run(spec.replace(mode="predict", export_dir=None))["predictions"]
  assert [row[0] for row in rows] == [0, 1, 2]  # the 3 test images (a tenth of 12 per class)


def test_a_streamed_file_gone_mid_run_is_one_error_naming_it(tmp_path):
  import os  # pylint: disable=g-import-not-at-top
  root = helpers.write_image_folder(tmp_path / "f", per_class=6)
  spec = RunSpec.for_model("linear", dataset=f"folder:{root}", steps=2, stream="yes",
                           precision="fp32", model_dir=str(tmp_path / "m"), report=False)
  data = runner.plan_lib.load_data(spec)
  gone = data.x_test.paths[0]
  os.remove(gone)  # read by the evaluation after training
  with pytest.raises(UsageError, match=rf"an image file cannot be read any more \(.*"
                                       rf"{os.path.basename(gone)}; No such file.*run again so "
                                       "the folder is listed anew"):
    runner.run(spec, data)
