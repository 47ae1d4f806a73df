"""The gRPC API with TF Serving's own client stubs, against REST and the SavedModel run directly."""

import asyncio
import os
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from serve_helpers import SAME, call, images
from tensorflow_serving.apis import (
  classification_pb2,
  get_model_metadata_pb2,
  get_model_status_pb2,
  inference_pb2,
  model_management_pb2,
  model_service_pb2_grpc,
  predict_pb2,
  prediction_service_pb2_grpc,
  regression_pb2,
)

from mnist_estimator.serve import grpc_service, status

Code = grpc.StatusCode


@pytest.fixture(scope="module")
def stubs(served):
  """(PredictionServiceStub, ModelServiceStub) over grpc.insecure_channel to the served model."""
  channel = grpc.insecure_channel(served.grpc)
  yield (prediction_service_pb2_grpc.PredictionServiceStub(channel),
         model_service_pb2_grpc.ModelServiceStub(channel))
  channel.close()


@pytest.fixture(scope="module")
def reference(tiny_export, small):
  """serving_default of the first 5 test images from plain tf.saved_model.load."""
  loaded = tf.saved_model.load(os.path.join(tiny_export, "1"))
  out = loaded.signatures["serving_default"](images=tf.constant(images(small, 5)))
  return out["classes"].numpy(), out["probabilities"].numpy()


def _predict_request(x, name="mnist", signature=""):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = name
  request.model_spec.signature_name = signature
  request.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
  return request


def _classify_request(x):
  request = classification_pb2.ClassificationRequest()
  request.model_spec.name = "mnist"
  request.model_spec.signature_name = "examples:classify"
  for image in x:
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend(image.ravel().tolist())
  return request


def _code(call_, *args):
  with pytest.raises(grpc.RpcError) as error:
    call_(*args, timeout=30)
  return error.value.code(), error.value.details()


def test_predict_equals_rest_and_the_saved_model(served, stubs, small, reference):
  x = images(small, 5)
  response = stubs[0].Predict(_predict_request(x), timeout=30)
  assert response.model_spec.name == "mnist" and response.model_spec.version.value == 1
  assert response.model_spec.signature_name == "serving_default"
  classes = tf.make_ndarray(response.outputs["classes"])
  probabilities = tf.make_ndarray(response.outputs["probabilities"])
  np.testing.assert_array_equal(classes, reference[0])
  np.testing.assert_allclose(probabilities, reference[1], **SAME)
  # Typed fields, as TF Serving's AsProtoField writes them (clients read .float_val).
  assert len(response.outputs["probabilities"].float_val) == 50
  code, body = call(served.url, "POST", "/v1/models/mnist:predict", {"instances": x.tolist()})
  assert code == 200
  assert [p["classes"] for p in body["predictions"]] == classes.tolist()
  # REST's 6-or-9-digit text reads back as the same float32 the gRPC answer holds.
  np.testing.assert_array_equal(np.float32([p["probabilities"] for p in body["predictions"]]),
                                probabilities)


def test_predict_output_filter_and_a_named_signature(stubs, small, reference):
  request = _predict_request(images(small, 2), signature="predict")
  request.output_filter.append("classes")
  response = stubs[0].Predict(request, timeout=30)
  assert list(response.outputs) == ["classes"]
  assert tf.make_ndarray(response.outputs["classes"]).tolist() == reference[0][:2].tolist()
  request.output_filter.append("classes")
  assert _code(stubs[0].Predict, request)[0] == Code.INVALID_ARGUMENT


def test_classify_equals_rest_and_the_saved_model(served, stubs, small, reference):
  x = images(small, 5)
  response = stubs[0].Classify(_classify_request(x), timeout=30)
  assert response.model_spec.signature_name == "examples:classify"
  rows = [[(c.label, c.score) for c in item.classes]
          for item in response.result.classifications]
  assert [[label for label, _ in row] for row in rows] == [[str(d) for d in range(10)]] * 5
  scores = np.float32([[score for _, score in row] for row in rows])
  np.testing.assert_allclose(scores, reference[1], **SAME)
  code, body = call(served.url, "POST", "/v1/models/mnist:classify", {
      "signature_name": "examples:classify",
      "examples": [{"x": image.ravel().tolist()} for image in x]})
  assert code == 200
  assert [[(label, np.float32(score)) for label, score in row] for row in body["results"]] == rows


def test_multi_inference_and_regress(stubs, small):
  request = inference_pb2.MultiInferenceRequest()
  task = request.tasks.add()
  task.model_spec.name = "mnist"
  task.model_spec.signature_name = "examples:classify"
  task.method_name = "tensorflow/serving/classify"
  request.input.CopyFrom(_classify_request(images(small, 2)).input)
  response = stubs[0].MultiInference(request, timeout=30)
  single = stubs[0].Classify(_classify_request(images(small, 2)), timeout=30)
  assert response.results[0].classification_result == single.result
  request.tasks.append(request.tasks[0])
  assert _code(stubs[0].MultiInference, request) == (
      Code.INVALID_ARGUMENT, "Duplicate evaluation of signature: examples:classify")
  # The export has no regress signature: TF Serving's regressor.cc message.
  regress = regression_pb2.RegressionRequest(input=request.input)
  regress.model_spec.name, regress.model_spec.signature_name = "mnist", "examples:classify"
  code, details = _code(stubs[0].Regress, regress)
  assert code == Code.INVALID_ARGUMENT and "Expected regression signature method_name" in details


def test_metadata_and_status_match_rest(served, stubs):
  request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
  request.model_spec.name = "mnist"
  response = stubs[0].GetModelMetadata(request, timeout=30)
  signatures = get_model_metadata_pb2.SignatureDefMap()
  assert response.metadata["signature_def"].Unpack(signatures)
  _, body = call(served.url, "GET", "/v1/models/mnist/metadata")
  assert json_format.ParseDict(body["metadata"]["signature_def"],
                               get_model_metadata_pb2.SignatureDefMap()) == signatures
  assert response.model_spec.name == "mnist" and response.model_spec.version.value == 1
  images_info = signatures.signature_def["serving_default"].inputs["images"]
  assert images_info.dtype == tf.float32.as_datatype_enum
  status_request = get_model_status_pb2.GetModelStatusRequest()
  status_request.model_spec.name = "mnist"
  answer = stubs[1].GetModelStatus(status_request, timeout=30)
  _, body = call(served.url, "GET", "/v1/models/mnist")
  assert answer == json_format.ParseDict(body, get_model_status_pb2.GetModelStatusResponse())
  assert answer.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def _spec_errors(stubs, small):
  """(rpc, request, code, message part) of requests TF Serving refuses."""
  x = images(small, 1)
  wrong_version = _predict_request(x)
  wrong_version.model_spec.version.value = 7
  labelled = _predict_request(x)
  labelled.model_spec.version_label = "stable"
  status_request = get_model_status_pb2.GetModelStatusRequest()
  status_request.model_spec.name = "nope"
  metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
  metadata.model_spec.name = "nope"
  empty = classification_pb2.ClassificationRequest()
  empty.model_spec.name, empty.model_spec.signature_name = "mnist", "examples:classify"
  to_predict_signature = _classify_request(x)
  to_predict_signature.model_spec.signature_name = ""
  return [
      (stubs[0].Predict, _predict_request(x, "nope"), Code.NOT_FOUND,
       "Servable not found for request: Latest(nope)"),
      (stubs[0].Predict, wrong_version, Code.NOT_FOUND, "Specific(mnist, 7)"),
      (stubs[0].Predict, labelled, Code.INVALID_ARGUMENT, "Unrecognized servable version label"),
      (stubs[0].Predict, _predict_request(x, ""), Code.INVALID_ARGUMENT, "no name specified"),
      (stubs[0].Predict, predict_pb2.PredictRequest(), Code.INVALID_ARGUMENT, "Missing ModelSpec"),
      # Session::Run's own answers (predict_util.cc checks no shape; function.cc SetArgs).
      (stubs[0].Predict, _predict_request(x[:, :27]), Code.INVALID_ARGUMENT,
       "Input to reshape is a tensor with 756 values"),
      (stubs[0].Predict, _predict_request(x.astype(np.float64)), Code.INVALID_ARGUMENT,
       "Expects arg[0] to be float but double is provided"),
      (stubs[0].Predict, _predict_request(x + np.nan), Code.INVALID_ARGUMENT, "NaN or Infinity"),
      (stubs[0].Predict, _predict_request(x, signature="nope"), Code.FAILED_PRECONDITION,
       'Serving signature key "nope" not found.'),
      (stubs[0].Predict, predict_pb2.PredictRequest(model_spec=_predict_request(x).model_spec),
       Code.INVALID_ARGUMENT, "input size does not match signature: 0!=1"),
      (stubs[0].Classify, empty, Code.INVALID_ARGUMENT, "Input is empty."),
      (stubs[0].Classify, to_predict_signature, Code.INVALID_ARGUMENT,
       "Expected classification signature method_name to be tensorflow/serving/classify"),
      (stubs[0].GetModelMetadata, metadata, Code.NOT_FOUND, "Latest(nope)"),
      (stubs[1].GetModelStatus, status_request, Code.NOT_FOUND,
       "Could not find any versions of model nope"),
  ]


def test_a_reload_without_a_model_config_list_is_refused_in_its_status(stubs):
  """model_service_impl.cc: the gRPC call is OK, the ReloadConfigResponse's status says why."""
  answer = stubs[1].HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(),
                                              timeout=30)
  assert answer.status.error_code == Code.INVALID_ARGUMENT.value[0]
  assert answer.status.error_message == (
      "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList "
      "is currently supported")


def test_refused_requests_get_tf_servings_codes(stubs, small):
  for rpc, request, code, message in _spec_errors(stubs, small):
    got, details = _code(rpc, request)
    assert (got, message in details) == (code, True), (rpc, details)


def test_a_100_mb_message_is_refused_before_it_is_parsed(stubs, small):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "mnist"
  big = request.inputs["images"]
  big.dtype = tf.float32.as_datatype_enum
  for size in (-1, 28, 28):
    big.tensor_shape.dim.add(size=size)
  big.tensor_content = bytes(100 << 20)
  start = time.monotonic()
  code, details = _code(stubs[0].Predict, request)
  assert code == Code.RESOURCE_EXHAUSTED and "larger than max" in details
  assert time.monotonic() - start < 30
  assert stubs[0].Predict(_predict_request(images(small, 1)), timeout=30).outputs


class _FakeContext:
  def __init__(self, remaining):
    self.remaining = remaining

  def time_remaining(self):
    return self.remaining

  async def abort(self, code, details):
    raise RuntimeError(code, details)


def test_deadlines_and_grpc_max_threads_are_honoured():
  """An RPC past its deadline is DEADLINE_EXCEEDED; at most max_threads run, the rest wait."""
  running, most = [0], [0]

  class Slow(grpc_service._Service):  # pylint: disable=protected-access
    @grpc_service._rpc  # pylint: disable=protected-access
    async def Call(self, request):  # pylint: disable=invalid-name
      running[0] += 1
      most[0] = max(most[0], running[0])
      await asyncio.sleep(request)
      running[0] -= 1
      if request < 0.01:
        raise status.not_found("gone")
      return "done"

  async def go():
    service = Slow(None, None, asyncio.Semaphore(2))
    answers = await asyncio.gather(*[service.Call(0.05, _FakeContext(None)) for _ in range(6)])
    with pytest.raises(RuntimeError) as late:
      await service.Call(1.0, _FakeContext(0.05))
    with pytest.raises(RuntimeError) as missing:
      await service.Call(0.0, _FakeContext(5.0))
    return answers, late.value.args, missing.value.args
  answers, late, missing = asyncio.run(go())
  assert answers == ["done"] * 6 and most[0] == 2
  assert late == (Code.DEADLINE_EXCEEDED, "Deadline Exceeded")
  assert missing == (Code.NOT_FOUND, "gone")


def test_regress_on_a_regress_signature():
  """The export has no regress signature: Regress (gRPC) and :regress (REST) on a stand-in."""

  class Signature:
    name, method_name = "r", "tensorflow/serving/regress"
    inputs = {"inputs": None}

  class Servable:
    version, signatures = 3, {"r": Signature()}

  class Manager:
    def get(self, name, version=None, label=None):
      assert (name, version, label) == ("m", None, None)
      return Servable()

  class Batcher:
    async def run(self, servable, signature, feeds, size):
      assert size == 2 and len(feeds["inputs"]) == 2
      return {"outputs": np.float32([[0.5], [1.25]])}

  request = regression_pb2.RegressionRequest()
  request.model_spec.name, request.model_spec.signature_name = "m", "r"
  for value in (1.0, 2.0):
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(value)
  async def regress():  # the semaphore made in the loop, as serve does (Python 3.9 binds it)
    service = grpc_service.PredictionService(Manager(), Batcher(), asyncio.Semaphore(1))
    return await service.Regress(request, _FakeContext(None))
  response = asyncio.run(regress())
  assert [r.value for r in response.result.regressions] == [0.5, 1.25]
  assert (response.model_spec.name, response.model_spec.version.value) == ("m", 3)


def test_png_bytes_as_a_string_tensor_give_the_pixels_answers(stubs, small, reference):
  """image_bytes over gRPC: a DT_STRING tensor of PNGs, as a TF Serving client sends them."""
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "mnist"
  request.model_spec.signature_name = "image_bytes:serving_default"
  pngs = [tf.io.encode_png(image).numpy() for image in small.x_test[:5]]
  request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(pngs, dtype=tf.string))
  response = stubs[0].Predict(request)
  np.testing.assert_array_equal(tf.make_ndarray(response.outputs["classes"]), reference[0])
  np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]), reference[1],
                             atol=1e-6)
