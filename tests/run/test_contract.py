"""The model_dir as the contract: evaluate/export/predict take what training recorded."""

import dataclasses
import json
import os

import helpers
import numpy as np
import pytest

from mnist_estimator.common.errors import UsageError
from mnist_estimator.run import runner

TRAINED = ["--model=dnn", "--hidden_units=32", "--activation=sigmoid", "--optimizer=adam",
           "--learning_rate=0.01", "--dataset=mnist_sample", "--steps=40", "--batch_size=32",
           "--seed=3", "--noreport", "--precision=fp32"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A dnn trained with flags none of which is a default; (model_dir, its eval accuracy)."""
  model_dir = tmp_path_factory.mktemp("contract") / "m"
  code, out, err = helpers.run_main(*TRAINED, f"--model_dir={model_dir}")
  assert code == 0, err
  return str(model_dir), _accuracy(out)


def _accuracy(out):
  line = next(line for line in out.splitlines() if line.startswith("eval on"))
  return float(line.split("accuracy ")[1].split(",")[0])


def test_evaluate_needs_only_the_model_dir(trained):
  model_dir, accuracy = trained
  code, out, err = helpers.run_main("--mode=evaluate", f"--model_dir={model_dir}")
  assert code == 0, err
  assert _accuracy(out) == accuracy  # the same model, on the same data, the same way
  taken = next(line for line in out.splitlines() if line.startswith("from the model_dir"))
  for setting in ("model=dnn", "hidden_units=32", "activation=sigmoid", "optimizer=adam",
                  "dataset=mnist_sample"):
    assert setting in taken, taken


def test_export_and_predict_modes_need_only_the_model_dir(trained, tmp_path):
  model_dir, _ = trained
  code, out, err = helpers.run_main("--mode=export", f"--model_dir={model_dir}",
                                    f"--export_dir={tmp_path / 'export'}")
  assert code == 0, err
  assert os.listdir(tmp_path / "export")
  code, out, err = helpers.run_main("--mode=predict", f"--model_dir={model_dir}",
                                    "--num_predictions=3")
  assert code == 0, err


def test_a_setting_given_against_the_record_is_one_line_without_deleting(trained):
  model_dir, _ = trained
  code, _, err = helpers.run_main("--mode=evaluate", f"--model_dir={model_dir}",
                                  "--hidden_units=64")
  line = helpers.one_error_line(code, err, "hidden_units=[32] there", "--hidden_units=32")
  assert "delete" not in line


def test_resuming_with_another_optimizer_names_the_flag(trained, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.copytree(trained[0], tmp_path / "m")
  argv = [a for a in TRAINED if not a.startswith(("--optimizer", "--steps"))]
  code, _, err = helpers.run_main(*argv, "--optimizer=sgd", "--steps=50",
                                  f"--model_dir={tmp_path / 'm'}")
  line = helpers.one_error_line(code, err, "optimizer='adam' there", "--optimizer=adam")
  assert "delete" not in line


def test_the_record_keeps_what_the_data_means(trained):
  with open(os.path.join(trained[0], "mnist_estimator.json")) as f:
    record = json.load(f)
  assert record["data"]["class_names"] == [str(i) for i in range(10)]
  assert record["data"]["image_shape"] == [28, 28, 1]
  assert record["data"]["border_mean"] < 0.05  # MNIST: white digits on black
  assert record["data"]["decoding"]["height"] == 28
  assert record["settings"]["activation"] == "sigmoid"


def _named(data, names):
  return dataclasses.replace(data, class_names=tuple(names))


NAMES = [f"c{i}" for i in range(10)]


@pytest.fixture(scope="module")
def named(small, tmp_path_factory):
  """linear trained 30 steps on `small` with the classes named c0..c9: (spec, its accuracy).

  Its tests only evaluate, predict or are refused: the checkpoints stay as trained.
  """
  spec = helpers.small_spec("linear", tmp_path_factory.mktemp("named") / "m", steps=30,
                            report=False)
  return spec, runner.run(spec, _named(small, NAMES))["metrics"]["accuracy"]


def test_classes_are_matched_by_name(named, small):
  spec, first = named
  # The same images, their classes listed in another order (labels follow the names).
  order = np.random.RandomState(0).permutation(10)
  shuffled = dataclasses.replace(
      small, class_names=tuple(NAMES[i] for i in order),
      y_train=np.argsort(order)[small.y_train].astype(np.int32),
      y_test=np.argsort(order)[small.y_test].astype(np.int32))
  again = runner.run(spec.replace(mode="evaluate"), shuffled)
  assert again["metrics"]["accuracy"] == pytest.approx(first)


def test_a_renamed_class_is_refused_in_one_line(named, small):
  spec, _ = named
  renamed = _named(small, ["zero"] + NAMES[1:])
  with pytest.raises(UsageError, match=r"trained on the classes c0, c1, .*new: zero; missing: c0"):
    runner.run(spec.replace(mode="evaluate"), renamed)
  with pytest.raises(UsageError, match="new: zero"):  # resuming would train on it
    runner.run(spec.replace(steps=40), renamed)


def test_predict_mode_prints_class_names(named, small, capsys):
  spec, _ = named
  capsys.readouterr()
  rows = runner.run(spec.replace(mode="predict", num_predictions=4), _named(small, NAMES))
  out = capsys.readouterr().out
  lines = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()][:4]
  assert [line[1] for line in lines] == [NAMES[row[1]] for row in rows["predictions"]]
  assert [line[2] for line in lines] == [NAMES[row[2]] for row in rows["predictions"]]
