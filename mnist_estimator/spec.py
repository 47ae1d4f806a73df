"""RunSpec: every setting of one run as plain values, built from a model's defaults."""

import dataclasses
import os
import tempfile
from typing import Optional, Sequence

from mnist_estimator import models

# Fields whose value comes from the chosen model (models.MODELS[...].defaults) unless given.
MODEL_DEFAULTED = ("optimizer", "learning_rate", "batch_size", "steps", "dropout",
                   "hidden_units", "activation", "l2", "moving_average_decay",
                   "lr_decay_rate", "lr_decay_steps")


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """Everything a run needs. Build it with `RunSpec.for_model`; change it with `replace`.

  The model-defaulted fields have no default here: a model's seed decides them
  (models.MODELS), so a spec can never carry another model's settings.
  """
  model: str
  optimizer: str
  learning_rate: float
  batch_size: int
  steps: int
  dropout: float
  hidden_units: Sequence[int]
  activation: str
  l2: float
  moving_average_decay: float
  lr_decay_rate: float
  lr_decay_steps: int
  mode: str = "train"
  model_dir: Optional[str] = None
  dataset: str = "mnist"
  data_dir: Optional[str] = None
  eval_batch_size: int = 500
  input: str = "tfdata"
  log_every_n_iter: int = 100
  log_tensors: Sequence[str] = ()
  save_checkpoints_steps: Optional[int] = None
  keep_checkpoint_max: int = 5
  save_summary_steps: int = 100
  histogram_steps: Optional[int] = None  # None: 10 x save_summary_steps
  seed: Optional[int] = None
  intra_op_threads: int = 0
  inter_op_threads: int = 0
  num_predictions: int = 10
  weights_out: Optional[str] = None
  weights_names: Optional[str] = None
  export_dir: Optional[str] = None
  weights_png_dir: Optional[str] = None
  report: bool = True
  eval_every_steps: Optional[int] = None
  early_stopping_steps: Optional[int] = None
  warm_start_from: Optional[str] = None
  warm_start_vars: str = ".*"
  profile_steps: Optional[int] = None
  distribute: str = "none"
  precision: str = "auto"
  window: Optional[int] = None  # weeks per example of a sequence data set (None: its default)
  fallback_checkpoint: bool = False

  @classmethod
  def for_model(cls, model, **overrides):
    """The model's seed defaults, then `overrides`.

    Args:
      model: a registered model name.
      **overrides: RunSpec fields; a model-defaulted field given as None keeps the
        model's default (an unset flag).

    Returns:
      A RunSpec.

    Raises:
      UsageError: for an unknown model.
      TypeError: for a name that is not a RunSpec field.
    """
    values = dict(models.get_model(model).defaults)
    values.update({key: value for key, value in overrides.items()
                   if value is not None or key not in MODEL_DEFAULTED})
    values["hidden_units"] = tuple(int(unit) for unit in values["hidden_units"])
    values["log_tensors"] = tuple(values.get("log_tensors", ()))
    return cls(model=model, **values)

  def replace(self, **changes):
    """A copy with `changes` (dataclasses.replace)."""
    return dataclasses.replace(self, **changes)


def field_names():
  """Every RunSpec field name, in declaration order."""
  return [field.name for field in dataclasses.fields(RunSpec)]


def default_model_dir(model, dataset):
  """A stable model_dir per model and data set, so re-running a command resumes it."""
  return os.path.join(tempfile.gettempdir(), "mnist_estimator", f"{model}-{dataset}")
