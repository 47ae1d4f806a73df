"""What REST and gRPC share: TF Serving's signature checks, and runs through the one batcher."""

import numpy as np

from mnist_estimator.serve import servable as servable_lib
from mnist_estimator.serve import status

CLASSIFY = servable_lib.CLASSIFY_METHOD
REGRESS = servable_lib.REGRESS_METHOD
_KINDS = {CLASSIFY: "classification", REGRESS: "regression"}


def predict_signature(servable, name, code=status.FAILED_PRECONDITION):
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


def method_signature(servable, name, method):
  """A classify or regress signature, with TF Serving's checks (classifier.cc, regressor.cc).

  Raises:
    ApiError: INVALID_ARGUMENT for no such signature, another method, or not one input.
  """
  name = name or servable_lib.DEFAULT_SIGNATURE
  signature = servable.signatures.get(name)
  if signature is None:
    raise status.bad_request(f"No signature was found with the name: {name}")
  if signature.method_name != method:
    raise status.bad_request(f"Expected {_KINDS[method]} signature method_name to be {method}. "
                             f"Was: {signature.method_name}")
  if len(signature.inputs) != 1:
    raise status.bad_request("Expected one input Tensor.")
  return signature


def select_outputs(signature, outputs, output_filter):
  """The outputs named in a PredictRequest's output_filter (all if empty), as TF Serving checks."""
  if not output_filter:
    return outputs
  seen = set()
  for alias in output_filter:
    if alias not in signature.outputs:
      raise status.bad_request(f"output tensor alias not found in signature: {alias} Outputs "
                               f"expected to be in the set {{{','.join(signature.outputs)}}}.")
    if alias in seen:
      raise status.bad_request(f"duplicate output tensor alias: {alias}")
    seen.add(alias)
  return {alias: outputs[alias] for alias in output_filter}


async def classify(batcher, servable, signature, serialized):
  """(scores [n, k] or None, classes [n, k] of bytes or None) of serialized tf.Examples."""
  if not len(serialized):
    raise status.bad_request("Input is empty.")
  outputs = await batcher.run(servable, signature, {next(iter(signature.inputs)): serialized},
                              len(serialized))
  scores, classes = outputs.get("scores"), outputs.get("classes")
  if scores is None and classes is None:
    raise status.bad_request('Expected classification signature outputs to contain at least '
                             'one of "classes" or "scores".')
  n = len(serialized)
  return (None if scores is None else np.asarray(scores).reshape(n, -1),
          None if classes is None else np.asarray(classes).reshape(n, -1))


async def regress(batcher, servable, signature, serialized):
  """The [n] float values a regress signature gives for serialized tf.Examples."""
  if not len(serialized):
    raise status.bad_request("Input is empty.")
  outputs = await batcher.run(servable, signature, {next(iter(signature.inputs)): serialized},
                              len(serialized))
  values = outputs.get("outputs")
  if values is None or values.size != len(serialized):
    raise status.bad_request(f"Expected output batch size to be {len(serialized)}.")
  return np.asarray(values, np.float32).reshape(len(serialized))
