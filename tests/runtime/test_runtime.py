"""One runtime for a loaded model: a SavedModel, a .tflite and an .onnx seen alike; the chunks."""

import concurrent.futures
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from mnist_estimator import runtime
from mnist_estimator.common import saved_model as names
from mnist_estimator.common.errors import UsageError
from mnist_estimator.portable import convert
from mnist_estimator.runtime import chunks

RNG = np.random.default_rng(7)
WEIGHTS = RNG.normal(size=[16, 3]).astype(np.float32)
CLASSES = ["ant", "bee", "cat"]
RECORD = {"image_shape": [4, 4, 1], "border_mean": 0.25}


def _reference(images):
  logits = images.reshape(-1, 16) @ WEIGHTS
  e = np.exp(logits - logits.max(1, keepdims=True))
  return logits.argmax(1), e / e.sum(1, keepdims=True)


def _write_saved_model(path, outputs=("classes", "probabilities")):
  """A hand-built v1 SavedModel: images [N, 4, 4] -> a fixed linear map's classes, softmax."""
  graph = tf.Graph()
  with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
    images = tf.compat.v1.placeholder(tf.float32, [None, 4, 4], name="images")
    logits = tf.matmul(tf.reshape(images, [-1, 16]), tf.constant(WEIGHTS))
    tensors = {"classes": tf.argmax(logits, 1, output_type=tf.int32),
               "probabilities": tf.nn.softmax(logits), "scores": logits}
    info = tf.compat.v1.saved_model.utils.build_tensor_info
    signature = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        {"images": info(images)}, {k: info(tensors[k]) for k in outputs},
        tf.compat.v1.saved_model.signature_constants.PREDICT_METHOD_NAME)
    builder = tf.compat.v1.saved_model.Builder(path)
    builder.add_meta_graph_and_variables(session, [tf.saved_model.SERVING],
                                         signature_def_map={names.SERVING_DEFAULT: signature})
    builder.save()
  extra = os.path.join(path, "assets.extra")
  os.makedirs(extra)
  with open(os.path.join(extra, names.CLASS_NAMES_FILE), "w", encoding="utf-8") as f:
    f.write("\n".join(CLASSES) + "\n")
  with open(os.path.join(extra, names.METADATA_FILE), "w", encoding="utf-8") as f:
    json.dump(RECORD, f)
  return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
  """{format: path}: one SavedModel version and its .tflite and .onnx."""
  version = _write_saved_model(str(tmp_path_factory.mktemp("runtime") / "1"))
  return {"saved_model": version, "tflite": convert.convert(version, "tflite"),
          "onnx": convert.convert(version, "onnx")}


@pytest.mark.parametrize("fmt", ["saved_model", "tflite", "onnx"])
def test_every_format_is_the_same_interface(models, fmt):
  images = RNG.random([9, 4, 4], np.float32)
  want_classes, want_probs = _reference(images)
  with runtime.load(models[fmt]) as model:
    assert model.format.name == fmt and model.path == models[fmt]
    assert model.class_names == CLASSES and model.metadata["border_mean"] == 0.25
    signature = model.signatures[names.SERVING_DEFAULT]
    assert signature.inputs["images"].shape == [None, 4, 4]
    assert signature.inputs["images"].dtype == tf.float32
    assert {"classes", "probabilities"} <= set(signature.outputs)
    out = signature.run({"images": images})
    np.testing.assert_array_equal(out["classes"], want_classes)
    np.testing.assert_allclose(out["probabilities"], want_probs, atol=1e-5)
    definition = model.signature_defs()[names.SERVING_DEFAULT]
    assert definition.inputs["images"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in definition.inputs["images"].tensor_shape.dim] == [-1, 4, 4]
    classifier = runtime.Classifier(model)
    assert (classifier.input_key, classifier.input_shape, classifier.n_classes) == (
        "images", [None, 4, 4], 3)
    np.testing.assert_array_equal(classifier.run(images)["classes"], want_classes)
    # Only a file's runtime holds to the declared shape; a Session takes what its graph runs.
    assert signature.inputs["images"].strict_shape == (fmt != "saved_model")
    described = model.describe()
    assert described["format"] == fmt and described["bytes"] == runtime.file_size(models[fmt])


def test_a_session_signature_is_prepared_once_on_first_use_even_from_many_threads(models):
  """Its Session callable (a grappler pass) is made at the first run, not at load; warm_up
  (the server's) prepares it; concurrent first calls share one."""
  images = RNG.random([3, 4, 4], np.float32)
  with runtime.load(models["saved_model"]) as model:
    signature = model.signatures[names.SERVING_DEFAULT]
    assert signature._call is None  # pylint: disable=protected-access
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
      outs = list(pool.map(lambda _: signature.run({"images": images}), range(8)))
    made = signature._call  # pylint: disable=protected-access
    assert made is not None
    for out in outs:
      np.testing.assert_array_equal(out["classes"], _reference(images)[0])
    model.warm_up()
    assert signature._call is made  # pylint: disable=protected-access
  with runtime.load(models["saved_model"]) as model:
    model.warm_up()
    assert model.signatures[names.SERVING_DEFAULT]._call is not None  # pylint: disable=protected-access


def test_an_export_base_loads_its_newest_version(models, tmp_path):
  older = _write_saved_model(str(tmp_path / "base" / "5"), outputs=("scores",))
  newer = _write_saved_model(str(tmp_path / "base" / "12"))
  with runtime.load(str(tmp_path / "base")) as model:
    assert model.path == newer != older


def test_a_saved_model_of_any_signature_loads_but_is_no_classifier(tmp_path):
  path = _write_saved_model(str(tmp_path / "1"), outputs=("scores",))
  with runtime.load(path) as model:  # what the server serves: any signature
    out = model.signatures[names.SERVING_DEFAULT].run({"images": np.ones([2, 4, 4])})
    assert out["scores"].shape == (2, 3)
  with pytest.raises(UsageError, match="no serving_default signature returning classes and "
                     r"probabilities; export it with mnist_estimator \(--export_dir\)"):
    runtime.load_classifier(path)


def test_what_does_not_load_is_named_with_the_fix(tmp_path):
  with pytest.raises(UsageError, match="does not exist; pass a .tflite or .onnx file"):
    runtime.load(str(tmp_path / "gone.onnx"))
  text = tmp_path / "model.txt"
  text.write_text("x")
  with pytest.raises(UsageError, match="is not a model file"):
    runtime.load(str(text))
  broken = tmp_path / "broken.onnx"
  broken.write_bytes(b"not onnx")
  with pytest.raises(UsageError, match=r"cannot load .*broken.onnx .*re-export it"):
    runtime.load(str(broken))
  with pytest.raises(UsageError, match="no SavedModel in"):
    runtime.load(str(tmp_path))


def test_a_file_runs_a_large_batch_in_chunks_with_the_same_answers(models):
  with runtime.load(models["onnx"]) as model:
    signature = model.signatures[names.SERVING_DEFAULT]
    images = RNG.random([signature.chunk_rows * 2 + 3, 4, 4], np.float32)
    chunked = signature.run({"images": images})
    np.testing.assert_array_equal(chunked["classes"], _reference(images)[0])
    assert chunked["probabilities"].shape == (len(images), 3)


def test_chunks_cut_rows_and_join_them_in_order():
  feeds = {"a": np.arange(10), "b": np.arange(10) * 2}
  parts = chunks.pieces(feeds, 10, 4)
  assert [rows for rows, _ in parts] == [4, 4, 2]
  assert list(parts[2][1]["b"]) == [16, 18]
  seen = []

  def run(part):
    seen.append(len(part["a"]))
    return {"sum": part["a"] + part["b"]}
  out = chunks.run_in_chunks(run, feeds, 4)
  assert seen == [4, 4, 2] and list(out["sum"]) == list(np.arange(10) * 3)
  # Inputs of different rows (or a size the caller says they do not have) run whole.
  seen.clear()
  chunks.run_in_chunks(run, {"a": np.arange(10), "b": np.arange(10)}, 4, size=11)
  assert seen == [10]
  assert chunks.rows_of({"a": np.float32(1)}) == 1 and not chunks.splittable(
      {"a": np.zeros([3]), "b": np.zeros([2])}, 3)
