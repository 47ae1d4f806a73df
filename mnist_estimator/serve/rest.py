"""TF Serving's REST JSON: predict (row and columnar), classify, tensors and tf.Examples."""

import base64
import binascii
import json
import math

import numpy as np
import orjson
import tensorflow as tf

from mnist_estimator.serve import status


def dumps(content):
  """JSON bytes; NaN and Infinity as JSON tokens (as TF Serving writes them), not null."""
  data = orjson.dumps(content)
  return data if b"null" not in data else json.dumps(content, separators=(",", ":")).encode()


def parse_body(body):
  """The request's JSON object (NaN and Infinity allowed, as TF Serving allows them)."""
  try:
    request = orjson.loads(body)  # 4-5x faster than json on a 28x28 image
  except orjson.JSONDecodeError:
    try:
      request = json.loads(body)  # the NaN and Infinity tokens, which orjson refuses
    except (ValueError, UnicodeDecodeError) as e:
      raise status.bad_request(f"JSON Parse error: {e}") from e
  if not isinstance(request, dict):
    raise status.bad_request("JSON Value: request body is not a JSON object")
  name = request.get("signature_name", "")
  if not isinstance(name, str):
    raise status.bad_request("'signature_name' must be a string")
  return request


def predict_feeds(request, signature):
  """{input key: array} for a predict request, its row count and whether it is row format.

  Raises:
    ApiError: 400 for a request TF Serving would refuse, a NaN, or a shape or dtype the
      signature does not take.
  """
  if ("instances" in request) == ("inputs" in request):
    raise status.bad_request("Missing 'inputs' or 'instances' key" if "inputs" not in request
                             else "Not both 'inputs' and 'instances' may be specified")
  specs = signature.inputs
  if "instances" in request:
    rows = request["instances"]
    if not isinstance(rows, list) or not rows:
      raise status.bad_request("'instances' must be a non-empty JSON list")
    if all(isinstance(row, dict) and set(row) != {"b64"} for row in rows):
      _check_keys(rows[0].keys(), specs)
      columns = {k: [row.get(k) for row in rows] for k in specs}
    elif len(specs) == 1:
      columns = {next(iter(specs)): rows}
    else:
      raise status.bad_request(f"the signature takes {len(specs)} inputs ({', '.join(specs)}): "
                               "give each instance as an object keyed by input name")
    row_format = True
  else:
    value = request["inputs"]
    if isinstance(value, dict) and set(value) != {"b64"}:
      _check_keys(value.keys(), specs)
      columns = dict(value)
    elif len(specs) == 1:
      columns = {next(iter(specs)): value}
    else:
      raise status.bad_request(f"'inputs' must be an object keyed by {', '.join(specs)}")
    row_format = False
  feeds = {k: to_array(columns[k], specs[k]) for k in specs}
  sizes = {a.shape[0] if a.ndim else 1 for a in feeds.values()}
  if row_format and len(sizes) > 1:
    raise status.bad_request("instances have inputs with different batch sizes")
  return feeds, max(sizes), row_format


def _check_keys(keys, specs):
  keys = set(keys)
  if keys != set(specs):
    missing, unknown = sorted(set(specs) - keys), sorted(keys - set(specs))
    raise status.bad_request(f"inputs do not match the signature's {sorted(specs)}: "
                             f"missing {missing}, unknown {unknown}")


def to_array(value, spec):
  """A JSON value as an array of the signature input's dtype and shape."""
  if spec.np_dtype is object:
    array = np.asarray(_strings(value), dtype=object)
  else:
    try:
      array = np.asarray(value, dtype=spec.np_dtype)
    except (ValueError, TypeError) as e:
      raise status.bad_request(f"input '{spec.key}' is not a {spec.dtype.name} tensor in "
                               f"nested lists of equal length ({e})") from e
    if spec.dtype.is_floating and not np.isfinite(array).all():
      raise status.bad_request(f"input '{spec.key}' holds NaN or Infinity")
  if array.size == 0:
    raise status.bad_request(f"input '{spec.key}' is empty")
  if spec.shape is not None and (array.ndim != len(spec.shape) or any(
      want is not None and want != got for want, got in zip(spec.shape, array.shape))):
    want = ", ".join("-1" if d is None else str(d) for d in spec.shape)
    raise status.bad_request(f"input '{spec.key}' has shape {list(array.shape)}; the "
                             f"signature takes [{want}]")
  return array


def _strings(value):
  """Nested lists of str or {"b64": ...} as nested lists of bytes."""
  if isinstance(value, list):
    return [_strings(v) for v in value]
  if isinstance(value, str):
    return value.encode()
  if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
    try:
      return base64.b64decode(value["b64"], validate=True)
    except binascii.Error as e:
      raise status.bad_request(f"invalid base64 in a b64 value: {e}") from e
  raise status.bad_request(f"expected a string or {{\"b64\": ...}}, got {json.dumps(value)[:40]}")


def predict_response(outputs, row_format):
  """{"predictions": ...} (row format) or {"outputs": ...} (columnar), as TF Serving shapes them."""
  lists = {k: _json_value(k, v) for k, v in outputs.items()}
  if not row_format:
    return {"outputs": next(iter(lists.values())) if len(lists) == 1 else lists}
  if len(lists) == 1:
    return {"predictions": next(iter(lists.values()))}
  n = len(next(iter(lists.values())))
  return {"predictions": [{k: v[i] for k, v in lists.items()} for i in range(n)]}


def _json_value(key, array):
  if array.dtype == object:
    if key.endswith("_bytes"):
      return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()},
                          otypes=[object])(array).tolist()
    return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
  return array.tolist()


def classify_examples(request):
  """Serialized tf.Examples from a classify/regress request's `examples` (and `context`)."""
  examples, context = request.get("examples"), request.get("context", {})
  if not isinstance(examples, list) or not examples or not all(
      isinstance(e, dict) for e in examples):
    raise status.bad_request("'examples' must be a non-empty list of JSON objects")
  if not isinstance(context, dict):
    raise status.bad_request("'context' must be a JSON object")
  serialized = []
  for example in examples:
    clash = set(example) & set(context)
    if clash:
      raise status.bad_request(f"features {sorted(clash)} appear in both context and examples")
    features = {k: _feature(k, v) for k, v in {**context, **example}.items()}
    serialized.append(tf.train.Example(features=tf.train.Features(feature=features))
                      .SerializeToString())
  return np.asarray(serialized, dtype=object)


def _feature(name, value):
  values = value if isinstance(value, list) else [value]
  if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
    if not all(math.isfinite(v) for v in values):
      raise status.bad_request(f"feature '{name}' holds NaN or Infinity")
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  if values and all(isinstance(v, (str, dict)) for v in values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=_strings(values)))
  raise status.bad_request(f"feature '{name}' must be a number, a string or a non-empty list of "
                           "one kind of them")


def classify_response(outputs, size):
  """{"results": [[[label, score], ...] per example]} from a classify signature's outputs."""
  scores, classes = outputs.get("scores"), outputs.get("classes")
  if scores is None:
    scores = np.zeros(classes.shape, np.float32)
  if classes is None:
    classes = np.full(scores.shape, b"", dtype=object)
  scores = scores.reshape(size, -1).tolist()
  labels = classes.reshape(size, -1).tolist()
  return {"results": [[[label.decode("utf-8", "replace"), score]
                       for label, score in zip(row_labels, row_scores)]
                      for row_labels, row_scores in zip(labels, scores)]}


def regress_response(outputs, size):
  """{"results": [value per example]} from a regress signature's outputs."""
  return {"results": outputs["outputs"].reshape(size).tolist()}
