"""Inputs TF Serving 2.15.1 hands to Session::Run are run (or refused by the graph), its texts.

Each case names the TF Serving (or TensorFlow) source that decides it.
"""

import concurrent.futures
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serve_helpers import SAME, call, images
from tensorflow_serving.apis import (
  classification_pb2,
  inference_pb2,
  predict_pb2,
  prediction_service_pb2_grpc,
)

from mnist_estimator.serve import inference

Code = grpc.StatusCode
PREDICT = "/v1/models/mnist:predict"
CLASSIFY = "/v1/models/mnist:classify"


@pytest.fixture(scope="module")
def stub(served):
  channel = grpc.insecure_channel(served.grpc)
  yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
  channel.close()


@pytest.fixture(scope="module")
def reference(stub, small):
  """Probabilities of the first 3 test images, sent as the signature declares: [3, 28, 28]."""
  response = stub.Predict(_predict(images(small, 3)), timeout=30)
  return tf.make_ndarray(response.outputs["probabilities"])


def _predict(x, **inputs):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "mnist"
  for key, value in (inputs or {"images": x}).items():
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
  return request


def _error(rpc, request):
  with pytest.raises(grpc.RpcError) as caught:
    rpc(request, timeout=30)
  return caught.value.code(), caught.value.details()


def _classify(x, signature="examples:classify"):
  request = classification_pb2.ClassificationRequest()
  request.model_spec.name, request.model_spec.signature_name = "mnist", signature
  for image in x:
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend(image.ravel().tolist())
  return request


# predict_util.cc RunPredict: PreProcessPrediction checks names and the output filter only, then
# Session::Run takes the tensor; the graph reshapes any 784 floats a row.
@pytest.mark.parametrize("shape", [(1, 784), (1, 28, 28, 1), (28, 28), (784,)])
def test_grpc_predict_runs_shapes_the_graph_takes(stub, small, reference, shape):
  response = stub.Predict(_predict(images(small, 1).reshape(shape)), timeout=30)
  np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]),
                             reference[:1], **SAME)


def test_grpc_predict_runs_two_images_as_28_28_1(stub, small, reference):
  response = stub.Predict(_predict(images(small, 2)[..., None]), timeout=30)
  np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]),
                             reference[:2], **SAME)


def test_grpc_predict_of_an_empty_batch_returns_empty_outputs(stub):
  """Session::Run of a [0, 28, 28] tensor: [0] classes, [0, 10] probabilities (predict_util.cc)."""
  response = stub.Predict(_predict(np.zeros([0, 28, 28], np.float32)), timeout=30)
  assert [d.size for d in response.outputs["probabilities"].tensor_shape.dim] == [0, 10]
  assert [d.size for d in response.outputs["classes"].tensor_shape.dim] == [0]


def test_a_shape_the_graph_cannot_take_gets_the_graphs_error(stub, small, served):
  """The session's status passes through (predict_util.cc TF_RETURN_IF_ERROR(session->Run))."""
  code, details = _error(stub.Predict, _predict(images(small, 1)[:, :27]))
  assert code == Code.INVALID_ARGUMENT
  assert "Input to reshape is a tensor with 756 values" in details
  got, body = call(served.url, "POST", PREDICT, {"instances": [[[0.0] * 27] * 28]})
  assert got == 400 and "Input to reshape is a tensor with 756 values" in body["error"]


# json_tensor.cc FillPredictRequestFromJson: the tensor's shape is the JSON's, not checked
# against the signature; then the same RunPredict.
@pytest.mark.parametrize("body", [
    {"instances": "flat"}, {"inputs": "nhwc"}, {"inputs": "hw"}])
def test_rest_predict_runs_shapes_the_graph_takes(served, small, reference, body):
  image = images(small, 1)[0]
  value = {"flat": [image.ravel().tolist()], "nhwc": image[None, ..., None].tolist(),
           "hw": image.tolist()}[next(iter(body.values()))]
  got, answer = call(served.url, "POST", PREDICT, {next(iter(body)): value})
  assert got == 200, answer
  rows = (answer["predictions"] if "predictions" in answer
          else [{"probabilities": p} for p in answer["outputs"]["probabilities"]])
  np.testing.assert_allclose(np.float32([rows[0]["probabilities"]]), reference[:1], rtol=1e-5)


def test_rest_predict_of_an_empty_batch_returns_empty_outputs(served):
  """Columnar [] is a [0] tensor; the graph runs it (json_tensor.cc MakeColumnarFormatJson...)."""
  got, answer = call(served.url, "POST", PREDICT, {"inputs": []})
  assert (got, answer) == (200, {"outputs": {"classes": [], "probabilities": []}})


def test_requests_without_a_batch_axis_run_alone_beside_batched_ones(served, stub, small,
                                                                    reference):
  """The batcher concatenates on axis 0: a [28, 28] request must not be merged with others."""
  x = images(small, 3)
  shapes = [x[0], x[:1], x[:3], x[0].reshape(1, 784), x[:2, ..., None]] * 6
  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    answers = list(pool.map(lambda a: stub.Predict(_predict(a), timeout=30), shapes))
  for sent, answer in zip(shapes, answers):
    rows = 1 if sent.ndim == 2 else sent.shape[0]
    np.testing.assert_allclose(tf.make_ndarray(answer.outputs["probabilities"]),
                               reference[:rows], **SAME)
  signature = served.manager.get("mnist").signatures["serving_default"]
  assert inference.batch_rows(signature, {"images": x[:3]}) == 3
  for other in (x[0], x[:1].reshape(1, 784), x[:1, ..., None]):
    assert inference.batch_rows(signature, {"images": other}) == inference.ALONE


def test_a_wrong_input_name_gets_tensorflows_text(stub, small):
  """tensorflow/cc/saved_model/util.cc GetInputValues (TF 2.15), after predict_util.cc's
  VerifyRequestInputsSize passed (1 == 1)."""
  assert _error(stub.Predict, _predict(None, imagez=images(small, 1))) == (
      Code.INVALID_ARGUMENT,
      "Signature input alias: images(feed name: images:0) not found in request and no default "
      "value provided. Inputs expected to be in the request {imagez}, or default input alias "
      "set: ")


def test_a_wrong_dtype_gets_session_runs_text(stub, small):
  """DirectSession::Run's FunctionCallFrame::SetArgs (tensorflow/core/framework/function.cc)."""
  assert _error(stub.Predict, _predict(images(small, 1).astype(np.float64))) == (
      Code.INVALID_ARGUMENT, "Expects arg[0] to be float but double is provided")
  assert _error(stub.Predict, _predict(np.int32([[1]]))) == (
      Code.INVALID_ARGUMENT, "Expects arg[0] to be float but int32 is provided")


def _multi(*signatures):
  request = inference_pb2.MultiInferenceRequest()
  for name in signatures:
    task = request.tasks.add()
    task.model_spec.name, task.model_spec.signature_name = "mnist", name
    task.method_name = "tensorflow/serving/classify"
  return request


def test_multi_inference_unknown_signature_and_no_tasks(stub, small):
  """multi_inference.cc Infer; no tasks: multi_inference_helper.cc takes a default ModelSpec,
  which ServerCore::ServableRequestFromModelSpec refuses (server_core.cc)."""
  request = _multi("examples:classify", "nope")
  request.input.CopyFrom(_classify(images(small, 1)).input)
  assert _error(stub.MultiInference, request) == (
      Code.INVALID_ARGUMENT, "Requested signature not found in model graph: nope")
  assert _error(stub.MultiInference, inference_pb2.MultiInferenceRequest()) == (
      Code.INVALID_ARGUMENT, "ModelSpec has no name specified.")


def test_nan_is_refused_on_all_four_paths(served, stub, small):
  """The README's one deliberate difference (TF Serving would run NaN pixels), kept the same on
  REST predict, REST classify, gRPC Predict and gRPC Classify."""
  x = images(small, 1)
  x[0, 3, 3] = np.nan
  got, body = call(served.url, "POST", PREDICT, json.dumps({"instances": x.tolist()}).encode())
  assert got == 400 and body["error"] == "input 'images' holds NaN or Infinity"
  got, body = call(served.url, "POST", CLASSIFY, json.dumps({
      "signature_name": "examples:classify", "examples": [{"x": x.ravel().tolist()}]}).encode())
  assert got == 400 and body["error"] == "feature 'x' holds NaN or Infinity"
  assert _error(stub.Predict, _predict(x)) == (
      Code.INVALID_ARGUMENT, "input 'images' holds NaN or Infinity")
  assert _error(stub.Classify, _classify(x)) == (
      Code.INVALID_ARGUMENT, "feature 'x' holds NaN or Infinity")
  assert _error(stub.Classify, _classify(x + np.inf)) == (
      Code.INVALID_ARGUMENT, "feature 'x' holds NaN or Infinity")
