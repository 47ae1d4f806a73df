"""REST answers case by case as TF Serving's own sources give them (each test names its source).

Sources, tensorflow/serving: model_servers/http_rest_api_handler_test.cc (the handler),
http_rest_api_util.cc (its path regexes), util/json_tensor_test.cc and json_tensor.cc (JSON <->
tensors and tf.Examples), util/net_http/server/internal/evhttp_request.cc (gzip bodies),
model_servers/get_model_status_impl.cc, g3doc/api_rest.md.
"""

import gzip
import json
import re

import numpy as np
import pytest
import tensorflow as tf
from serve_helpers import call, images

from mnist_estimator.serve import rest, status, tf_examples

IMAGE = [[0.0] * 28] * 28
LABEL_ERROR = "Unrecognized servable version label: stable"

# http_rest_api_handler_test.cc, UnsupportedApiCalls (model "foo" there, "mnist" here where the
# name must exist to reach the check): all INVALID_ARGUMENT, HTTP 400.
MALFORMED = [
    ("GET", "/v1/foo", "Malformed request"),
    ("POST", "/v1/foo", "Malformed request"),
    ("GET", "/v1/models", "Missing model name"),
    ("GET", "/v1/models/debug/model_name", "Malformed request"),
    ("POST", "/v1/models", "Malformed request"),
    ("GET", "/v1/models/mnist:predict", "Malformed request"),
    ("GET", "/v1/models/mnist:classify", "Malformed request"),
    ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
    ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
    ("POST", f"/v1/models/foo/versions/{(1 << 64) - 1}:regress", "Failed to convert version"),
    ("POST", "/v1/models/mnist/metadata", "Malformed request"),
    ("POST", "/v1/models/mnist", "Malformed request"),
    ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/mnist:explain", "Malformed request"),  # verbs: classify|regress|predict
    ("PUT", "/v1/models/mnist:predict", "Malformed request"),
]


@pytest.mark.parametrize("method,path,message", MALFORMED)
def test_malformed_requests_are_400_as_in_the_handler_test(served, method, path, message):
  code, body = call(served.url, method, path, {"instances": [IMAGE]})
  assert (code, message in body["error"]) == (400, True), body


@pytest.mark.parametrize("path,body", [
    ("/v1/models/mnist/labels/stable:predict", {"instances": [IMAGE]}),
    ("/v1/models/mnist/labels/stable:classify", {"examples": [{"x": 1.0}]}),
])
def test_an_unknown_version_label_is_400(served, path, body):
  """http_rest_api_handler_test.cc, PredictRequestErrors: "Nonexistent version label"."""
  assert call(served.url, "POST", path, body) == (400, {"error": LABEL_ERROR})
  # ServerCore::GetModelVersionForLabel is the same for metadata; GetModelStatus ignores labels.
  assert call(served.url, "GET", "/v1/models/mnist/labels/stable/metadata") == (
      400, {"error": LABEL_ERROR})
  assert call(served.url, "GET", "/v1/models/mnist/labels/stable")[0] == 200


def test_paths_are_case_insensitive_and_names_url_decoded(served):
  """http_rest_api_util.cc: the regexes are (?i); the model name is curl-unescaped."""
  assert call(served.url, "GET", "/V1/Models/mnist")[0] == 200
  assert call(served.url, "GET", "/v1/models/mn%69st/metadata")[0] == 200
  code, body = call(served.url, "POST", "/v1/models/mnist:PREDICT", {"instances": [IMAGE]})
  assert (code, "Malformed request" in body["error"]) == (400, True)  # the verb compares exactly
  assert call(served.url, "GET", "/v1/models/mnist/versions/7") == (
      404, {"error": "Could not find version 7 of model mnist"})  # get_model_status_impl.cc


def test_json_errors_as_in_the_handler_test(served):
  """http_rest_api_handler_test.cc, PredictRequestErrors: empty document, signature_name type."""
  path = "/v1/models/mnist:predict"
  assert call(served.url, "POST", path, b"") == (
      400, {"error": "JSON Parse error: The document is empty"})
  assert call(served.url, "POST", path, {"signature_name": 100}) == (
      400, {"error": "'signature_name' key must be a string value."})


def test_float_text_as_write_decimal():
  """json_tensor_test.cc, FromJsonSingleFloatTensorSixDigitPrecision and ...NonFinite."""
  values = np.float32([9000000, 999999, 0.5, .0003, .00003, 555557.5, np.nan, np.inf, 3, -np.inf])
  assert rest.float_texts(values) == ["9e+06", "999999.0", "0.5", "0.0003", "3e-05", "555557.5",
                                      "NaN", "Infinity", "3.0", "-Infinity"]
  # 9 digits where 6 do not give the same float32 back (json_tensor.cc, WriteDecimal).
  assert rest.float_texts(np.float32([6.864488e-07, 0.1234567])) == ["6.864488e-07",
                                                                      "0.123456702"]
  assert rest.float_texts(np.float64([0.1234567])) == ["0.1234567"]
  # ClassifyRegressnResultTest: scores and regressions are written the same way.
  assert rest.dumps(rest.regress_response(np.float32([0.2, 0.9, 1.0]))) == (
      b'{"results":[0.2,0.9,1.0]}')
  assert rest.dumps(rest.classify_response(np.float32([[0.2, 0.7]]),
                                           np.array([[b"car", b"bike"]], dtype=object))) == (
      b'{"results":[[["car",0.2],["bike",0.7]]]}')


def test_predict_writes_float32_as_tf_serving(served, small):
  """json_tensor.cc, WriteDecimal: the raw text of each float32 output."""
  code, text = call(served.url, "POST", "/v1/models/mnist:predict",
                    {"instances": images(small, 3).tolist()}, raw=True)
  body = json.loads(text)
  tokens = re.findall(rb'"probabilities":\[([^\]]*)\]', text)
  values = np.float32([p["probabilities"] for p in body["predictions"]])
  assert code == 200 and [t.split(b",") for t in tokens] == [
      [s.encode() for s in rest.float_texts(row)] for row in values]


def test_a_gzip_body_is_unpacked(served):
  """evhttp_request.cc: a body with Content-Encoding: gzip is uncompressed before parsing."""
  body = gzip.compress(json.dumps({"instances": [IMAGE]}).encode())
  code, reply = call(served.url, "POST", "/v1/models/mnist:predict", body,
                     {"Content-Encoding": "gzip"})
  assert code == 200 and len(reply["predictions"]) == 1
  code, reply = call(served.url, "POST", "/v1/models/mnist:predict", b"not gzip",
                     {"Content-Encoding": "gzip"})
  assert code == 400 and "gzip" in reply["error"]


def test_a_gzip_bomb_is_cut_off(tiny_export):
  from mnist_estimator.serve import app as app_lib  # pylint: disable=g-import-not-at-top
  with pytest.raises(status.ApiError) as error:
    app_lib._gunzip(gzip.compress(bytes(10 << 20)), 1 << 20, "too large")  # pylint: disable=protected-access
  assert error.value.status == status.TOO_LARGE


def test_columnar_inputs_ignore_keys_the_signature_does_not_take(served):
  """json_tensor.cc, FillTensorMapFromInputsMap looks up only the signature's inputs."""
  code, body = call(served.url, "POST", "/v1/models/mnist:predict",
                    {"inputs": {"images": [IMAGE], "extra": [1, 2, 3]}})
  assert code == 200 and set(body["outputs"]) == {"classes", "probabilities"}
  assert call(served.url, "POST", "/v1/models/mnist:predict", {"inputs": {"extra": [1]}}) == (
      400, {"error": "Missing named input: images in 'inputs' object."})
  # Row format stays strict (FillTensorMapFromInstancesList: keys must be equal).
  code, body = call(served.url, "POST", "/v1/models/mnist:predict",
                    {"instances": [{"images": IMAGE, "extra": 1}]})
  assert code == 400 and "keys must be equal to: images" in body["error"]


def _features(request):
  serialized = tf_examples.classify_examples(request)
  return [tf.train.Example.FromString(s).features.feature for s in serialized]


def test_classify_features_typed_as_json_tensor_test():
  """json_tensor_test.cc, ClassifyRegressRequestTest: RequestNoContext, ...WithContext, Errors."""
  first, second = _features({"examples": [
      {"names": ["foo", "bar"], "ratings": [8.0, 9.0], "age": 20},
      {"names": ["baz", {"b64": "aGVsbG8="}], "ratings": 6.0, "intboolmix": [1, True, False]}]})
  assert first["names"].bytes_list.value == [b"foo", b"bar"]
  assert first["ratings"].float_list.value == [8.0, 9.0]
  assert first["age"].int64_list.value == [20]  # a JSON whole number is int64
  assert second["names"].bytes_list.value == [b"baz", b"hello"]
  assert second["intboolmix"].int64_list.value == [1, 1, 0]
  # The context goes into every example (an ExampleListWithContext).
  (merged,) = _features({"context": {"query": "pizza"}, "examples": [{"age": 3}]})
  assert merged["query"].bytes_list.value == [b"pizza"] and merged["age"].int64_list.value == [3]
  for feature, message in [([10, None], "names has element with unexpected JSON type: Null"),
                           ([10, 10.0], "feature: names expecting type: int64"),
                           ([10, {"test": 10}], "unexpected JSON type: Object"),
                           ([[10], 20], "unexpected JSON type: Array"),
                           ([20, 18446744073709551603], "Only int64_t is supported")]:
    with pytest.raises(status.ApiError, match=re.escape(message)):
      tf_examples.classify_examples({"examples": [{"names": feature}]})
  with pytest.raises(status.ApiError, match="Example must be JSON object"):
    tf_examples.classify_examples({"examples": [[1]]})


def test_integer_pixels_reach_the_model_as_int64_and_fail_there(served):
  """As TF Serving: the model's float feature x refuses an int64 feature (400)."""
  code, body = call(served.url, "POST", "/v1/models/mnist:classify", {
      "signature_name": "examples:classify", "examples": [{"x": [0] * 784}]})
  assert code == 400 and "int64" in body["error"] and "float" in body["error"]
  code, body = call(served.url, "POST", "/v1/models/mnist:classify", {
      "signature_name": "examples:classify", "examples": [{"x": [0] + [0.5] * 783}]})
  assert code == 400 and "expecting type: int64" in body["error"]


def test_nan_stays_refused_on_purpose(served):
  """The one kept difference (README): TF Serving runs the model on NaN pixels; we answer 400."""
  image = [[float("nan")] * 28] * 28
  code, body = call(served.url, "POST", "/v1/models/mnist:predict",
                    json.dumps({"instances": [image]}).encode())
  assert code == 400 and "NaN or Infinity" in body["error"]
