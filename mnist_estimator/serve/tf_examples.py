"""TF Serving's classify/regress JSON as tf.Examples: features typed as its AddValueToFeature."""

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mnist_estimator.serve import rest
from mnist_estimator.serve import status


def classify_examples(request: Dict[str, Any]) -> np.ndarray:
  """Serialized tf.Examples from a classify/regress request's `examples` (and `context`).

  As TF Serving's FillClassifyRegressRequestFromJson (json_tensor.cc): JSON whole numbers make
  int64 features, decimals float ones; the context is merged into each example the way TF
  Serving merges an ExampleListWithContext (its features first, the example's win).
  """
  if "examples" not in request:
    raise status.bad_request("When method is classify, key 'examples' is expected and was not "
                             "found")
  examples, context = request["examples"], request.get("context")
  if not isinstance(examples, list):
    raise status.bad_request("Expecting 'examples' value to be an list/array")
  if not examples:
    raise status.bad_request("'examples' value is an empty array")
  context = None if context is None else _example(context)
  return serialized_examples([_example(e) for e in examples], context)


def serialized_examples(examples: Sequence["tf.train.Example"],
                        context: Optional["tf.train.Example"] = None) -> np.ndarray:
  """tf.Example protos (and a context Example) as the string tensor a classify signature takes.

  Serialized context + serialized example is the merged Example (TF Serving's
  InputToSerializedExampleTensor does the same).
  """
  prefix = context.SerializeToString() if context is not None else b""
  return np.asarray([prefix + e.SerializeToString() for e in examples], dtype=object)


def _example(value: Any) -> "tf.train.Example":
  if not isinstance(value, dict):
    raise status.bad_request(f"Example must be JSON object but got JSON {_json_type(value)}")
  features = {k: _feature(k, v) for k, v in value.items()}
  return tf.train.Example(features=tf.train.Features(feature=features))


_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}


def _feature(name: str, value: Any) -> "tf.train.Feature":
  """One feature from a JSON value or list, typed per element as TF Serving's AddValueToFeature."""
  values = value if isinstance(value, list) else [value]
  if values and all(type(v) is float for v in values):  # the common case, at C speed
    if not all(map(math.isfinite, values)):
      raise status.bad_request(f"feature '{name}' holds NaN or Infinity")
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  kind: Optional[str] = None
  items: List[Any] = []
  for v in values:
    this, item = _feature_value(name, v)
    if kind is not None and this != kind:
      raise status.bad_request(f"Unexpected element type in feature: {name} expecting type: "
                               f"{_KIND_NAMES[kind]}")
    kind = this
    items.append(item)
  if kind is None:
    return tf.train.Feature()  # [] : a feature of no kind, as in TF Serving
  lists = {"bytes_list": tf.train.BytesList, "float_list": tf.train.FloatList,
           "int64_list": tf.train.Int64List}
  return tf.train.Feature(**{kind: lists[kind](value=items)})


def _feature_value(name: str, v: Any) -> Tuple[str, Any]:
  """(kind, value) of one JSON element of a feature."""
  if isinstance(v, bool):
    return "int64_list", int(v)
  if isinstance(v, int):
    if -(1 << 63) <= v < (1 << 63):
      return "int64_list", v
    if 0 <= v < (1 << 64):
      raise status.bad_request(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
    v = float(v) if abs(v) < 1e308 else math.inf  # rapidjson reads larger numbers as doubles
  if isinstance(v, float):
    if not math.isfinite(v):
      raise status.bad_request(f"feature '{name}' holds NaN or Infinity")
    return "float_list", v
  if isinstance(v, str) or (isinstance(v, dict) and set(v) == {"b64"}):
    return "bytes_list", rest.strings(v)
  raise status.bad_request(f"Feature: {name} has element with unexpected JSON type: "
                           f"{_json_type(v)}")


def _json_type(value: Any) -> str:
  names: Dict[type, str] = {type(None): "Null", bool: "True" if value else "False",
                            dict: "Object", list: "Array", str: "String"}
  return names.get(type(value), "Number")
