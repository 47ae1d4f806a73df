"""TF Serving's gRPC API (PredictionService, ModelService) on grpc.aio, beside the REST API."""

import asyncio
import functools
import os
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

import grpc
import numpy as np
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2

from mnist_estimator.serve import config as config_lib
from mnist_estimator.serve import grpc_protos as protos
from mnist_estimator.serve import inference
from mnist_estimator.serve import status

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.runtime import Signature
  from mnist_estimator.serve.batching import Batcher
  from mnist_estimator.serve.manager import ModelManager
  from mnist_estimator.serve.metrics import Metrics
  from mnist_estimator.serve.servable import Servable

DEFAULT_MAX_THREADS = 4 * (os.cpu_count() or 1)  # TF Serving's --grpc_max_threads default
# TF Serving's SetMaxMessageSize(INT32_MAX) (server.cc): 2 GiB both ways. Answers here may be
# as large; requests are bounded by --max_body_bytes instead, so a huge message is refused by
# gRPC by its length (RESOURCE_EXHAUSTED) before it is parsed: no handler sees it.
MAX_SEND_BYTES = (1 << 31) - 1


def _rpc(method: Callable[[Any, Any], Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
  """An RPC: at most --grpc_max_threads at once, within its deadline, ApiError as a status."""

  @functools.wraps(method)
  async def handler(self: "_Service", request: Any, context: Any) -> Any:
    start, code, message = time.perf_counter(), "OK", ""
    try:
      return await asyncio.wait_for(self._limited(method, request), context.time_remaining())
    except status.ApiError as e:
      code, message = e.code, e.message
    except asyncio.TimeoutError:
      code, message = status.DEADLINE_EXCEEDED, "Deadline Exceeded"
    except Exception as e:  # pylint: disable=broad-except  # a bug: INTERNAL, serve on
      code, message = status.INTERNAL, status.internal(e).message
    finally:
      self.record(method.__name__, request, code, time.perf_counter() - start)
    await context.abort(grpc.StatusCode[code], message)
  return handler


# The API label of each RPC in the metrics (TF Serving's names for them).
_API_NAMES = {"Predict": "predict", "Classify": "classify", "Regress": "regress",
              "MultiInference": "multi_inference", "GetModelMetadata": "get_model_metadata",
              "GetModelStatus": "get_model_status"}


class _Service:
  """What both services hold: the manager, the batcher, the limit of RPCs at once, the metrics."""

  def __init__(self, manager: "ModelManager", batcher: "Batcher", limit: asyncio.Semaphore,
               metrics: Optional["Metrics"] = None) -> None:
    self.manager = manager
    self.batcher = batcher
    self._limit = limit
    self.metrics = metrics

  async def _limited(self, method: Callable[[Any, Any], Awaitable[Any]], request: Any) -> Any:
    async with self._limit:
      return await method(self, request)

  def record(self, rpc: str, request: Any, code: str, seconds: float) -> None:
    """Counts an RPC and its latency (serve.metrics), by model and API."""
    if self.metrics is None or rpc not in _API_NAMES:
      return
    if hasattr(request, "tasks"):
      model = request.tasks[0].model_spec.name if request.tasks else ""
    else:
      model = request.model_spec.name
    self.metrics.request(model, _API_NAMES[rpc], "GRPC", code, seconds)

  def servable(self, model_spec: Any) -> "Servable":
    return self.manager.get(*protos.spec_of(model_spec))


class PredictionService(_Service, prediction_service_pb2_grpc.PredictionServiceServicer):
  """Predict, Classify, Regress, MultiInference and GetModelMetadata."""

  @_rpc
  async def Predict(self, request: Any) -> Any:  # pylint: disable=invalid-name
    _require_spec(request)
    servable = self.servable(request.model_spec)
    signature = inference.predict_signature(servable, request.model_spec.signature_name)
    feeds = protos.predict_feeds(signature, request)
    outputs = await self.batcher.run(servable, signature, feeds,
                                     inference.batch_rows(signature, feeds))
    outputs = inference.select_outputs(signature, outputs, request.output_filter)
    response = predict_pb2.PredictResponse()
    protos.fill_spec(response.model_spec, request.model_spec.name, servable.version,
                     signature.name)
    for key, value in outputs.items():
      response.outputs[key].CopyFrom(protos.tensor_proto(value))
    return response

  @_rpc
  async def Classify(self, request: Any) -> Any:  # pylint: disable=invalid-name
    _require_spec(request)
    response = inference_pb2.InferenceResult()  # a holder: result + model_spec
    await self._run(request, inference.CLASSIFY, response)
    return _as(response, "classification")

  @_rpc
  async def Regress(self, request: Any) -> Any:  # pylint: disable=invalid-name
    _require_spec(request)
    response = inference_pb2.InferenceResult()
    await self._run(request, inference.REGRESS, response)
    return _as(response, "regression")

  async def _run(self, request: Any, method: str, result: Any) -> None:
    """Runs a classify or regress request into an InferenceResult."""
    servable = self.servable(request.model_spec)
    signature = inference.method_signature(servable, request.model_spec.signature_name, method)
    await self._infer(servable, signature, method, protos.serialized_input(request.input),
                      result)
    protos.fill_spec(result.model_spec, request.model_spec.name, servable.version,
                     signature.name)

  async def _infer(self, servable: "Servable", signature: "Signature", method: str,
                   serialized: np.ndarray, result: Any) -> None:
    """Runs serialized tf.Examples through a classify or regress signature into `result`."""
    if method == inference.CLASSIFY:
      result.classification_result.CopyFrom(protos.classification_result(
          *await inference.classify(self.batcher, servable, signature, serialized)))
    else:
      result.regression_result.CopyFrom(protos.regression_result(
          await inference.regress(self.batcher, servable, signature, serialized)))

  @_rpc
  async def MultiInference(self, request: Any) -> Any:  # pylint: disable=invalid-name
    # As TF Serving's RunMultiInferenceWithServerCore: the first task's spec picks the version,
    # every task is checked before the input is read (multi_inference.cc).
    servable = self.servable(protos.multi_inference_spec(request))
    tasks = protos.multi_inference_tasks(servable, request)
    serialized = protos.serialized_input(request.input)
    response = inference_pb2.MultiInferenceResponse()
    for (method, signature), task in zip(tasks, request.tasks):  # each through the batcher
      result = response.results.add()
      await self._infer(servable, signature, method, serialized, result)
      protos.fill_spec(result.model_spec, task.model_spec.name, servable.version,
                       signature.name)
    return response

  @_rpc
  async def GetModelMetadata(self, request: Any) -> Any:  # pylint: disable=invalid-name
    _require_spec(request)
    if not request.metadata_field:
      raise status.bad_request("GetModelMetadataRequest must specify at least one "
                               "metadata_field")
    for field in request.metadata_field:
      if field != "signature_def":
        raise status.bad_request(f"Metadata field {field} is not supported")
    return protos.metadata_response(self.manager.metadata(*protos.spec_of(request.model_spec)))


class ModelService(_Service, model_service_pb2_grpc.ModelServiceServicer):
  """GetModelStatus and HandleReloadConfigRequest (TF Serving's model_service_impl.cc)."""

  @_rpc
  async def GetModelStatus(self, request: Any) -> Any:  # pylint: disable=invalid-name
    _require_spec(request)
    name, version, _ = protos.spec_of(request.model_spec)  # labels are not looked at, as there
    return protos.status_response(self.manager.status(name, version))

  @_rpc
  async def HandleReloadConfigRequest(self, request: Any) -> Any:  # pylint: disable=invalid-name
    """Serves the request's ModelServerConfig; its outcome is in the response's status, as there.

    New models are loaded before the answer (in a thread: loading takes a while and the event
    loop serves on meanwhile).
    """
    response = model_management_pb2.ReloadConfigResponse()
    try:
      models = config_lib.from_proto(request.config)
      await asyncio.get_running_loop().run_in_executor(None, self.manager.reload, models)
    except status.ApiError as e:
      response.status.error_code = error_codes_pb2.Code.Value(e.code)
      response.status.error_message = e.message
    return response


def _require_spec(request: Any) -> None:
  if not request.HasField("model_spec"):
    raise status.bad_request("Missing ModelSpec")


def _as(result: Any, kind: str) -> Any:
  """A ClassificationResponse or RegressionResponse from an InferenceResult."""
  if kind == "classification":
    return classification_pb2.ClassificationResponse(model_spec=result.model_spec,
                                                     result=result.classification_result)
  return regression_pb2.RegressionResponse(model_spec=result.model_spec,
                                           result=result.regression_result)


def make_server(manager: "ModelManager", batcher: "Batcher", max_threads: int = DEFAULT_MAX_THREADS,
                max_message_bytes: int = 32 << 20, metrics: Optional["Metrics"] = None) -> Any:
  """A grpc.aio server with both services; make it in the running loop, add a port, start it.

  Args:
    manager: the ModelManager REST uses too.
    batcher: the Batcher REST uses too.
    max_threads: RPCs handled at once (TF Serving's --grpc_max_threads); more wait their turn.
    max_message_bytes: larger request messages get RESOURCE_EXHAUSTED before they are parsed.
    metrics: a serve.metrics.Metrics counting the RPCs, or None.

  Returns:
    The grpc.aio.Server.
  """
  # gRPC's default SO_REUSEPORT lets a second server bind a busy port and take half the
  # clients between two models: off, a busy port fails to bind (one error line at start).
  server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_message_bytes),
                                    ("grpc.max_send_message_length", MAX_SEND_BYTES),
                                    ("grpc.so_reuseport", 0)])
  limit = asyncio.Semaphore(max_threads)
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      PredictionService(manager, batcher, limit, metrics), server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(
      ModelService(manager, batcher, limit, metrics), server)
  return server
