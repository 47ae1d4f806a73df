"""TF Serving's protos <-> this server: TensorProtos, Input (tf.Examples), results, model specs."""

import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import regression_pb2

from mnist_estimator.serve import rest
from mnist_estimator.serve import status
from mnist_estimator.serve import tf_examples

# The typed field Tensor::AsProtoField fills for each dtype (TF Serving's Predict answers so:
# clients that read `outputs[k].float_val` work, as well as tf.make_ndarray).
_VALUE_FIELDS = {tf.float32: "float_val", tf.float64: "double_val", tf.int32: "int_val",
                 tf.int16: "int_val", tf.int8: "int_val", tf.uint8: "int_val",
                 tf.uint16: "int_val", tf.int64: "int64_val", tf.uint32: "uint32_val",
                 tf.uint64: "uint64_val", tf.bool: "bool_val", tf.string: "string_val"}


def spec_of(model_spec):
  """(name, version or None, label or None) of a ModelSpec."""
  choice = model_spec.WhichOneof("version_choice")
  return (model_spec.name, model_spec.version.value if choice == "version" else None,
          model_spec.version_label if choice == "version_label" else None)


def fill_spec(model_spec, name, version, signature_name=None):
  """Sets a response's ModelSpec: the model, the version that answered, its signature."""
  model_spec.name = name
  model_spec.version.value = version
  if signature_name is not None:
    model_spec.signature_name = signature_name


def to_array(key, proto, spec):
  """A request's TensorProto as the array the signature input `spec` takes.

  Raises:
    ApiError: INVALID_ARGUMENT for another dtype, a malformed proto, a shape the signature does
      not take, or NaN/Infinity (refused on purpose, as on REST).
  """
  want = spec.dtype.as_datatype_enum
  if proto.dtype != want:
    got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "DT_INVALID"
    raise status.bad_request(f"Expects arg for input '{key}' to be {spec.dtype.name} but {got} "
                             "is provided")
  try:
    array = tf.make_ndarray(proto)
  except (ValueError, TypeError) as e:
    raise status.bad_request(f"input '{key}' is not a valid TensorProto: {e}") from e
  return rest.check_tensor(array, spec)


def tensor_proto(array):
  """An output array as a TensorProto with typed fields (Tensor::AsProtoField)."""
  dtype = tf.string if array.dtype == object else tf.dtypes.as_dtype(array.dtype)
  proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
  for size in array.shape:
    proto.tensor_shape.dim.add(size=size)
  getattr(proto, _VALUE_FIELDS[dtype]).extend(array.ravel().tolist())
  return proto


def serialized_input(input_proto):
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
  return tf_examples.serialized_examples(examples, context)


def classification_result(scores, classes):
  """ClassificationResult from rows of scores and classes (either may be None)."""
  result = classification_pb2.ClassificationResult()
  rows = len(scores if scores is not None else classes)
  for i in range(rows):
    classifications = result.classifications.add()
    width = (scores if scores is not None else classes).shape[1]
    for j in range(width):
      item = classifications.classes.add()
      if classes is not None:
        item.label = classes[i, j].decode("utf-8", "replace")
      if scores is not None:
        item.score = float(scores[i, j])
  return result


def regression_result(values):
  result = regression_pb2.RegressionResult()
  for value in values.tolist():
    result.regressions.add(value=value)
  return result


def metadata_response(metadata):
  """GetModelMetadataResponse from the manager's JSON (the signature_def map as an Any)."""
  response = get_model_metadata_pb2.GetModelMetadataResponse()
  json_format.ParseDict(metadata["model_spec"], response.model_spec)
  signatures = json_format.ParseDict(metadata["metadata"]["signature_def"],
                                     get_model_metadata_pb2.SignatureDefMap())
  response.metadata["signature_def"].Pack(signatures)
  return response


def status_response(model_status):
  return json_format.ParseDict(model_status, get_model_status_pb2.GetModelStatusResponse())
