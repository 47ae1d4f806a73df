"""--export_format: every format written beside the SavedModel, checked, and run by predict."""

import contextlib
import io
import os
import shutil
import sys

import helpers
import numpy as np
import pytest

from mnist_estimator import runtime
from mnist_estimator.common.errors import UsageError
from mnist_estimator.portable import convert
from mnist_estimator.portable import exports
from mnist_estimator.portable import verify
from mnist_estimator.predict import main as predict_main
from mnist_estimator.run import runner

FORMATS = ("saved_model", "tflite", "tflite_int8", "onnx")


@pytest.fixture(scope="module")
def exported(sample, tmp_path_factory):
  """An mlp trained 60 steps on the sample, exported in every format: (spec, result, stdout)."""
  root = tmp_path_factory.mktemp("portable")
  spec = helpers.small_spec("mlp", root / "m", steps=60, batch_size=50, report=False,
                            dataset="mnist_sample", export_dir=str(root / "e"),
                            export_format=FORMATS)
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    result = runner.run(spec, sample)
  return spec, result, out.getvalue()


@pytest.fixture(scope="module")
def test_set(sample):
  return verify.serving_inputs(sample.x_test, sample.image_shape), sample.y_test


def test_every_format_is_written_beside_the_version_and_checked(exported):
  _, result, out = exported
  files = result["exports"]
  version = files["saved_model"]
  assert list(files) == list(FORMATS) and result["export"] == version
  assert files["tflite"] == version + ".tflite" and files["onnx"] == version + ".onnx"
  assert files["tflite_int8"] == version + "_int8.tflite"
  table = [line for line in out.splitlines() if line.startswith("| ")]
  assert table[0] == verify.HEADER and [row.split(" | ")[0][2:] for row in table[1:]] == list(
      FORMATS)
  rows = {row.split(" | ")[0][2:]: row.split(" | ") for row in table[1:]}
  assert rows["tflite"][3] == rows["onnx"][3] == "1.0000"  # top-1 agreement
  assert float(rows["onnx"][4]) <= verify.FLOAT_MAX_ABS_DIFF
  assert "checked against the SavedModel on 1000 test images:" in out
  for name, path in files.items():
    assert f"exported {name}: {path} (" in out
  assert "uint8 images (scale 1/255, zero point 0), int32 classes, uint8 probabilities (scale " \
         "1/256, zero point 0))" in out  # what the int8 file takes and returns
  # int8 weights: about a quarter of the float file.
  assert os.path.getsize(files["tflite_int8"]) < 0.3 * os.path.getsize(files["tflite"])


def test_the_files_hold_the_signatures_names_and_the_int8_types(exported):
  files = exported[1]["exports"]
  int8 = runtime.load(files["tflite_int8"])
  (pixels,) = int8.file_inputs
  assert (pixels.name, pixels.dtype, pixels.shape) == ("images", "uint8", [None, 28, 28])
  assert pixels.zero_point == 0 and abs(pixels.scale - 1 / 255) < 1e-6  # the pixels' bytes
  outputs = {t.name: t for t in int8.file_outputs}
  assert outputs["probabilities"].dtype == "uint8" and outputs["probabilities"].scale == 1 / 256
  assert outputs["classes"].dtype == "int32" and outputs["classes"].scale is None
  onnx = pytest.importorskip("onnx")
  model = onnx.load(files["onnx"])
  assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [
      convert.ONNX_OPSET]
  assert [i.name for i in model.graph.input] == ["images"]
  assert sorted(o.name for o in model.graph.output) == ["classes", "probabilities"]
  assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def _tamper_tflite(path, out):
  """A copy whose largest weight buffer has noise added (still a valid flatbuffer)."""
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
  model = flatbuffer_utils.read_model(path)
  buffer = max(model.buffers, key=lambda b: 0 if b.data is None else len(b.data))
  weights = np.frombuffer(bytes(buffer.data), np.float32).copy()
  weights += np.random.default_rng(0).normal(0, 0.05, weights.shape).astype(np.float32)
  buffer.data = np.frombuffer(weights.tobytes(), np.uint8)
  flatbuffer_utils.write_model(model, str(out))
  return str(out)


def _tamper_onnx(path, out):
  """A copy with its largest initializer scaled by 1.01."""
  onnx = pytest.importorskip("onnx")
  from onnx import numpy_helper  # pylint: disable=g-import-not-at-top
  model = onnx.load(path)
  weights = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
  weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights) * 1.01, weights.name))
  onnx.save(model, str(out))
  return str(out)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_a_tampered_export_fails_its_check(exported, test_set, tmp_path, fmt):
  files = exported[1]["exports"]
  tamper = _tamper_tflite if fmt == "tflite" else _tamper_onnx
  path = tamper(files[fmt], tmp_path / f"tampered.{fmt}")
  reference, row = exports.check_files(files["saved_model"], {fmt: path}, *test_set, rounds=0)
  assert row.max_abs_diff > verify.FLOAT_MAX_ABS_DIFF
  with pytest.raises(verify.ExportCheckFailed, match=f"^{fmt} failed its check: "
                     "(top-1 agreement|max abs prob diff)"):
    verify.check(row, reference, quantized=False)


def test_int8_is_held_to_half_an_accuracy_point():
  reference = verify.Row("saved_model", "m", 1, 0.9700, 1.0, 0.0)
  verify.check(verify.Row("tflite_int8", "f", 1, 0.9660, 0.99, 0.03), reference, quantized=True)
  with pytest.raises(verify.ExportCheckFailed, match=r"tflite_int8 failed its check: accuracy "
                     r"0\.9640 against the SavedModel's 0\.9700, 0\.60 points apart"):
    verify.check(verify.Row("tflite_int8", "f", 1, 0.9640, 0.99, 0.03), reference, quantized=True)


def _export_argv(exported, export_dir, *more):
  spec = exported[0]
  return ("--model=mlp", "--dataset=mnist_sample", f"--model_dir={spec.model_dir}",
          "--mode=export", f"--export_dir={export_dir}", "--precision=fp32", *more)


def test_a_failed_check_is_one_error_line_after_the_table(exported, tmp_path, monkeypatch):
  monkeypatch.setattr(verify, "FLOAT_MAX_ABS_DIFF", 0.0)  # nothing float is that exact
  code, out, err = helpers.run_main(*_export_argv(exported, tmp_path, "--export_format=tflite"))
  helpers.one_error_line(code, err, "tflite failed its check: max abs prob diff",
                         "--noverify_export")
  assert "| tflite |" in out and "exported" not in out


def test_noverify_export_and_a_list_without_the_saved_model(exported, tmp_path):
  code, out, err = helpers.run_main(*_export_argv(exported, tmp_path, "--export_format=onnx",
                                                  "--noverify_export"))
  assert code == 0, err
  assert "checked against" not in out and "exported onnx:" in out
  names = os.listdir(tmp_path)
  assert len(names) == 1 and names[0].endswith(".onnx")  # the SavedModel was only the source


def test_bad_export_settings_and_a_missing_converter(exported, tmp_path, monkeypatch):
  code, _, err = helpers.run_main(*_export_argv(exported, tmp_path, "--export_format=tflite,tf"))
  helpers.one_error_line(code, err, "--export_format takes names from: saved_model, tflite")
  code, _, err = helpers.run_main("--model=mlp", "--dataset=mnist_sample", "--steps=1",
                                  f"--model_dir={tmp_path / 'fresh'}", "--export_format=onnx")
  helpers.one_error_line(code, err, "--export_format=onnx needs --export_dir=DIR")
  assert not os.path.exists(tmp_path / "fresh" / "checkpoint")  # refused before training
  monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if it were not installed
  with pytest.raises(UsageError, match=r"tf2onnx, which is not installed: "
                     r"pip install 'mnist_estimator\[portable\]'$"):
    convert.convert(exported[1]["exports"]["saved_model"], "onnx")


def test_predict_answers_from_tflite_and_onnx(exported, sample, tmp_path):
  files = exported[1]["exports"]
  data = tmp_path / "test.npz"
  np.savez(data, x_test=sample.x_test[:100], y_test=sample.y_test[:100])
  got = {}
  for name, path in files.items():
    out = io.StringIO()
    got[name] = predict_main.predict_files(path, [str(data)], labels=str(data), out=out)
    assert f"accuracy {got[name]['accuracy']:.4f} on 100 images" in out.getvalue()
  reference = got["saved_model"]
  for name in ("tflite", "onnx"):
    np.testing.assert_array_equal(got[name]["classes"], reference["classes"])
    np.testing.assert_allclose(got[name]["probabilities"], reference["probabilities"], atol=1e-4)
  assert np.mean(got["tflite_int8"]["classes"] == reference["classes"]) >= 0.95


def test_predict_refuses_a_file_of_another_kind(tmp_path):
  bad = tmp_path / "model.tflite"
  bad.write_bytes(b"not a flatbuffer")
  for path, words in ((str(bad), ("cannot load", "model.tflite", "re-export")),
                      (str(tmp_path / "model.pb"), ("not a model file", ".tflite or .onnx"))):
    if not path.endswith(".tflite"):
      shutil.copy(bad, path)
    code, _, err = helpers.run_predict(path, str(bad))
    helpers.one_error_line(code, err, *words)


def test_every_file_says_what_its_input_expects(exported):
  """The export's data record travels with each file: decoding, polarity, classes."""
  for name, path in exported[1]["exports"].items():
    with runtime.load(path) as model:
      metadata = model.metadata
    assert metadata["decoding"]["height"] == 28 and metadata["image_shape"] == [28, 28, 1], name
    assert metadata["border_mean"] < 0.05, name  # MNIST's dark border: predict inverts paper
    if name != "saved_model":
      assert metadata["input"].startswith("float32 [N, 28, 28, 1] in 0..1"), name
