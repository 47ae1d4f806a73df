"""The REST API against TF Serving's documented JSON and its official request/response protos."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from serve_helpers import call, images
from tensorflow_serving.apis import (
  classification_pb2,
  get_model_metadata_pb2,
  get_model_status_pb2,
  model_pb2,
  predict_pb2,
)

from mnist_estimator.serve import app as app_lib


@pytest.fixture(scope="module")
def reference(tiny_export, small):
  """classes and probabilities of the first 5 test images from plain tf.saved_model.load."""
  loaded = tf.saved_model.load(os.path.join(tiny_export, "1"))
  out = loaded.signatures["serving_default"](images=tf.constant(images(small, 5)))
  return out["classes"].numpy(), out["probabilities"].numpy()


def test_model_status_is_a_get_model_status_response(served):
  url = served.url
  code, body = call(url, "GET", "/v1/models/mnist")
  assert code == 200
  assert body == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                            "status": {"error_code": "OK", "error_message": ""}}]}
  response = json_format.ParseDict(body, get_model_status_pb2.GetModelStatusResponse())
  assert response.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
  assert call(url, "GET", "/v1/models/mnist/versions/1") == (code, body)


def test_metadata_parses_into_the_serving_protos(served):
  code, body = call(served[0], "GET", "/v1/models/mnist/metadata")
  assert code == 200
  spec = json_format.ParseDict(body["model_spec"], model_pb2.ModelSpec())
  assert spec.name == "mnist" and spec.version.value == 1
  signatures = json_format.ParseDict(body["metadata"]["signature_def"],
                                     get_model_metadata_pb2.SignatureDefMap()).signature_def
  assert set(signatures) == {"serving_default", "predict", "examples:serving_default",
                             "examples:predict", "examples:classify",
                             "image_bytes:serving_default", "image_bytes:predict",
                             "image_bytes:classify"}
  assert signatures["image_bytes:predict"].inputs["image_bytes"].dtype == (
      tf.string.as_datatype_enum)
  images_info = signatures["serving_default"].inputs["images"]
  assert images_info.dtype == tf.float32.as_datatype_enum
  assert [d.size for d in images_info.tensor_shape.dim] == [-1, 28, 28]
  assert signatures["examples:classify"].method_name == "tensorflow/serving/classify"
  # Proto field names as TF Serving prints them, e.g. tensor_shape and method_name.
  assert '"tensor_shape"' in json.dumps(body) and '"method_name"' in json.dumps(body)


def test_predict_row_format(served, small, reference):
  code, body = call(served[0], "POST", "/v1/models/mnist:predict",
                    {"instances": images(small, 5).tolist()})
  assert code == 200
  predictions = body["predictions"]
  assert [p["classes"] for p in predictions] == reference[0].tolist()
  np.testing.assert_allclose([p["probabilities"] for p in predictions], reference[1], atol=1e-6)


def test_predict_row_format_with_named_inputs_and_signature(served, small, reference):
  rows = [{"images": image} for image in images(small, 5).tolist()]
  code, body = call(served[0], "POST", "/v1/models/mnist/versions/1:predict",
                    {"signature_name": "predict", "instances": rows})
  assert code == 200 and [p["classes"] for p in body["predictions"]] == reference[0].tolist()


def test_predict_columnar_through_the_predict_request_proto(served, small, reference):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "mnist"
  request.model_spec.signature_name = "serving_default"
  request.inputs["images"].CopyFrom(tf.make_tensor_proto(images(small, 5)))
  # The REST columnar form of the gRPC request: {"inputs": {name: nested list}}.
  rest = {"signature_name": request.model_spec.signature_name,
          "inputs": {k: tf.make_ndarray(v).tolist() for k, v in request.inputs.items()}}
  code, body = call(served[0], "POST", "/v1/models/mnist:predict", rest)
  assert code == 200 and set(body["outputs"]) == {"classes", "probabilities"}
  response = predict_pb2.PredictResponse()
  for key, value in body["outputs"].items():
    response.outputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
  np.testing.assert_array_equal(tf.make_ndarray(response.outputs["classes"]), reference[0])
  np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]), reference[1],
                             atol=1e-6)
  # A bare tensor as "inputs" is the single input.
  code, bare = call(served[0], "POST", "/v1/models/mnist:predict",
                    {"inputs": images(small, 5).tolist()})
  assert code == 200 and bare["outputs"]["classes"] == body["outputs"]["classes"]


def _example_json(example):
  """A tf.Example as the REST classify format's object: feature name -> list of values."""
  features = {}
  for name, feature in example.features.feature.items():
    kind = feature.WhichOneof("kind")
    features[name] = list(getattr(feature, kind).value)
  return features


def test_classify_through_the_classification_request_proto(served, small, reference):
  request = classification_pb2.ClassificationRequest()
  request.model_spec.signature_name = "examples:classify"
  for image in images(small, 5):
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend(image.ravel().tolist())
  rest = {"signature_name": request.model_spec.signature_name,
          "examples": [_example_json(e) for e in request.input.example_list.examples]}
  code, body = call(served[0], "POST", "/v1/models/mnist:classify", rest)
  assert code == 200
  response = classification_pb2.ClassificationResponse()
  for pairs in body["results"]:
    classifications = response.result.classifications.add()
    for label, score in pairs:
      classifications.classes.add(label=label, score=score)
  for i, classifications in enumerate(response.result.classifications):
    assert [c.label for c in classifications.classes] == [str(d) for d in range(10)]
    scores = [c.score for c in classifications.classes]
    assert int(np.argmax(scores)) == reference[0][i]
    np.testing.assert_allclose(scores, reference[1][i], atol=1e-6)


def test_classify_with_context_and_the_default_signature(served, small):
  pixels = images(small, 1)[0].ravel().tolist()
  code, body = call(served[0], "POST", "/v1/models/mnist:classify",
                    {"signature_name": "examples:classify", "context": {"x": pixels},
                     "examples": [{}, {}]})
  assert code == 200 and len(body["results"]) == 2
  # As in TF Serving, the default signature (a predict one) cannot classify.
  code, body = call(served[0], "POST", "/v1/models/mnist:classify", {"examples": [{"x": pixels}]})
  assert code == 400 and "tensorflow/serving/classify" in body["error"]


def test_examples_predict_with_b64_serialized_examples(served, small, reference):
  import base64  # pylint: disable=g-import-not-at-top
  serialized = [tf.train.Example(features=tf.train.Features(feature={"x": tf.train.Feature(
      float_list=tf.train.FloatList(value=image.ravel()))})).SerializeToString()
                for image in images(small, 5)]
  code, body = call(served[0], "POST", "/v1/models/mnist:predict", {
      "signature_name": "examples:predict",
      "instances": [{"b64": base64.b64encode(s).decode()} for s in serialized]})
  assert code == 200 and [p["classes"] for p in body["predictions"]] == reference[0].tolist()


def test_the_page_and_its_files_are_served_and_fetch_nothing_outside(served):
  code, html = call(served[0], "GET", "/")
  assert code == 200 and b'content="mnist"' in html and b"<canvas" in html
  for name in ("app.js", "style.css"):
    code, data = call(served[0], "GET", f"/static/{name}")
    assert code == 200 and data
  # The page's own files (ort/ is onnxruntime-web, bundled by make install and loaded from
  # /static/ort/: its one URL is a link in an error message).
  for name in os.listdir(app_lib.STATIC_DIR):
    if os.path.isdir(os.path.join(app_lib.STATIC_DIR, name)):
      continue
    with open(os.path.join(app_lib.STATIC_DIR, name), encoding="utf-8") as f:
      assert not re.search(r"https?://|//[a-z0-9-]+\.[a-z]", f.read()), name


def _pngs(data, n):
  """The first n test images as PNG files' bytes."""
  return [tf.io.encode_png(image).numpy() for image in data.x_test[:n]]


def test_png_bytes_as_b64_give_the_pixels_answers(served, small, reference):
  """image_bytes: TF Serving's {"b64": ...} of PNGs, decoded in the graph as training did."""
  import base64  # pylint: disable=g-import-not-at-top
  instances = [{"b64": base64.b64encode(png).decode()} for png in _pngs(small, 5)]
  code, body = call(served[0], "POST", "/v1/models/mnist:predict",
                    {"signature_name": "image_bytes:serving_default", "instances": instances})
  assert code == 200, body
  assert [p["classes"] for p in body["predictions"]] == reference[0].tolist()
  np.testing.assert_allclose([p["probabilities"] for p in body["predictions"]], reference[1],
                             atol=1e-6)
  code, body = call(served[0], "POST", "/v1/models/mnist:predict",
                    {"signature_name": "image_bytes:serving_default",
                     "instances": [{"b64": base64.b64encode(b"not a picture").decode()}]})
  assert code == 400 and "error" in body, body
