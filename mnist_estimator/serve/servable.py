"""One loaded SavedModel version: a tf.compat.v1 Session and its signatures as fast callables."""

from google.protobuf import json_format

from mnist_estimator.common import saved_model
from mnist_estimator.serve import status

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = saved_model.SERVING_DEFAULT


class Servable:
  """A SavedModel version loaded into its own graph and Session.

  Attributes:
    path: the SavedModel directory.
    version: its integer version.
    signatures: {name: Signature}.
  """

  def __init__(self, path, version, session_config=None):
    self.path = path
    self.version = int(version)
    self._loaded = saved_model.Loaded(path, session_config)
    self._signature_defs = self._loaded.signature_defs
    self.signatures = self._loaded.signatures
    self.class_names = self._loaded.class_names  # None: the export has no names

  def signature(self, name, method=None):
    """The signature called `name` (TF Serving's default if empty).

    Raises:
      ApiError: 400 if there is none, or its method is not `method`.
    """
    name = name or DEFAULT_SIGNATURE
    signature = self.signatures.get(name)
    if signature is None:
      raise status.bad_request(f'Serving signature key "{name}" not found.')
    if method and signature.method_name != method:
      kind = method.rsplit("/", 1)[-1]
      raise status.bad_request(f"Expected {kind} signature method_name to be {method}. "
                               f"Was: {signature.method_name}")
    return signature

  def signature_def_map(self):
    """The SignatureDefMap as TF Serving's metadata API prints it (proto field names)."""
    return {"signature_def": {
        name: json_format.MessageToDict(definition, preserving_proto_field_name=True,
                                        including_default_value_fields=True)
        for name, definition in sorted(self._signature_defs.items())}}

  def warm_up(self):
    """Runs every signature with float inputs once on zeros, so the first request is not slow."""
    for signature in self.signatures.values():
      signature.warm_up()

  def close(self):
    self._loaded.close()


def page_info(servable):
  """What the page needs of a servable (SavedModel or model file): serving_default's image
  shape [H, W, C] and the class names.

  Raises:
    ApiError: 400 when serving_default takes no images of a fixed size (a series model).
  """
  signature = servable.signature(DEFAULT_SIGNATURE)
  shape = next(iter(signature.inputs.values())).shape if len(signature.inputs) == 1 else None
  if not shape or len(shape) not in (3, 4) or None in shape[1:]:
    raise status.bad_request(f"the page needs a model of images; {DEFAULT_SIGNATURE} takes "
                             f"{shape}: use the REST API")
  height, width = shape[1:3]
  channels = shape[3] if len(shape) == 4 else 1
  n_classes = next((s.shape[-1] for k, s in signature.outputs.items()
                    if k == "probabilities" and s.shape), 10)
  return {"version": str(servable.version), "input_shape": [height, width, channels],
          "class_names": servable.class_names or [str(k) for k in range(n_classes)]}
