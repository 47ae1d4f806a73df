"""The bad-input matrix: each case fails with one clear line, and leaves a trained model_dir's
checkpoint exactly as it was. In-process (helpers.run_main); test_main runs the real command."""

import numpy as np
import pytest
import tensorflow as tf
from helpers import fake_mnist, run_main, run_predict, write_idx, write_mnist_dir  # pylint: disable=g-bad-import-order

BASE = ["--model=dnn", "--optimizer=sgd", "--learning_rate=0.1", "--dataset=mnist_sample",
        "--noreport"]


def checkpoint_state(model_dir):
  """(latest checkpoint path, {variable: value}) — what 'intact' means."""
  path = tf.train.latest_checkpoint(model_dir)
  reader = tf.train.load_checkpoint(path)
  return path, {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def bad_data_dirs(root):
  """Folders of broken MNIST files, by case name."""
  dirs = {name: root / name for name in
          ("truncated", "magic", "shape", "labels", "partial", "not_gzip")}
  for folder in dirs.values():
    folder.mkdir()
  arrays = write_mnist_dir(dirs["truncated"])
  path = dirs["truncated"] / "train-images-idx3-ubyte.gz"
  write_idx(path, arrays[0])
  path.write_bytes(path.read_bytes()[:-40])  # a cut-off download
  arrays = write_mnist_dir(dirs["magic"])
  write_idx(dirs["magic"] / "t10k-labels-idx1-ubyte.gz", arrays[3], magic=0x0803)
  x_train, y_train, x_test, y_test = fake_mnist()
  write_mnist_dir(dirs["shape"], (np.zeros((12, 32, 32), np.uint8), y_train, x_test, y_test))
  write_mnist_dir(dirs["labels"], (x_train, y_train + 10, x_test, y_test))
  write_mnist_dir(dirs["partial"], skip=("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
  write_mnist_dir(dirs["not_gzip"])
  (dirs["not_gzip"] / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b this is no gzip")
  return dirs


def cases(tmp, trained):
  """(name, run, words the error line must contain); run() -> (code, out, err)."""
  data = bad_data_dirs(tmp)
  a_file = tmp / "a_file"
  a_file.write_text("not a directory")
  (tmp / "text.png").write_text("this is not an image")
  on_trained = BASE + [f"--model_dir={trained}", "--steps=50"]
  main = lambda *argv: lambda: run_main(*argv)
  mnist = lambda name: main(*on_trained, "--dataset=mnist", f"--data_dir={data[name]}")
  return [
      ("steps 0", main(*on_trained, "--steps=0"), ["--steps", "0"]),
      ("batch 0", main(*on_trained, "--batch_size=0"), ["--batch_size", "0"]),
      ("unknown model", main(*on_trained, "--model=resnet"), ["--model", "resnet"]),
      ("unknown optimizer", main(*on_trained, "--optimizer=lbfgs"), ["--optimizer", "lbfgs"]),
      ("hidden a,b", main(*on_trained, "--hidden_units=a,b"), ["hidden_units"]),
      ("unknown flag", main(*on_trained, "--stepz=3"), ["stepz"]),
      ("missing data_dir", main(*on_trained, "--dataset=mnist", "--data_dir=/no/such/dir"),
       ["/no/such/dir"]),
      ("truncated IDX", mnist("truncated"), ["train-images-idx3-ubyte.gz"]),
      ("wrong magic", mnist("magic"), ["t10k-labels-idx1-ubyte.gz", "magic"]),
      ("32x32 images", mnist("shape"), ["32x32"]),
      ("labels out of range", mnist("labels"), ["train-labels-idx1-ubyte.gz"]),
      ("two files missing", mnist("partial"), ["t10k-images-idx3-ubyte"]),
      ("corrupt gzip", mnist("not_gzip"), ["train-labels-idx1-ubyte.gz"]),
      ("fonts without data", main(*on_trained, "--dataset=fonts", f"--data_dir={tmp}"),
       ["data_with_labels.npz"]),
      ("weather without data", main(*on_trained, "--dataset=weather", f"--data_dir={tmp}"),
       ["weather.npz", "--data_dir="]),
      ("window on mnist", main(*on_trained, "--window=4"), ["--window", "drop --window"]),
      ("model_dir is a file", main(*BASE, f"--model_dir={a_file}"), ["is a file"]),
      ("model_dir under a file", main(*BASE, f"--model_dir={a_file}/sub"), ["a_file"]),
      ("another model's dir", main(*on_trained, "--model=cnn"), ["holds a dnn model"]),
      ("other hidden units", main(*on_trained, "--hidden_units=64"), ["hidden_units"]),
      # inf, not merely huge: w - inf * 0 is NaN for every weight of an always-black border
      # pixel, so the next loss is NaN on any CPU. With 1e30 the ReLUs can all die instead,
      # and the dead network trains on with a finite loss.
      ("NaN loss", main(*on_trained, "--learning_rate=inf"), ["NaN", "--learning_rate"]),
      ("warm start from nothing", main(*BASE, f"--model_dir={tmp}/w",
                                       f"--warm_start_from={tmp}/none"), ["--warm_start_from"]),
      ("evaluate untrained", main(*BASE, "--mode=evaluate", f"--model_dir={tmp}/e"),
       ["no checkpoint"]),
      ("stray argument", main(*on_trained, "oops"), ["unexpected arguments"]),
      ("predict a text file", lambda: run_predict(f"{trained}/export", str(tmp / "text.png")),
       ["text.png"]),
      ("predict without export", lambda: run_predict(str(tmp), str(tmp / "text.png")),
       ["SavedModel"]),
  ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("trained") / "m"
  code, _, err = run_main(*BASE, f"--model_dir={model_dir}", "--steps=3",
                          f"--export_dir={model_dir}/export")
  assert code == 0, err
  return model_dir


def test_bad_input_matrix(trained, tmp_path):
  before = checkpoint_state(str(trained))
  matrix = cases(tmp_path, trained)
  assert len({case[0] for case in matrix}) == len(matrix), "case names are unique"
  assert len(matrix) == 26
  failures = []
  for name, run, words in matrix:
    code, _, err = run()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if not (code == 2 and len(errors) == 1 and all(word in errors[0] for word in words)):
      failures.append(f"{name}: exit {code}: {err[-1500:]}")
  assert not failures, "\n\n".join(failures)
  after = checkpoint_state(str(trained))
  assert after[0] == before[0]
  for name, value in before[1].items():
    np.testing.assert_array_equal(after[1][name], value, err_msg=name)
