"""The Python API: train, evaluate, export and predict from a notebook, as the command line does.

    import mnist_estimator as me

    run = me.train("cnn", dataset="mnist_sample", steps=50)    # settings: the CLI's flag names
    me.evaluate(run.model_dir)                                  # the run's contract: no settings
    me.predict(run.model_dir, images)                           # arrays or image files
    me.export(run.model_dir, formats=["saved_model", "tflite"])

Every function builds a RunSpec from its settings (the RunSpec fields, named as the flags) and
hands it to run.runner, as `python -m mnist_estimator.main` does: main calls these functions.
"""

import dataclasses
import io
import os
import sys
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from mnist_estimator.common import cli

# First: TF's start-up lines kept off the notebook. Nothing frozen: the notebook's own objects
# (alive at this moment) must stay collectable.
cli.import_tensorflow(freeze=False)

from mnist_estimator.api.specs import make_spec  # pylint: disable=g-import-not-at-top
from mnist_estimator.api.specs import model_label
from mnist_estimator.api.specs import only_mode
from mnist_estimator.common import saved_model as saved_model_lib
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.estimator import checkpoints
from mnist_estimator.predict import main as predict_main
from mnist_estimator.predict import model as predict_model
from mnist_estimator.run import contract
from mnist_estimator.run import runner
from mnist_estimator.run import spec as spec_lib

# A model: a registered name, PATH:FUNCTION, or a Python function (its module:name).
Model = Union[str, Callable[..., Any]]
# export()'s export_dir when none is given: beside the checkpoints (predict looks there too).
MODEL_DIR_EXPORT = "{model_dir}/export"


@dataclasses.dataclass(frozen=True)
class Result:
  """What a run produced.

  Attributes:
    model_dir: the checkpoints, summaries and the run's record.
    metrics: the test set's evaluation ({"accuracy", "loss", "global_step", ...}), or None.
    export: the SavedModel version written (else the first file), or None.
    exports: {format: path} of every file written (saved_model, tflite, ...).
    predictions: mode "predict": (index, label, class, probability) rows of the test images.
  """
  model_dir: str
  metrics: Optional[Dict[str, Any]] = None
  export: Optional[str] = None
  exports: Dict[str, str] = dataclasses.field(default_factory=dict)
  predictions: Optional[List[Any]] = None

  @property
  def accuracy(self) -> Optional[float]:
    """The test accuracy, or None."""
    return (self.metrics or {}).get("accuracy")


@dataclasses.dataclass(frozen=True)
class Predictions:
  """The model's answers for some images.

  Attributes:
    classes: int [N], the most probable class of each image.
    probabilities: float32 [N, n_classes].
    class_names: the model's class names in order ("0".."9" for digits).
    model: the SavedModel version (or .tflite/.onnx file) that predicted.
    labels: int [N] where known (labels given, or a folder's class subfolders), else None.
  """
  classes: np.ndarray
  probabilities: np.ndarray
  class_names: List[str]
  model: str
  labels: Optional[np.ndarray] = None

  @property
  def names(self) -> List[str]:
    """The class name of each image's prediction."""
    return [self.class_names[c] for c in self.classes]

  @property
  def accuracy(self) -> Optional[float]:
    """The share predicted right, where the labels are known."""
    return None if self.labels is None else float(np.mean(self.classes == self.labels))


def settings() -> Dict[str, str]:
  """Every setting the functions take (the CLI's flag names) and its help."""
  return {name: spec_lib.option(name).help for name in spec_lib.field_names()}


def train(model: Model = spec_lib.DEFAULT_MODEL, dataset: str = "mnist_sample",
          model_dir: Optional[str] = None, *, data: Optional[datasets.Dataset] = None,
          **settings: Any) -> Result:
  """Trains `model` on `dataset`, then evaluates it on the test set (mode "train").

  Args:
    model: a registered name ("cnn", "mlp", ...), PATH:FUNCTION, or your own Python function:
      `logits(features, mode, params)`, or a whole `model_fn(features, labels, mode, params)`,
      defined at the top level of a module or notebook cell.
    dataset: a registered data set, or folder:DIR, npz:FILE, tfrecord:GLOB.
    model_dir: where the checkpoints go; None: <tmp>/mnist_estimator/<model>-<dataset>.
    data: a datasets.Dataset to train on instead of loading `dataset`.
    **settings: RunSpec fields, e.g. steps=200, batch_size=32, export_dir="exports";
      mode="train_and_evaluate" evaluates the validation set along the way.

  Returns:
    The Result: metrics, model_dir, and the export when export_dir is given.

  Raises:
    UsageError: an unknown or invalid setting, or anything the CLI would refuse.
  """
  mode = settings.pop("mode", "train")
  if mode not in contract.TRAINING_MODES:
    raise UsageError(f"train() trains: mode={mode!r} is one of evaluate(), export() and run()")
  return run(mode=mode, model=model, dataset=dataset, model_dir=model_dir, data=data,
             **settings)


def evaluate(model_dir: Optional[str] = None, *, data: Optional[datasets.Dataset] = None,
             **settings: Any) -> Result:
  """Evaluates model_dir's newest checkpoint on the test set of the data it was trained on.

  Args:
    model_dir: a trained model_dir; its record gives the model and data settings.
    data: a datasets.Dataset to evaluate instead of the recorded data set.
    **settings: RunSpec fields that may differ from the record (eval_batch_size, report...).

  Returns:
    The Result with the metrics.

  Raises:
    UsageError: no checkpoint there, or a setting the record contradicts.
  """
  return run(mode=only_mode(settings, "evaluate"), model_dir=model_dir, data=data, **settings)


def export(model_dir: Optional[str] = None, formats: Union[str, Sequence[str], None] = None,
           export_dir: Optional[str] = MODEL_DIR_EXPORT, *,
           data: Optional[datasets.Dataset] = None, **settings: Any) -> Result:
  """Exports model_dir's newest checkpoint as a SavedModel (and .tflite/.onnx files beside it).

  Args:
    model_dir: a trained model_dir.
    formats: saved_model, tflite, tflite_int8, onnx (a list, or one name); default saved_model.
    export_dir: the folder of the timestamped versions; default <model_dir>/export.
    data: a datasets.Dataset for the checks instead of the recorded data set.
    **settings: RunSpec fields (verify_export, representative_examples, ...).

  Returns:
    The Result: export (the SavedModel version) and exports ({format: path}).

  Raises:
    UsageError: no checkpoint, an unknown format, or export_dir=None.
  """
  if formats is not None:
    if "export_format" in settings:
      raise UsageError("give formats= or export_format=, not both")
    settings["export_format"] = [formats] if isinstance(formats, str) else list(formats)
  if export_dir == MODEL_DIR_EXPORT:
    default_dataset = str(spec_lib.RunSpec.__dataclass_fields__["dataset"].default)
    export_dir = MODEL_DIR_EXPORT.format(model_dir=model_dir or spec_lib.default_model_dir(
        model_label(settings.get("model") or spec_lib.DEFAULT_MODEL),
        settings.get("dataset") or default_dataset))
  return run(mode=only_mode(settings, "export"), model_dir=model_dir, export_dir=export_dir,
             data=data, **settings)


def run(mode: str = "train", *, data: Optional[datasets.Dataset] = None,
        **settings: Any) -> Result:
  """Any --mode with the CLI's defaults: `main --mode=MODE --NAME=VALUE ...` as a function.

  Args:
    mode: train, evaluate, train_and_evaluate, predict, weights or export.
    data: a datasets.Dataset instead of loading settings' dataset.
    **settings: RunSpec fields.

  Returns:
    The Result.

  Raises:
    UsageError: an unknown or invalid setting, or anything the CLI would refuse.
  """
  spec = make_spec(mode=mode, **settings)
  cli.quiet_tensorflow()
  produced = runner.run(spec, data)
  metrics = produced.get("metrics")
  return Result(model_dir=produced["model_dir"], export=produced.get("export"),
                metrics=metrics and {k: np.asarray(v).tolist() for k, v in metrics.items()},
                exports=dict(produced.get("exports") or {}),
                predictions=produced.get("predictions"))


def predict(model: str, images: Any, *, labels: Any = None, invert: str = "auto",
            resize: bool = False, batch_size: int = 1000) -> Predictions:
  """Predicts images with an export, a .tflite/.onnx file, or a model_dir's newest checkpoint.

  Args:
    model: a SavedModel, an export folder (its newest version), a .tflite or .onnx file, or
      a trained model_dir (exported to <model_dir>/export first where that is older).
    images: an array (uint8 0..255 or float 0..1; [N, H, W(, C)], or one [H, W] image), or
      image/data files and folders (a path or a list), read as the predict command reads them.
    labels: files: a labels file (IDX, .npy, .npz); arrays: the labels; optional.
    invert: files: auto, yes or no (see `python -m mnist_estimator.predict --helpshort`).
    resize: files: scale images of another size to the model's.
    batch_size: images per model call.

  Returns:
    Predictions: classes, probabilities, class_names (and labels, accuracy where known).

  Raises:
    UsageError: no model there, or images that do not fit it.
  """
  path = _servable(os.fspath(model))
  if isinstance(images, (str, os.PathLike)) or (
      isinstance(images, (list, tuple)) and images and
      all(isinstance(item, (str, os.PathLike)) for item in images)):
    paths = [images] if isinstance(images, (str, os.PathLike)) else images
    found = predict_main.predict_files(path, [os.fspath(p) for p in paths], labels, invert,
                                       resize, batch_size, max_lines=0, out=io.StringIO())
    return Predictions(found["classes"], found["probabilities"], _class_names(path), path,
                       found["labels"])
  loaded = predict_model.load_model(path)
  images = np.asarray(images)
  if images.ndim == 2:  # one image
    images = images[np.newaxis]
  classes, probabilities = predict_model.predict(loaded, images, batch_size)
  return Predictions(classes, probabilities, loaded.class_names, loaded.path,
                     None if labels is None else np.asarray(labels))


def _class_names(path: str) -> List[str]:
  """A SavedModel's class names (assets.extra), or a model file's."""
  if os.path.isfile(path):
    return predict_model.load_model(path).class_names
  version = saved_model_lib.newest(path)
  names = saved_model_lib.class_names(version)
  if names:
    return names
  return predict_model.load_model(version).class_names


def _servable(path: str) -> str:
  """A model file or SavedModel as it is; a model_dir's newest checkpoint, exported if needed."""
  if os.path.isfile(path) or saved_model_lib.versions(path):
    return path
  found = checkpoints.on_disk(path)
  if not found:
    raise UsageError(f"{path} is no SavedModel, export folder, .tflite/.onnx file or model_dir "
                     "with a checkpoint; train or export first")
  base = MODEL_DIR_EXPORT.format(model_dir=path)
  newest = max(saved_model_lib.versions(base).items(), default=(None, None))[1]
  trained = max(os.path.getmtime(prefix + ".index") for prefix in found.values()
                if os.path.isfile(prefix + ".index"))
  if newest and os.path.getmtime(os.path.join(newest, saved_model_lib.PB)) >= trained:
    return newest
  stdout, sys.stdout = sys.stdout, io.StringIO()  # the export's header: noise here
  try:
    exported = export(path, export_dir=base).export
  finally:
    sys.stdout = stdout
  assert exported is not None, "an export writes a SavedModel version"
  print(f"exported {path}'s newest checkpoint for predict: {exported}")
  return exported


def load_data(dataset: str = "mnist_sample", data_dir: Optional[str] = None) -> datasets.Dataset:
  """A data set as training reads it: x_train, y_train, x_test, y_test, class_names, ...

  Raises:
    UsageError: an unknown data set, or files missing in data_dir.
  """
  return datasets.load(dataset, data_dir)


class _CallablePackage(types.ModuleType):
  """mnist_estimator.predict is the predict command's package and, called, the API's predict."""

  def __call__(self, *args: Any, **kwargs: Any) -> Predictions:
    return predict(*args, **kwargs)


# `mnist_estimator.predict(...)` reaches the package (an attribute once it is imported).
sys.modules["mnist_estimator.predict"].__class__ = _CallablePackage

# The function of each --mode; main calls MODES[mode](**the flags' settings).
MODES: Dict[str, Callable[..., Result]] = {
    "train": train, "train_and_evaluate": train, "evaluate": evaluate, "export": export,
    "predict": run, "weights": run}
assert set(MODES) == set(spec_lib.MODES), "a function for every --mode"
