"""What a run writes besides checkpoints: the weights (--mode=weights) and the exports."""

from typing import TYPE_CHECKING, Any, Dict, Mapping

import numpy as np

from mnist_estimator import portable
from mnist_estimator.common.errors import UsageError
from mnist_estimator.estimator import export as export_lib
from mnist_estimator.estimator import weights

if TYPE_CHECKING:  # for the hints only
  import tensorflow as tf

  from mnist_estimator.run.plan import Plan


# Streamed test images the exports are checked on: decoded into memory for the check.
_STREAMED_CHECK = 2000


def show_weights(plan: "Plan", estimator: "tf.estimator.Estimator") -> Dict[str, Any]:
  """Lists the checkpoint's variables; saves chosen ones (.npz) and draws them (PNG) on request."""
  spec, data = plan.spec, plan.data
  rows = weights.list_variables(estimator)
  print(weights.format_table(rows))
  # Which copy: the raw weights are saved and drawn; with an EMA the model runs on the other.
  copy = ("the raw layer weights; evaluate, predict and export use their moving averages"
          if any(kind == "average" for _, _, kind in rows) else "the layer weights")
  if spec.weights_out:
    names = weights.save(estimator, spec.weights_out, spec.weights_names)
    print(f"wrote {len(names)} arrays ({copy}) to {spec.weights_out}")
  if spec.weights_png_dir:
    from mnist_estimator.artifacts import weight_pictures  # pylint: disable=g-import-not-at-top  # matplotlib
    arrays = {name: estimator.get_variable_value(name)
              for name, _, kind in rows if kind == "layer"}
    paths = weight_pictures.draw(arrays, data.image_shape, spec.weights_png_dir,
                                 spec.weights_names, data.n_classes)
    print(f"drew {len(paths)} pictures ({copy}) in {spec.weights_png_dir}")
  return {}


def export(plan: "Plan", estimator: "tf.estimator.Estimator") -> Dict[str, str]:
  """Exports the latest checkpoint to spec.export_dir/<timestamp> in each --export_format.

  Returns:
    {format name: path}: the SavedModel version folder, the files beside it.
  """
  spec, data = plan.spec, plan.data
  if not spec.export_dir:
    raise UsageError("--mode=export needs --export_dir=DIR for the SavedModel")
  path = export_lib.export(estimator, spec.export_dir, data.image_shape, data.standardize,
                           plan.record["data"])
  if tuple(spec.export_format) == (portable.SAVED_MODEL,):
    print(f"exported SavedModel: {path}")
    return {portable.SAVED_MODEL: path}
  from mnist_estimator.portable import exports  # pylint: disable=g-import-not-at-top  # converters
  from mnist_estimator.portable import verify  # pylint: disable=g-import-not-at-top
  shape = data.image_shape
  sample = np.asarray(verify.representative(data.x_train, spec.representative_examples,
                                            spec.seed or 0))  # streamed images: decoded now
  count = len(data.y_test) if isinstance(data.x_test, np.ndarray) else _STREAMED_CHECK
  test = (verify.serving_inputs(np.asarray(data.x_test[:count]), shape, data.standardize),
          data.y_test[:count])
  return exports.export_formats(
      path, spec.export_format, verify.serving_inputs(sample, shape, data.standardize), test,
      spec.verify_export)


def exported(files: Mapping[str, str]) -> Dict[str, Any]:
  """A run's result keys for `files`: "export" (the SavedModel, else the first file), "exports"."""
  return {"export": files.get(portable.SAVED_MODEL) or next(iter(files.values())),
          "exports": files}
