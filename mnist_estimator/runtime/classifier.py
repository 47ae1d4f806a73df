"""A loaded model's image classifier: its serving_default as images in, classes out."""

from typing import Any, Dict, List, Optional, Tuple, cast

import numpy as np

from mnist_estimator.common import saved_model as names
from mnist_estimator.common.errors import UsageError
from mnist_estimator.runtime import interface


class Classifier:
  """serving_default of any loaded model: float32 images in, classes and probabilities out.

  Attributes:
    model: the runtime.Model it runs.
    path, format, class_names, metadata: the model's.
    input_key: the input images go to ("images", or a sequence model's only input).
    input_shape: that input's shape, e.g. [None, 28, 28].
    n_classes: the probabilities' width.
    by_bytes: the image_bytes:serving_default signature (encoded images), or None.
  """

  def __init__(self, model: interface.Model) -> None:
    self.model = model
    self.path, self.format = model.path, model.format
    self.class_names, self.metadata = model.class_names, model.metadata
    signature = model.signatures.get(names.SERVING_DEFAULT)
    if signature is None or not {"classes", "probabilities"} <= set(signature.outputs):
      raise UsageError(f"{model.path} has no serving_default signature returning classes and "
                       "probabilities; export it with mnist_estimator (--export_dir)")
    key = names.image_input_key(signature.inputs)
    shape = signature.inputs[key].shape if key else None
    if not key or not shape or len(shape) not in (3, 4) or None in shape[1:]:
      raise UsageError(f"{model.path}'s serving_default does not take fixed-size images "
                       f"[N, H, W(, C)] (inputs: {list(signature.inputs)}); export it with "
                       "mnist_estimator (--export_dir)")
    self._signature = signature
    self.input_key: str = key
    self.input_shape: List[Optional[int]] = list(shape)
    # An export's probabilities are [N, n_classes].
    self.n_classes: int = cast(List[int], signature.outputs["probabilities"].shape)[-1]
    self.by_bytes: Optional[interface.Signature] = model.signatures.get(
        f"{names.IMAGE_BYTES_KEY}:{names.SERVING_DEFAULT}")

  def run(self, batch: Any) -> Dict[str, np.ndarray]:
    """{"classes": [N], "probabilities": [N, n_classes]} of float32 [N, *input_shape[1:]]."""
    out = self._signature.run({self.input_key: np.asarray(batch, np.float32)})
    return {"classes": out["classes"], "probabilities": out["probabilities"]}

  def run_bytes(self, encoded: Any) -> Tuple[np.ndarray, np.ndarray]:
    """(classes, probabilities) of encoded images through the image_bytes signature."""
    if self.by_bytes is None:
      raise UsageError(f"{self.path} has no {names.IMAGE_BYTES_KEY} signature; re-export it "
                       "with this version of mnist_estimator")
    out = self.by_bytes.run({names.IMAGE_BYTES_KEY: np.asarray(encoded, object)})
    return out["classes"], out["probabilities"]

  def close(self) -> None:
    self.model.close()
