"""What REST and gRPC share: TF Serving's signature checks, and runs through the one batcher."""

import sys
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from mnist_estimator.serve import servable as servable_lib
from mnist_estimator.serve import status

CLASSIFY = servable_lib.CLASSIFY_METHOD
DEFAULT_SIGNATURE = servable_lib.DEFAULT_SIGNATURE
REGRESS = servable_lib.REGRESS_METHOD
_KINDS = {CLASSIFY: "classification", REGRESS: "regression"}

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.runtime import Signature, TensorSpec
  from mnist_estimator.serve.batching import Batcher


def predict_signature(servable: servable_lib.Servable, name: Optional[str],
                      code: str = status.FAILED_PRECONDITION) -> "Signature":
  """The signature `name` (serving_default if empty) for a predict.

  Raises:
    ApiError: there is none: FAILED_PRECONDITION as TF Serving's RunPredict (gRPC); REST passes
      INVALID_ARGUMENT, as its GetInfoMap does (both are 400).
  """
  name = name or servable_lib.DEFAULT_SIGNATURE
  signature = servable.signatures.get(name)
  if signature is None:
    message = (f'Serving signature key "{name}" not found.' if code != status.INVALID_ARGUMENT
               else f'Serving signature name: "{name}" not found in signature def')
    raise status.ApiError(code, message)
  return signature


def method_signature(servable: servable_lib.Servable, name: Optional[str],
                     method: str) -> "Signature":
  """A classify or regress signature, with TF Serving's checks (classifier.cc, regressor.cc).

  Raises:
    ApiError: INVALID_ARGUMENT for no such signature, another method, or not one input.
  """
  name = name or servable_lib.DEFAULT_SIGNATURE
  signature = servable.signatures.get(name)
  if signature is None:
    raise status.bad_request(f"No signature was found with the name: {name}")
  check_method(signature, method)
  return signature


def check_method(signature: "Signature", method: str) -> None:
  """TF Serving's PreProcessClassification/Regression checks of a found signature.

  Raises:
    ApiError: INVALID_ARGUMENT for another method, or not one input.
  """
  if signature.method_name != method:
    raise status.bad_request(f"Expected {_KINDS[method]} signature method_name to be {method}. "
                             f"Was: {signature.method_name}")
  if len(signature.inputs) != 1:
    raise status.bad_request("Expected one input Tensor.")


def select_outputs(signature: "Signature", outputs: Dict[str, np.ndarray],
                   output_filter: Sequence[str]) -> Dict[str, np.ndarray]:
  """The outputs named in a PredictRequest's output_filter (all if empty), as TF Serving checks.

  predict_util.cc's PreProcessPrediction checks the filter before Session::Run: call this with
  outputs={} first to check a request, then on the outputs.
  """
  if not output_filter:
    return outputs
  seen: Set[str] = set()
  for alias in output_filter:
    if alias not in signature.outputs:
      raise status.bad_request(f"output tensor alias not found in signature: {alias} Outputs "
                               f"expected to be in the set {{{','.join(signature.outputs)}}}.")
    if alias in seen:
      raise status.bad_request(f"duplicate output tensor alias: {alias}")
    seen.add(alias)
  return {alias: outputs[alias] for alias in output_filter if alias in outputs}


# The batcher's row count for a request it must not merge with others: it runs alone (a size at
# or over max_batch_size does), as no request has this many rows.
ALONE = sys.maxsize


def batch_rows(signature: "Signature", feeds: Mapping[str, np.ndarray]) -> int:
  """The rows the batcher may merge `feeds` by, or ALONE.

  The batcher concatenates on axis 0 and hands each request its rows of the outputs. That holds
  only for inputs shaped as the signature declares, with a free batch axis; the session also
  runs other shapes (a [28, 28] image has no batch axis, a [1, 784] one would not concatenate
  with [n, 28, 28] ones): those run alone.
  """
  rows: Set[int] = set()
  for key, array in feeds.items():
    shape = signature.inputs[key].shape
    if (shape is None or not shape or shape[0] is not None or array.ndim != len(shape)
        or any(want not in (None, got) for want, got in zip(shape[1:], array.shape[1:]))):
      return ALONE
    rows.add(array.shape[0])
  return rows.pop() if len(rows) == 1 else ALONE


async def classify(
    batcher: "Batcher", servable: servable_lib.Servable, signature: "Signature",
    serialized: np.ndarray) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
  """(scores [n, k] or None, classes [n, k] of bytes or None) of serialized tf.Examples."""
  return classify_outputs(await batcher.run(servable, signature, _examples_feed(
      signature, serialized), len(serialized)), len(serialized))


async def regress(batcher: "Batcher", servable: servable_lib.Servable, signature: "Signature",
                  serialized: np.ndarray) -> np.ndarray:
  """The [n] float values a regress signature gives for serialized tf.Examples."""
  return regress_outputs(await batcher.run(servable, signature, _examples_feed(
      signature, serialized), len(serialized)), len(serialized))


def _examples_feed(signature: "Signature", serialized: np.ndarray) -> Dict[str, np.ndarray]:
  if not len(serialized):
    raise status.bad_request("Input is empty.")
  return {next(iter(signature.inputs)): serialized}


def classify_outputs(outputs: Mapping[str, Any],
                     n: int) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
  """(scores, classes) of a classify signature's outputs for n examples (classifier.cc)."""
  scores, classes = outputs.get("scores"), outputs.get("classes")
  if scores is None and classes is None:
    raise status.bad_request('Expected classification signature outputs to contain at least '
                             'one of "classes" or "scores".')
  return (None if scores is None else np.asarray(scores).reshape(n, -1),
          None if classes is None else np.asarray(classes).reshape(n, -1))


def regress_outputs(outputs: Mapping[str, Any], n: int) -> np.ndarray:
  """The [n] values of a regress signature's outputs (regressor.cc)."""
  values = outputs.get("outputs")
  if values is None or values.size != n:
    raise status.bad_request(f"Expected output batch size to be {n}.")
  return np.asarray(values, np.float32).reshape(n)


def check_tensor(array: np.ndarray, spec: "TensorSpec") -> np.ndarray:
  """`array` if the signature input `spec` takes it (REST and gRPC).

  Its shape is the session's to take or refuse, as in TF Serving (predict_util.cc hands the
  tensor to Session::Run): a [1, 784] or an empty batch runs where the graph runs it. A model
  file's runtime (TFLite, onnxruntime: spec.strict_shape) takes only the declared shape.

  Raises:
    ApiError: INVALID_ARGUMENT for NaN or Infinity (refused on purpose: pixels are in 0..1,
      README), or a model file's input of another shape.
  """
  if spec.dtype.is_floating and not np.isfinite(array).all():
    raise status.bad_request(f"input '{spec.key}' holds NaN or Infinity")
  if spec.strict_shape and spec.shape is not None and (array.ndim != len(spec.shape) or any(
      want is not None and want != got for want, got in zip(spec.shape, array.shape))):
    want = ", ".join("-1" if d is None else str(d) for d in spec.shape)
    raise status.bad_request(f"input '{spec.key}' has shape {list(array.shape)}; the "
                             f"signature takes [{want}]")
  return array
