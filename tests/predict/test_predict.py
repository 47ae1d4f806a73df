"""predict.py: a SavedModel's predictions from image and data files, its CLI, and plain TF."""

import gzip
import io
import json
import os
import subprocess
import sys

import helpers
import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator.common.errors import UsageError
from mnist_estimator.inputs import input_fns as inputs
from mnist_estimator.predict import image_files
from mnist_estimator.predict import main as predict
from mnist_estimator.predict import model as predict_model
from mnist_estimator.run import runner

SHAPE = (28, 28, 1)


@pytest.fixture(scope="module")
def model(trained):
  return predict_model.load_model(trained[0].export_dir)  # the base dir: its newest export


def write_png(path, pixels):
  """Writes uint8 [H, W, C] as a PNG; returns the path as a string."""
  tf.io.write_file(str(path), tf.io.encode_png(pixels))
  return str(path)


def write_idx(path, array, magic):
  """An MNIST IDX file of unsigned bytes, gzipped if the name ends in .gz."""
  return helpers.write_idx(path, array, gz=str(path).endswith(".gz"), magic=magic)


def test_saved_model_matches_estimator_predict(trained, model, sample):
  spec, result = trained
  assert model.path == result["export"] and model.image_shape == SHAPE
  estimator = runner.estimator_for(spec, sample)
  rows = list(estimator.predict(inputs.make_input_fn("tfdata", sample.x_test, None, 100,
                                                     train=False)))
  # 300 does not divide 1000: the last, smaller batch must come back too.
  classes, probs = predict_model.predict(model, sample.x_test.astype(np.float32) / 255.0, 300)
  assert probs.dtype == np.float32 and probs.shape == (1000, 10)
  np.testing.assert_array_equal(classes, [row["classes"] for row in rows])
  np.testing.assert_allclose(probs, [row["probabilities"] for row in rows], atol=1e-5)


def test_accuracy_equals_the_evaluation(trained, model, sample):
  classes, _ = predict_model.predict(model, sample.x_test)  # uint8: scaled as the pipeline does
  assert np.mean(classes == sample.y_test) == pytest.approx(
      trained[1]["metrics"]["accuracy"], abs=1e-6)


def test_png_round_trip_with_inversion_and_colour(model, sample, tmp_path):
  digits = sample.x_test[:4]  # uint8 [4, 28, 28, 1]
  rgba = np.concatenate([np.zeros_like(digits[3]).repeat(3, -1), digits[3]], -1)
  paths = [write_png(tmp_path / "plain.png", digits[0]),
           write_png(tmp_path / "ink.png", 255 - digits[1]),  # dark on white, as drawn
           write_png(tmp_path / "rgb.png", digits[2].repeat(3, -1)),
           write_png(tmp_path / "rgba.png", rgba)]  # black ink on a transparent background
  # Inverted where the border is light: the model's training images (MNIST) have a dark one.
  assert model.border_mean < 0.05
  images = image_files.load_images(paths, SHAPE, border_mean=model.border_mean)
  assert images.dtype == np.float32 and images.shape == (4, 28, 28, 1)
  np.testing.assert_array_equal(images[0], digits[0] / np.float32(255))
  np.testing.assert_allclose(images, digits / 255.0, atol=1e-6)
  expected = predict_model.predict(model, digits)
  got = predict_model.predict(model, images)
  np.testing.assert_array_equal(got[0], expected[0])
  np.testing.assert_allclose(got[1], expected[1], atol=1e-5)

  not_inverted = image_files.load_images(paths[1:2], SHAPE, invert="no")
  np.testing.assert_allclose(not_inverted[0], 1 - digits[1] / 255.0, atol=1e-6)
  forced = image_files.load_images(paths[:1], SHAPE, invert="yes")
  # Without the training images' polarity (an older export), auto inverts nothing.
  kept = image_files.load_images(paths[1:2], SHAPE)
  np.testing.assert_allclose(kept[0], 1 - digits[1] / 255.0, atol=1e-6)
  np.testing.assert_allclose(forced[0], 1 - digits[0] / 255.0, atol=1e-6)


def test_idx_npz_npy_files_and_labels(trained, model, sample, tmp_path):
  x, y = sample.x_test, sample.y_test
  idx = write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x[:50, ..., 0], 0x803)
  idx_labels = write_idx(tmp_path / "t10k-labels-idx1-ubyte", y[:50], 0x801)
  out = io.StringIO()
  result = predict.predict_files(trained[0].export_dir, [idx], labels=idx_labels, max_lines=3,
                                 out=out)
  lines = out.getvalue().splitlines()
  assert lines[0].startswith(f"{idx}[0]  class {result['classes'][0]}  probability 0.")
  assert lines[0].endswith(f"label {y[0]}") and lines[3] == "... 47 more"
  assert result["accuracy"] == pytest.approx(np.mean(result["classes"] == y[:50]))
  assert lines[4] == f"accuracy {result['accuracy']:.4f} on 50 images"

  npz = tmp_path / "sample.npz"
  np.savez(npz, x_train=x[:5], x_test=x, y_test=y)  # x_test is picked, y_test for labels
  out = io.StringIO()
  predict.predict_files(trained[0].export_dir, [str(npz)], labels=str(npz), as_json=True,
                        out=out)
  rows = [json.loads(line) for line in out.getvalue().splitlines()]
  assert len(rows) == 1001 and rows[5]["file"] == str(npz) and rows[5]["index"] == 5
  assert rows[-1]["count"] == 1000
  assert rows[-1]["accuracy"] == pytest.approx(trained[1]["metrics"]["accuracy"], abs=1e-6)

  flat = tmp_path / "flat.npy"  # float 0..1, one row of 784 pixels per image
  np.save(flat, x[:7].reshape(7, -1) / np.float32(255))
  np.testing.assert_allclose(image_files.load_images([str(flat)], SHAPE), x[:7] / 255.0, atol=1e-7)
  # Data files are never inverted in auto mode, even a mostly-white one.
  np.save(tmp_path / "white.npy", np.full([2, 28, 28], 250, np.uint8))
  assert image_files.load_images([str(tmp_path / "white.npy")], SHAPE).min() > 0.9


def test_wrong_size_needs_resize(model, tmp_path):
  path = write_png(tmp_path / "wide.png", np.zeros([30, 40, 1], np.uint8))
  with pytest.raises(UsageError, match=r"wide.png is 40x30 pixels .* takes 28x28; pass --resize"):
    image_files.load_images([path], SHAPE)
  images = image_files.load_images([path], SHAPE, resize=True)
  assert images.shape == (1, 28, 28, 1) and images.max() == 0.0
  big = write_png(tmp_path / "big.png", np.full([56, 56, 3], 200, np.uint8))
  np.testing.assert_allclose(image_files.load_images([big], SHAPE, invert="no", resize=True),
                             200 / 255.0, atol=1e-5)


@pytest.mark.parametrize("name, content, match", [
    ("notes.txt", b"not a picture\n", "notes.txt is not an image"),
    ("five.npy", None, "five.npy has 5 channels but the model takes 1"),
    ("hot.npy", np.full([1, 28, 28], 3.0, np.float32), "float32 pixels from 3.0 to 3.0"),
    ("labels.npy", np.arange(4), r"shape \[4\], not images"),
    ("junk.gz", gzip.compress(b"hello", mtime=0), "gzip-compressed but not an MNIST IDX"),
])
def test_bad_files_are_usage_errors(tmp_path, name, content, match):
  path = tmp_path / name
  if content is None:
    content = np.zeros([1, 28, 28, 5], np.uint8)
  if isinstance(content, bytes):
    path.write_bytes(content)
  else:
    np.save(path, content)
  with pytest.raises(UsageError, match=match):
    image_files.load_images([str(path)], SHAPE)


def test_missing_things_are_usage_errors(trained, model, tmp_path):
  with pytest.raises(UsageError, match="cannot read .*gone.png"):
    image_files.load_images([str(tmp_path / "gone.png")], SHAPE)
  with pytest.raises(UsageError, match="no SavedModel in"):
    predict_model.load_model(str(tmp_path))
  with pytest.raises(UsageError, match="no files to predict"):
    predict.predict_files(trained[0].export_dir, [])
  with pytest.raises(UsageError, match=r"do not fit the model.*\[N, 28, 28, 1\]"):
    predict_model.predict(model, np.zeros([2, 30, 30], np.float32))
  png = write_png(tmp_path / "a.png", np.zeros([28, 28, 1], np.uint8))
  np.save(tmp_path / "y.npy", np.arange(3))
  with pytest.raises(UsageError, match="holds 3 labels but the files hold 1 images"):
    predict.predict_files(trained[0].export_dir, [png], labels=str(tmp_path / "y.npy"))
  with pytest.raises(UsageError, match="not integer labels"):
    predict.predict_files(trained[0].export_dir, [png], labels=png)


def start(*argv):
  """Starts `python -m mnist_estimator.predict ARGV` (so that several run at once)."""
  return helpers.start_module("mnist_estimator.predict", *argv, merge_stderr=False)


def finish(proc):
  out, err = proc.communicate(timeout=300)
  return proc.returncode, out, err


def test_command_line(trained, sample, tmp_path):
  export_dir = trained[0].export_dir
  png = write_png(tmp_path / "d.png", 255 - sample.x_test[0])
  npz = tmp_path / "x.npz"
  np.savez(npz, x=sample.x_test[1:21])
  labels = tmp_path / "y.npy"
  np.save(labels, sample.y_test[:21])
  # The command in a process of its own; --json and a missing file as it runs them
  # (predict_files) in this one, without another TensorFlow import.
  text = start(f"--saved_model={export_dir}", png, str(npz), f"--labels={labels}",
               "--max_lines=3")
  code, out, err = helpers.run_predict(export_dir, png, str(npz), labels=str(labels),
                                       as_json=True)
  assert code == 0, err
  rows = [json.loads(line) for line in out.splitlines()]
  assert len(rows) == 22 and rows[0]["file"] == png and rows[0]["label"] == sample.y_test[0]
  assert rows[-1]["count"] == 21 and 0 <= rows[-1]["accuracy"] <= 1
  assert all(len(row["probabilities"]) == 10 for row in rows[:-1])

  code, _, err = helpers.run_predict(export_dir, str(tmp_path / "gone.png"))
  assert code == 2 and "Traceback" not in err, err
  helpers.one_error_line(code, err, "gone.png")

  code, out, err = finish(text)
  assert code == 0, err
  lines = out.splitlines()
  assert lines[0].startswith(f"{png}  class ") and f"{npz}[0]  class " in lines[1]
  assert lines[3] == "... 18 more" and lines[4].startswith("accuracy ")
  assert lines[4].endswith(" on 21 images")


# Imports only TensorFlow and numpy: the export needs nothing of this project to be used.
_PLAIN_TF = """
import sys, json, numpy as np, tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(images=tf.constant(np.load(sys.argv[2])))
assert not any(name.startswith("mnist_estimator") for name in sys.modules)
print(json.dumps(out["classes"].numpy().tolist()))
"""


def test_plain_tensorflow_loads_the_export(trained, model, sample, tmp_path):
  images = sample.x_test[:64, ..., 0] / np.float32(255)  # [N, 28, 28] as the signature takes
  np.save(tmp_path / "x.npy", images)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("PYTHONPATH", None)
  proc = subprocess.run([sys.executable, "-c", _PLAIN_TF, trained[1]["export"],
                         str(tmp_path / "x.npy")], cwd=str(tmp_path), env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  expected = predict_model.predict(model, images)[0].tolist()
  assert json.loads(proc.stdout.splitlines()[-1]) == expected


def test_a_bright_image_with_the_training_border_is_not_inverted(model, tmp_path):
  """Mean brightness is no polarity: a light object on MNIST's dark border stays as it is."""
  pixels = np.zeros([28, 28, 1], np.uint8)
  pixels[2:26, 2:26] = 220  # mean 0.65, border black: what a Fashion-MNIST coat looks like
  path = write_png(tmp_path / "coat.png", pixels)
  images = image_files.load_images([path], SHAPE, border_mean=model.border_mean)
  np.testing.assert_allclose(images[0], pixels / 255.0, atol=1e-6)
  notes = image_files.Notes()
  paper = write_png(tmp_path / "paper.png", 255 - pixels)  # dark on a white border: inverted
  image_files.load_files([paper], SHAPE, border_mean=model.border_mean, notes=notes)
  assert notes.lines() == ["note: inverted 1 image: a light background where the training "
                           "images' is dark (--invert=no keeps them)"]
