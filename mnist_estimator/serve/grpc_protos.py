"""TF Serving's protos <-> this server: TensorProtos, Input (tf.Examples), results, model specs."""

import math
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Set, Tuple

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import regression_pb2

from mnist_estimator.serve import inference
from mnist_estimator.serve import status
from mnist_estimator.serve import tf_examples

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.runtime import Signature
  from mnist_estimator.serve.servable import Servable

# The typed field Tensor::AsProtoField fills for each dtype (TF Serving's Predict answers so:
# clients that read `outputs[k].float_val` work, as well as tf.make_ndarray).
_VALUE_FIELDS = {tf.float32: "float_val", tf.float64: "double_val", tf.int32: "int_val",
                 tf.int16: "int_val", tf.int8: "int_val", tf.uint8: "int_val",
                 tf.uint16: "int_val", tf.int64: "int64_val", tf.uint32: "uint32_val",
                 tf.uint64: "uint64_val", tf.bool: "bool_val", tf.string: "string_val"}


def spec_of(model_spec: Any) -> Tuple[str, Optional[int], Optional[str]]:
  """(name, version or None, label or None) of a ModelSpec."""
  choice = model_spec.WhichOneof("version_choice")
  return (model_spec.name, model_spec.version.value if choice == "version" else None,
          model_spec.version_label if choice == "version_label" else None)


def fill_spec(model_spec: Any, name: str, version: int,
              signature_name: Optional[str] = None) -> None:
  """Sets a response's ModelSpec: the model, the version that answered, its signature."""
  model_spec.name = name
  model_spec.version.value = version
  if signature_name is not None:
    model_spec.signature_name = signature_name


# TF's DataTypeString where it is not tf.DType.name (types.cc): Session::Run's words.
_TF_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "half"}


def predict_feeds(signature: "Signature", request: Any) -> Dict[str, np.ndarray]:
  """{input key: array} of a PredictRequest, checked as TF Serving's RunPredict checks it.

  In predict_util.cc's order: the input count (VerifyRequestInputsSize), each input by name
  and parsed (tensorflow/cc/saved_model/util.cc GetInputValues), the output_filter, then the
  dtypes as Session::Run checks its feeds (FunctionCallFrame::SetArgs). The shape is the
  session's to take or refuse. NaN and Infinity are refused on purpose, as on REST.

  Raises:
    ApiError: INVALID_ARGUMENT with TF Serving's text.
  """
  given = sorted(request.inputs)
  if len(given) != len(signature.inputs):  # fewer would do with defaults: no export has them
    extra = sorted(set(given) - set(signature.inputs))
    missing = sorted(set(signature.inputs) - set(given))
    raise status.bad_request(
        f"input size does not match signature: {len(given)}!={len(signature.inputs)} "
        f"len({{{','.join(given)}}}) != len({{{','.join(signature.inputs)}}}). Sent extra: "
        f"{{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}.")
  arrays: Dict[str, np.ndarray] = {}
  for key, spec in signature.inputs.items():
    if key not in request.inputs:
      feed = spec.feed_name or key
      error = status.bad_request("")
      # Set after ApiError's one-line cleanup, which would cut the text's trailing space.
      error.message = (
          f"Signature input alias: {key}(feed name: {feed}) not found in request and no "
          f"default value provided. Inputs expected to be in the request {{{','.join(given)}}}"
          ", or default input alias set: ")
      raise error
    arrays[key] = _parse(key, request.inputs[key])
  inference.select_outputs(signature, {}, request.output_filter)
  for i, (key, spec) in enumerate(signature.inputs.items()):
    proto_dtype = request.inputs[key].dtype
    if proto_dtype != spec.dtype.as_datatype_enum:
      raise status.bad_request(f"Expects arg[{i}] to be {_type_name(spec.dtype)} but "
                               f"{_type_name(tf.dtypes.as_dtype(proto_dtype))} is provided")
  return {k: inference.check_tensor(a, signature.inputs[k]) for k, a in arrays.items()}


def _parse(key: str, proto: Any) -> np.ndarray:
  """Tensor::FromProto of a request input; its failure is util.cc's "tensor parsing error"."""
  try:
    if not proto.dtype:
      raise TypeError("DT_INVALID")
    return tf.make_ndarray(proto)
  except (ValueError, TypeError, KeyError) as e:
    raise status.bad_request(f"tensor parsing error: {key}") from e


def _type_name(dtype: Any) -> str:
  return _TF_TYPE_NAMES.get(dtype.name, dtype.name)


def multi_inference_spec(request: Any) -> Any:
  """The ModelSpec a MultiInferenceRequest is served by: its first task's (all share the model
  and the version of that spec, multi_inference_helper.cc).

  Raises:
    ApiError: INVALID_ARGUMENT for no tasks or no name, as ServerCore answers a spec without a
      name (server_core.cc ServableRequestFromModelSpec).
  """
  if not request.tasks or not request.tasks[0].model_spec.name:
    raise status.bad_request("ModelSpec has no name specified.")
  return request.tasks[0].model_spec


def multi_inference_tasks(servable: "Servable",
                          request: Any) -> List[Tuple[str, "Signature"]]:
  """[(method, signature)] of a MultiInferenceRequest's tasks, checked as multi_inference.cc
  checks them, task by task in its order.

  Raises:
    ApiError: INVALID_ARGUMENT (UNIMPLEMENTED for a method other than classify/regress).
  """
  model = request.tasks[0].model_spec.name
  seen: Set[str] = set()
  tasks: List[Tuple[str, "Signature"]] = []
  for task in request.tasks:
    if not task.model_spec.name:
      raise status.bad_request("Found ModelSpec with an empty model name.")
    if task.model_spec.name != model:
      raise status.bad_request("All ModelSpecs in a MultiInferenceRequest must access the same "
                               "model name.")
    name = task.model_spec.signature_name or inference.DEFAULT_SIGNATURE
    if name in seen:
      raise status.bad_request(f"Duplicate evaluation of signature: {name}")
    seen.add(name)
    signature = servable.signatures.get(name)
    if signature is None:
      raise status.bad_request(f"Requested signature not found in model graph: {name}")
    if task.method_name not in (inference.CLASSIFY, inference.REGRESS):
      raise status.ApiError(status.UNIMPLEMENTED,
                            f"Unsupported signature method_name: {task.method_name}")
    inference.check_method(signature, task.method_name)
    tasks.append((task.method_name, signature))
  return tasks


def tensor_proto(array: np.ndarray) -> "tensor_pb2.TensorProto":
  """An output array as a TensorProto with typed fields (Tensor::AsProtoField)."""
  dtype = tf.string if array.dtype == object else tf.dtypes.as_dtype(array.dtype)
  proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
  for size in array.shape:
    proto.tensor_shape.dim.add(size=size)
  getattr(proto, _VALUE_FIELDS[dtype]).extend(array.ravel().tolist())
  return proto


def serialized_input(input_proto: Any) -> np.ndarray:
  """The string tensor of serialized tf.Examples a classify/regress signature takes.

  Raises:
    ApiError: INVALID_ARGUMENT if there is no example (TF Serving's "Input is empty.").
  """
  kind = input_proto.WhichOneof("kind")
  if kind == "example_list":
    examples, context = input_proto.example_list.examples, None
  elif kind == "example_list_with_context":
    examples = input_proto.example_list_with_context.examples
    context = input_proto.example_list_with_context.context
  else:
    examples, context = [], None
  if not examples:
    raise status.bad_request("Input is empty.")
  for example in [*examples, *([context] if context is not None else [])]:
    _check_finite(example)
  return tf_examples.serialized_examples(examples, context)


def _check_finite(example: Any) -> None:
  """NaN and Infinity in float features are refused on purpose, as REST classify refuses them
  (README: pixels are in 0..1; TF Serving would hand them to the model)."""
  for name, feature in example.features.feature.items():
    if feature.HasField("float_list") and not all(map(math.isfinite, feature.float_list.value)):
      raise status.bad_request(f"feature '{name}' holds NaN or Infinity")


def classification_result(
    scores: Optional[np.ndarray],
    classes: Optional[np.ndarray]) -> "classification_pb2.ClassificationResult":
  """ClassificationResult from rows of scores and classes (either may be None)."""
  result = classification_pb2.ClassificationResult()
  given = scores if scores is not None else classes
  assert given is not None, "inference.classify_outputs gives scores or classes"
  for i in range(len(given)):
    classifications = result.classifications.add()
    width = given.shape[1]
    for j in range(width):
      item = classifications.classes.add()
      if classes is not None:
        item.label = classes[i, j].decode("utf-8", "replace")
      if scores is not None:
        item.score = float(scores[i, j])
  return result


def regression_result(values: np.ndarray) -> "regression_pb2.RegressionResult":
  result = regression_pb2.RegressionResult()
  for value in values.tolist():
    result.regressions.add(value=value)
  return result


def metadata_response(
    metadata: Mapping[str, Any]) -> "get_model_metadata_pb2.GetModelMetadataResponse":
  """GetModelMetadataResponse from the manager's JSON (the signature_def map as an Any)."""
  response = get_model_metadata_pb2.GetModelMetadataResponse()
  json_format.ParseDict(metadata["model_spec"], response.model_spec)
  signatures = json_format.ParseDict(metadata["metadata"]["signature_def"],
                                     get_model_metadata_pb2.SignatureDefMap())
  response.metadata["signature_def"].Pack(signatures)
  return response


def status_response(
    model_status: Mapping[str, Any]) -> "get_model_status_pb2.GetModelStatusResponse":
  return json_format.ParseDict(model_status, get_model_status_pb2.GetModelStatusResponse())
