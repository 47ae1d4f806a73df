"""serve --model_file: a .tflite or .onnx file behind TF Serving's REST API, metadata its own."""

import shutil

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from serve_helpers import call, images
from tensorflow_serving.apis import get_model_metadata_pb2

from mnist_estimator import runtime
from mnist_estimator.runtime import files as runtime_files
from mnist_estimator.common.errors import UsageError
from mnist_estimator.portable import convert
from mnist_estimator.portable import verify
from mnist_estimator.serve import batching, server


@pytest.fixture(scope="module")
def files(tiny_export, small, tmp_path_factory):
  """tiny_export's version as <version>.tflite, _int8.tflite and .onnx (in a copy of its own)."""
  version = str(tmp_path_factory.mktemp("portable_serve") / "1796000000")
  shutil.copytree(f"{tiny_export}/1", version)
  sample = verify.serving_inputs(small.x_train[:100], small.image_shape)
  return {fmt: convert.convert(version, fmt, sample) for fmt in ("tflite", "tflite_int8", "onnx")
          } | {"saved_model": version}


@pytest.fixture(scope="module")
def reference(files, small):
  loaded = runtime.load(files["saved_model"])
  out = loaded.signatures["serving_default"].run({"images": images(small, 5)})
  loaded.close()
  return out


@pytest.mark.parametrize("fmt", ["tflite", "tflite_int8", "onnx"])
def test_a_model_file_is_served_like_a_saved_model(files, small, reference, fmt):
  app, manager, batcher = server.build(files[fmt], batch_options=batching.BatchOptions())
  with server.BackgroundServer(app) as background:
    url = background.url
    code, body = call(url, "GET", "/v1/models/mnist")
    assert code == 200 and body["model_version_status"][0]["version"] == "1796000000"
    code, body = call(url, "POST", "/v1/models/mnist:predict",
                      {"instances": images(small, 5).tolist()})
    assert code == 200, body
    classes = [p["classes"] for p in body["predictions"]]
    probabilities = np.array([p["probabilities"] for p in body["predictions"]])
    if fmt == "tflite_int8":
      assert np.abs(probabilities - reference["probabilities"]).max() < 0.05
    else:
      assert classes == reference["classes"].tolist()
      np.testing.assert_allclose(probabilities, reference["probabilities"], atol=1e-4)
    code, body = call(url, "POST", "/v1/models/mnist:predict", {"instances": [[[0.0] * 27] * 28]})
    assert code == 400 and "the signature takes [-1, 28, 28]" in body["error"]
    code, body = call(url, "POST", "/v1/models/mnist:predict",
                      {"signature_name": "predict", "instances": [[[0.0] * 28] * 28]})
    assert code == 400 and '"predict"' in body["error"] and "not found" in body["error"]
    _check_metadata(url, fmt)
    code, body = call(url, "GET", "/model.onnx")
    if fmt == "onnx":
      assert code == 200 and body == open(files["onnx"], "rb").read()
    else:
      assert code == 404 and "--export_format=saved_model,onnx" in body["error"]
  manager.stop()
  batcher.close()


def _check_metadata(url, fmt):
  """TF Serving's signature_def (what a request sends) and model_file (what the file holds)."""
  code, body = call(url, "GET", "/v1/models/mnist/metadata")
  assert code == 200
  signatures = json_format.ParseDict(body["metadata"]["signature_def"],
                                     get_model_metadata_pb2.SignatureDefMap()).signature_def
  assert list(signatures) == ["serving_default"]
  info = signatures["serving_default"].inputs["images"]
  assert info.dtype == tf.float32.as_datatype_enum
  assert [d.size for d in info.tensor_shape.dim] == [-1, 28, 28]
  described = body["metadata"]["model_file"]
  assert described["format"] == fmt and described["bytes"] > 0
  pixels = described["inputs"][0]
  assert pixels["name"] == "images" and pixels["shape"] == [None, 28, 28]
  assert pixels["dtype"] == ("uint8" if fmt == "tflite_int8" else "float32")
  assert (pixels["scale"] is not None) == (fmt == "tflite_int8")


@pytest.mark.parametrize("fmt", ["tflite_int8", "onnx"])
def test_grpc_predict_and_metadata_from_a_model_file(files, small, reference, fmt):
  pytest.importorskip("mnist_estimator.serve.grpc_service", reason="no gRPC API in serve/")
  import grpc  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  app, manager, batcher = server.build(files[fmt], batch_options=batching.BatchOptions())
  with server.BackgroundServer(app, manager, batcher) as background:
    channel = grpc.insecure_channel(background.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images(small, 5)))
    response = stub.Predict(request, timeout=30)
    assert response.model_spec.version.value == 1796000000
    probabilities = tf.make_ndarray(response.outputs["probabilities"])
    atol = 0.05 if fmt == "tflite_int8" else 1e-4
    np.testing.assert_allclose(probabilities, reference["probabilities"], atol=atol)
    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = "mnist"
    metadata.metadata_field.append("signature_def")
    signatures = get_model_metadata_pb2.SignatureDefMap()
    stub.GetModelMetadata(metadata, timeout=30).metadata["signature_def"].Unpack(signatures)
    info = signatures.signature_def["serving_default"].inputs["images"]
    assert info.dtype == tf.float32.as_datatype_enum
    channel.close()
  manager.stop()
  batcher.close()


def test_the_saved_model_page_offers_the_onnx_beside_it(files):
  app, manager, batcher = server.build(files["saved_model"], poll_seconds=0)
  with server.BackgroundServer(app) as background:
    code, body = call(background.url, "GET", "/model.onnx")
    assert code == 200 and len(body) == len(open(files["onnx"], "rb").read())
  manager.stop()
  batcher.close()


def test_model_file_errors(files, tmp_path):
  with pytest.raises(UsageError, match="alone, without --model_dir"):
    server.base_path(model_dir=str(tmp_path), model_file=files["onnx"])
  with pytest.raises(UsageError, match="is not a .tflite or .onnx file"):
    server.base_path(model_file=str(tmp_path / "gone.onnx"))
  assert server.base_path(model_file=files["onnx"]) == files["onnx"]


@pytest.mark.parametrize("fmt", ["tflite", "tflite_int8", "onnx"])
def test_a_large_batch_runs_in_chunks_with_one_batchs_answers(files, fmt):
  model = runtime.load(files[fmt])
  signature = model.signatures["serving_default"]
  x = np.random.default_rng(0).random([runtime_files.CHUNK_ROWS * 2 + 7, 28, 28], np.float32)
  sizes = []
  run = signature._run  # pylint: disable=protected-access

  def counted(batch):
    sizes.append(len(batch))
    return run(batch)
  signature._run = counted  # pylint: disable=protected-access
  chunked = signature.run({"images": x})
  assert sizes == [runtime_files.CHUNK_ROWS, runtime_files.CHUNK_ROWS, 7]
  signature.chunk_rows = len(x)
  whole = signature.run({"images": x})
  assert sizes[3:] == [len(x)]
  for key in ("classes", "probabilities"):
    np.testing.assert_array_equal(chunked[key], whole[key])
  model.close()
