"""One loaded SavedModel version: a tf.compat.v1 Session and its signatures as fast callables."""

from google.protobuf import json_format

from mnist_estimator.common import saved_model

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

  def extra_metadata(self):
    """Fields beside signature_def in the metadata answer (none for a SavedModel)."""
    return {}

  def close(self):
    self._loaded.close()
