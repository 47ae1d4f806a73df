"""The model_dir as the contract: what training recorded, and what the other modes take from it.

A training run records its model and data settings and what its data means (class names in
order, image shape, decoding, the training images' border brightness, the source). Evaluate,
export, predict and weights take from that record every setting the user left at its default,
so `--mode=evaluate --model_dir=M` evaluates the model M holds on the data it was trained on.
Class names are matched by name; another class list is refused in one line.
"""

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import decode as decode_lib
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.run import spec as spec_lib

TRAINING_MODES = ("train", "train_and_evaluate")
# What says which data a model reads, and how (the held-out split follows the seed).
DATA_FIELDS = ("dataset", "data_dir", "window", "image_size", "channels", "validation_split",
               "test_split", "skip_bad_images", "seed", "stream")
_BORDER_SAMPLE = 2000  # training images whose border gives the polarity


def adopted_fields() -> Tuple[str, ...]:
  """The fields a non-training mode takes from the record: the model's and the data's."""
  return tuple(dict.fromkeys(("model", *spec_lib.names_with("param"), *DATA_FIELDS)))


def settings(spec: spec_lib.RunSpec) -> Dict[str, Any]:
  """The spec's adopted fields as JSON values (tuples as lists)."""
  return {name: list(value) if isinstance(value, tuple) else value
          for name in adopted_fields() for value in [getattr(spec, name)]}


def _default(model: str, name: str, dataset: str) -> Any:
  """The value field `name` has when its flag is not given, for `model` on `dataset`."""
  option = spec_lib.option(name)
  if option.model_defaulted:
    value = spec_lib.defaults(model, dataset)[name]
    return tuple(value) if isinstance(value, (list, tuple)) else value
  field = spec_lib.RunSpec.__dataclass_fields__[name]
  return field.default


def _same(value: Any, recorded: Any) -> bool:
  return (tuple(value) if isinstance(value, (list, tuple)) else value) == (
      tuple(recorded) if isinstance(recorded, (list, tuple)) else recorded)


def adopt(spec: spec_lib.RunSpec,
          found: Optional[Mapping[str, Any]]) -> Tuple[spec_lib.RunSpec, List[str]]:
  """For evaluate, export, predict and weights: the record's settings where spec has defaults.

  A setting the user gave (one that differs from its default) is kept; a model given that
  differs from the recorded one is left for the record check to refuse.

  Returns:
    (the spec, [names taken from the record]).
  """
  recorded = (found or {}).get("settings")
  if spec.mode in TRAINING_MODES or not recorded:
    return spec, []
  model = spec.model
  if recorded.get("model") and model != recorded["model"] and model == spec_lib.DEFAULT_MODEL:
    model = recorded["model"]
  changes: Dict[str, Any] = {}
  taken = ["model"] if model != spec.model else []
  dataset = spec.dataset  # as given: the defaults the spec was built with
  for name in adopted_fields():
    if name == "model" or name not in recorded:
      continue
    value = getattr(spec, name)
    if _same(value, _default(spec.model, name, dataset)) and not _same(value, recorded[name]):
      changes[name] = tuple(recorded[name]) if isinstance(recorded[name], list) else \
          recorded[name]
      taken.append(name)
  if model != spec.model:  # the other model's defaults for what neither side names
    kept = {name: getattr(spec, name) for name in spec_lib.field_names() if name != "model"
            and not _same(getattr(spec, name), _default(spec.model, name, dataset))}
    spec = spec_lib.RunSpec.for_model(model, **{**kept, **changes})
  else:
    spec = spec.replace(**changes)
  return spec, taken


def data_record(data: Dataset) -> Dict[str, Any]:
  """What the data means, for the record and the export: classes, shape, decoding, polarity."""
  if data.standardize is not None:  # a series: no images to decode or invert
    return {"class_names": class_names(data), "image_shape": list(data.image_shape),
            "source": data.source, "dataset": data.name}
  height, width, channels = data.image_shape
  decoding = data.decoding or decode_lib.Decoding(height, width, channels)
  # Streamed images are decoded for this: a few hundred tell the polarity as well.
  sample = np.asarray(data.x_train[:_BORDER_SAMPLE if isinstance(data.x_train, np.ndarray)
                                   else _BORDER_SAMPLE // 8])
  return {"class_names": class_names(data), "image_shape": list(data.image_shape),
          "decoding": decoding.as_dict(), "border_mean": decode_lib.border_mean(sample),
          "source": data.source, "dataset": data.name}


def class_names(data: Dataset) -> List[str]:
  """The data's class names, or the class ids "0".."n-1"."""
  return [str(name) for name in data.class_names or range(data.n_classes)]


def match_classes(model_dir: str, found: Optional[Mapping[str, Any]],
                  data: Dataset) -> Tuple[Dataset, bool]:
  """The data with its labels in the recorded class order, or refused if the classes differ.

  Raises:
    UsageError: the data's class names are not the ones model_dir was trained on.
  """
  recorded = ((found or {}).get("data") or {}).get("class_names")
  names = class_names(data)
  if not recorded or names == recorded:
    return data, False
  if sorted(names) != sorted(recorded):
    missing = [n for n in recorded if n not in names]
    new = [n for n in names if n not in recorded]
    what = "; ".join(part for part in (
        f"new: {', '.join(new[:5])}" if new else "", f"missing: {', '.join(missing[:5])}"
        if missing else "") if part)
    raise UsageError(
        f"--model_dir {model_dir} was trained on the classes {_listed(recorded)}; "
        f"{data.name} has {_listed(names)} ({what}); name the class folders as in training, "
        "or train this data into another --model_dir")
  order = np.array([recorded.index(name) for name in names], np.int32)
  y_val = None if data.y_val is None else order[data.y_val]
  return dataclasses.replace(data, y_train=order[data.y_train], y_test=order[data.y_test],
                             y_val=y_val, class_names=tuple(recorded)), True


def _listed(names: Sequence[str]) -> str:
  return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
