"""TF Serving's SavedModel warmup: a version replays assets.extra/tf_serving_warmup_requests."""

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from google.protobuf import message
from tensorflow_serving.apis import prediction_log_pb2

from mnist_estimator.serve import batching
from mnist_estimator.serve import grpc_protos as protos
from mnist_estimator.serve import inference
from mnist_estimator.serve import status

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.runtime import Signature
  from mnist_estimator.serve.servable import Servable

# saved_model_warmup_util.h: WarmupConsts.
FILE_NAME = "tf_serving_warmup_requests"
MAX_RECORDS = 1000
DATA_LOSS = "DATA_LOSS"  # a canonical code serve.status has no constant for; HTTP 500


def path_of(servable: "Servable") -> str:
  """Where a version keeps its warmup requests (kSavedModelAssetsExtraDirectory)."""
  return os.path.join(servable.path, "assets.extra", FILE_NAME)


def replay(servable: "Servable") -> int:
  """Runs each warmup record's request once on `servable` (no batcher), as TF Serving does.

  As saved_model_warmup_util.cc's RunSavedModelWarmup (one thread, one iteration): no file is
  no warmup; records run in order until the end of the file; the first failing record fails
  the load with its request's status.

  Args:
    servable: a loaded serve.servable.Servable.

  Returns:
    The number of records replayed (0 without a file).

  Raises:
    ApiError: TF Serving's code and message for a record that is no PredictionLog, a request
      that fails, a log type it does not replay, more than MAX_RECORDS records, or a file
      that is not TFRecord (DATA_LOSS).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.lib.io import tf_record  # pylint: disable=g-import-not-at-top
  path = path_of(servable)
  if not os.path.exists(path):
    return 0
  count = 0
  try:
    for record in tf_record.tf_record_iterator(path):
      try:
        log = prediction_log_pb2.PredictionLog.FromString(record)
      except message.DecodeError as e:
        raise status.bad_request(f"Failed to parse warmup record: "
                                 f"{record.decode('utf-8', 'replace')} from {path}") from e
      run_record(servable, log)
      count += 1
      if count > MAX_RECORDS:  # checked after the record ran, as there
        raise status.bad_request(f"Number of warmup records exceeds the maximum "
                                 f"({MAX_RECORDS}) at {path}")
  except tf.errors.DataLossError as e:
    raise status.ApiError(DATA_LOSS, f"{e.message}. Please verify your warmup data is in "
                          "TFRecord format.", 500) from e
  return count


def run_record(servable: "Servable", log: Any) -> None:
  """Runs one PredictionLog's request on `servable` (saved_model_warmup.cc RunWarmupRequest).

  Raises:
    ApiError: the request's status; UNIMPLEMENTED for a session_run_log or
      predict_streamed_log. A log of no type runs nothing, as there.
  """
  kind = log.WhichOneof("log_type")
  if kind == "predict_log":
    request = log.predict_log.request
    signature = inference.predict_signature(servable, request.model_spec.signature_name)
    batching.run_signature(signature, protos.predict_feeds(signature, request))
  elif kind in ("classify_log", "regress_log"):
    request = getattr(log, kind).request
    method = inference.CLASSIFY if kind == "classify_log" else inference.REGRESS
    signature = inference.method_signature(servable, request.model_spec.signature_name, method)
    _infer(signature, method, protos.serialized_input(request.input))
  elif kind == "multi_inference_log":
    request = log.multi_inference_log.request
    # The version's own session: no ServerCore looks the tasks' spec up (RunMultiInference).
    tasks = protos.multi_inference_tasks(servable, request) if request.tasks else []
    serialized = protos.serialized_input(request.input)
    for method, signature in tasks:
      _infer(signature, method, serialized)
  elif kind is not None:
    number = log.DESCRIPTOR.fields_by_name[kind].number  # PredictionLog::LogTypeCase
    raise status.ApiError(status.UNIMPLEMENTED, f"Unsupported log_type for warmup: {number}")


def _infer(signature: "Signature", method: str, serialized: np.ndarray) -> None:
  """Runs serialized tf.Examples through a classify or regress signature, checking its outputs."""
  feeds = {next(iter(signature.inputs)): serialized}
  outputs = batching.run_signature(signature, feeds)
  if method == inference.CLASSIFY:
    inference.classify_outputs(outputs, len(serialized))
  else:
    inference.regress_outputs(outputs, len(serialized))
