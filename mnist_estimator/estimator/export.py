"""SavedModel export: serving inputs (images, encoded images, tf.Examples), the exporters."""

import json
import os
import shutil
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mnist_estimator.common.saved_model import CLASS_NAMES_FILE
from mnist_estimator.common.saved_model import EXAMPLES_KEY
from mnist_estimator.common.saved_model import IMAGE_BYTES_KEY
from mnist_estimator.common.saved_model import IMAGES_KEY
from mnist_estimator.common.saved_model import METADATA_FILE
from mnist_estimator.common.saved_model import SEQUENCES_KEY
from mnist_estimator.data import decode as decode_lib

# A sequence data set's (mean, std) of its raw features, as Dataset.standardize holds it.
Standardize = Tuple[np.ndarray, np.ndarray]


def serving_shape(image_shape: Sequence[int]) -> List[Optional[int]]:
  """[None, H, W] for one channel (MNIST's [None, 28, 28]), else [None, H, W, C]."""
  height, width, channels = image_shape
  return [None, height, width] if channels == 1 else [None, height, width, channels]


def _standardized(values: tf.Tensor, standardize: Standardize) -> tf.Tensor:
  """(values - mean) / std over the last axis, with the training set's statistics as constants."""
  mean, std = standardize
  return (values - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def serving_input_receiver_fn(
    image_shape: Sequence[int], standardize: Optional[Standardize] = None,
    decoding: Optional[decode_lib.Decoding] = None,
) -> Callable[[], tf.estimator.export.ServingInputReceiver]:
  """Returns a receiver fn taking float images (0..1), encoded images or tf.Examples.

  Signatures: `serving_default` and `predict` take `images`; `examples:serving_default`,
  `examples:predict` and `examples:classify` take `examples`, strings of tf.Example
  protos whose float feature "x" holds the H*W*C pixels. With `decoding` (an image model),
  `image_bytes:serving_default`, `image_bytes:predict` and `image_bytes:classify` take
  `image_bytes`, encoded images (PNG, JPEG, BMP, GIF; REST {"b64": ...}, gRPC DT_STRING)
  that the graph decodes, converts, resizes and scales with data/decode.py's ops: those that
  decoded the training images. With `standardize`, a sequence data set's model (weather),
  they take `sequences` instead of `images`: raw values [None, steps, features] (weather:
  weeks of rain, snow depth, snowfall, high, low), which the graph standardises with the
  training set's mean and std.

  Args:
    image_shape: (H, W, C) of the model's data set.
    standardize: None, or (mean, std) of the raw features (C == 1), from the Dataset.
    decoding: a data.decode.Decoding (None: no image_bytes signatures).
  """
  shape = serving_shape(image_shape)
  pixels = image_shape[0] * image_shape[1] * image_shape[2]
  key = IMAGES_KEY if standardize is None else SEQUENCES_KEY

  def receiver_fn() -> tf.estimator.export.ServingInputReceiver:
    # Each input defaults to the others' path, so any one alone feeds the model.
    examples = tf.compat.v1.placeholder_with_default(
        tf.constant([], tf.string), [None], name=EXAMPLES_KEY)
    parsed = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([pixels], tf.float32)})
    default = tf.reshape(parsed["x"], [-1, *shape[1:]])
    alternatives: Dict[str, Dict[str, tf.Tensor]] = {EXAMPLES_KEY: {EXAMPLES_KEY: examples}}
    if decoding is not None and standardize is None:
      encoded = tf.compat.v1.placeholder_with_default(
          tf.constant([], tf.string), [None], name=IMAGE_BYTES_KEY)
      decoded = tf.reshape(decode_lib.decode_batch(encoded, decoding), [-1, *shape[1:]])
      default = tf.concat([decoded, default], axis=0)
      alternatives[IMAGE_BYTES_KEY] = {IMAGE_BYTES_KEY: encoded}
    images = tf.compat.v1.placeholder_with_default(default, shape, name=key)
    features = images if standardize is None else _standardized(images, standardize)
    return tf.estimator.export.ServingInputReceiver(
        {"x": features}, {key: images}, receiver_tensors_alternatives=alternatives)

  return receiver_fn


def _receiver(
    data_record: Optional[Mapping[str, Any]], image_shape: Sequence[int],
    standardize: Optional[Standardize],
) -> Callable[[], tf.estimator.export.ServingInputReceiver]:
  decoding = (data_record or {}).get("decoding")
  return serving_input_receiver_fn(
      image_shape, standardize, decode_lib.Decoding.from_dict(decoding) if decoding else None)


def assets_extra(estimator: tf.estimator.Estimator,
                 data_record: Optional[Mapping[str, Any]] = None) -> Optional[Dict[str, str]]:
  """assets_extra: the class names (class_names.txt) and what the data meant (METADATA_FILE).

  TF Serving ignores assets.extra; predict and the server's page read them there. The files
  are written into model_dir/export_assets/ first (tf.estimator copies them from a path; in
  model_dir itself the metadata would overwrite the model_dir record, of the same name).
  """
  names = estimator.params.get("class_names")
  files = {CLASS_NAMES_FILE: "".join(f"{name}\n" for name in names) if names else None,
           METADATA_FILE: json.dumps(data_record, indent=2) if data_record else None}
  found: Dict[str, str] = {}  # its name in assets.extra: the file's path
  folder = os.path.join(estimator.model_dir, "export_assets")
  os.makedirs(folder, exist_ok=True)
  for name, text in files.items():
    if text is not None:
      found[name] = os.path.join(folder, name)
      with open(found[name], "w", encoding="utf-8") as f:
        f.write(text)
  return found or None


def export(estimator: tf.estimator.Estimator, export_dir: str, image_shape: Sequence[int],
           standardize: Optional[Standardize] = None,
           data_record: Optional[Mapping[str, Any]] = None) -> str:
  """Exports the latest checkpoint as a SavedModel under export_dir/<timestamp>.

  Args:
    estimator: the trained Estimator.
    export_dir: the SavedModel goes to a new timestamped folder under it.
    image_shape, standardize: as for `serving_input_receiver_fn`.
    data_record: run/contract.py's data record: the image_bytes signature's decoding, and
      kept in assets.extra.

  Returns:
    The path of the new SavedModel directory.
  """
  path = estimator.export_saved_model(export_dir, _receiver(data_record, image_shape,
                                                            standardize),
                                      assets_extra=assets_extra(estimator, data_record))
  return path.decode() if isinstance(path, bytes) else path


def _higher_accuracy(best_eval_result: Mapping[str, Any],
                     current_eval_result: Mapping[str, Any]) -> bool:
  """BestExporter's compare_fn: the stock one keeps the lowest loss; we keep the best accuracy."""
  return current_eval_result["accuracy"] > best_eval_result["accuracy"]


class _BestExporter(tf.estimator.BestExporter):
  """BestExporter that notes each SavedModel it writes, by checkpoint, for _LatestExporter."""

  def __init__(self, written: Dict[str, str], *args: Any, **kwargs: Any) -> None:
    super().__init__(*args, **kwargs)
    self._written = written

  def export(self, estimator: tf.estimator.Estimator, export_path: str, checkpoint_path: str,
             eval_result: Mapping[str, Any], is_the_final_export: bool) -> Any:
    path = super().export(estimator, export_path, checkpoint_path, eval_result,
                          is_the_final_export)
    if path:
      self._written[checkpoint_path] = path.decode() if isinstance(path, bytes) else path
    return path


class _LatestExporter(tf.estimator.LatestExporter):
  """LatestExporter that copies the SavedModel the best exporter just wrote of the checkpoint.

  Both export the same checkpoint with the same receiver and assets, so the copy is the
  export; building it again (model_fn, a session, the restore, the write) cost 0.16 s on a
  Xeon and 1 s on an AVX2 EPYC, at every evaluation that improved the accuracy.
  """

  def __init__(self, written: Dict[str, str], *args: Any, **kwargs: Any) -> None:
    super().__init__(*args, **kwargs)
    self._written = written

  def export(self, estimator: tf.estimator.Estimator, export_path: str, checkpoint_path: str,
             eval_result: Mapping[str, Any], is_the_final_export: bool) -> Any:
    source = self._written.pop(checkpoint_path, "")
    target = os.path.join(export_path, os.path.basename(source))
    if not os.path.isdir(source) or os.path.exists(target):
      return super().export(estimator, export_path, checkpoint_path, eval_result,
                            is_the_final_export)
    # Copied under a name no server takes for a version, then renamed: never half a model.
    temp = os.path.join(export_path, f"temp-copy-{os.path.basename(source)}")
    shutil.rmtree(temp, ignore_errors=True)
    shutil.copytree(source, temp)
    os.replace(temp, target)
    self._garbage_collect_exports(export_path)
    return target.encode()


class _Printer(tf.estimator.Exporter):
  """Prints every evaluation: a cluster's evaluator task hands no metrics back to its caller."""

  def __init__(self, describe: Callable[[Mapping[str, Any]], str]) -> None:
    self._describe = describe

  @property
  def name(self) -> str:
    return "printer"

  def export(self, estimator: tf.estimator.Estimator, export_path: str, checkpoint_path: str,
             eval_result: Mapping[str, Any], is_the_final_export: bool) -> None:
    del estimator, export_path, checkpoint_path, is_the_final_export
    print(self._describe(eval_result), flush=True)


def exporters(image_shape: Sequence[int], standardize: Optional[Standardize] = None,
              describe: Optional[Callable[[Mapping[str, Any]], str]] = None,
              assets: Optional[Mapping[str, str]] = None,
              data_record: Optional[Mapping[str, Any]] = None) -> List[tf.estimator.Exporter]:
  """train_and_evaluate's exporters: export/best (highest eval accuracy) and export/latest.

  Args:
    image_shape, standardize: as for `serving_input_receiver_fn`.
    describe: if given, `eval_result -> line`, printed after every evaluation.
    assets: as assets_extra returns.
    data_record: as for `export`.
  """
  receiver = _receiver(data_record, image_shape, standardize)
  written: Dict[str, str] = {}  # checkpoint -> the best exporter's SavedModel of it
  found = [_BestExporter(written, "best", receiver, compare_fn=_higher_accuracy,
                         exports_to_keep=1, assets_extra=assets),
           _LatestExporter(written, "latest", receiver, exports_to_keep=2, assets_extra=assets)]
  return found + [_Printer(describe)] if describe else found
