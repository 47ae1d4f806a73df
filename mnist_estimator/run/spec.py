"""RunSpec: every setting of one run; each field carries its flag's default, help and roles."""

import dataclasses
import hashlib
import os
import re
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

from mnist_estimator import models
from mnist_estimator import portable
from mnist_estimator.common import precision
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.estimator import config as est_config
from mnist_estimator.estimator import hooks
from mnist_estimator.head import optimizers
from mnist_estimator.inputs import augment as augment_lib
from mnist_estimator.inputs import input_fns
from mnist_estimator.models import layers

# The network a command line trains when --model is not given: the tutorial's.
DEFAULT_MODEL = "cnn"
# A seed model on data of your own (folder:, npz:, tfrecord:) trains with this recipe where
# no flag says otherwise: the seeds' settings suit their data (cnn's SGD at 0.001 scored
# chance on a folder after 300 steps), Keras' fit defaults suit most image folders.
OWN_DATA_RECIPE = {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 32,
                   "lr_decay_rate": 1.0, "lr_decay_steps": 0, "moving_average_decay": 0.0}
OWN_DATA_EPOCHS = 10
# The modes of run.runner.MODES, in --helpshort's order.
MODES = ("train", "evaluate", "train_and_evaluate", "predict", "weights", "export")
# Option.base of a field that no model decides.
_OWN_DEFAULT = object()
# --conv_algorithm's values (models/layers.winograd_convs).
CONV_ALGORITHMS = ("winograd", "direct")
# Help groups, in the order --helpshort shows them.
GROUPS = ("model", "data", "training", "checkpoints and summaries", "export", "distribution",
          "speed")


@dataclasses.dataclass(frozen=True)
class Option:
  """What the rest of the package knows about one RunSpec field.

  Attributes:
    group: its --helpshort group.
    help: the flag's help.
    choices: allowed values (an enum flag), or None.
    lower, upper: bounds of a number, or None.
    base: for a model-defaulted field, its value where the model names none.
    hparam: compared by TensorBoard's HParams dashboard.
    header: shown on a header line of its own, not among the changed settings.
    record: the name it has in the model_dir record (it shapes the variables), or None.
    record_value: turns the value into the recorded one.
    param: handed to the model_fn in params.
    validator: (check, message) run on the parsed flag value.
  """
  group: str
  help: str
  choices: Optional[Sequence[Any]] = None
  lower: Optional[float] = None
  upper: Optional[float] = None
  base: Any = _OWN_DEFAULT
  hparam: bool = False
  header: bool = False
  record: Optional[str] = None
  record_value: Callable[[Any], Any] = lambda value: value
  param: bool = False
  validator: Optional[Tuple[Callable[[Any], bool], str]] = None

  @property
  def model_defaulted(self) -> bool:
    """The chosen model decides the value unless it is given."""
    return self.base is not _OWN_DEFAULT


def _option(default: Any = dataclasses.MISSING, **meta: Any) -> Any:
  """A RunSpec field; a model-defaulted one (meta "base") has no default of its own."""
  option = Option(**meta)
  if option.model_defaulted:
    return dataclasses.field(metadata={"option": option})
  return dataclasses.field(default=default, metadata={"option": option})


def _positive_ints(value: Optional[Sequence[Any]]) -> bool:
  return value is None or all(str(item).strip().isdigit() and int(item) > 0 for item in value)


def _known_model(name: str) -> bool:
  return name in models.MODELS or models.custom.is_import_path(name)


def _known_augment(names: Optional[augment_lib.Names]) -> bool:
  augment_lib.check(names or ())  # its UsageError says which entry and why
  return True


def _known_dataset(name: str) -> bool:
  return datasets.known(name)


def _size(text: Optional[str]) -> bool:
  return text is None or datasets.parse_size(text) is not None


def _known_formats(names: Sequence[str]) -> bool:
  return bool(names) and set(names) <= set(portable.FORMATS)


def _known_tensors(names: Sequence[str]) -> bool:
  return set(names) <= set(hooks.LOG_TENSORS)


M, D, T, C, E = GROUPS[:5]


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """Everything a run needs. Build it with `RunSpec.for_model`; change it with `replace`.

  The model-defaulted fields have no default here: a model's seed decides them
  (models.MODELS), so a spec can never carry another model's settings.
  """
  model: str = _option(group=M, help=(
      f"Network to train: {', '.join(models.model_names())}; or your own as PATH:FUNCTION "
      "(./nets.py:small_cnn, mypkg.nets:small_cnn): a logits function or a full model_fn "
      "(models/custom.py)."), hparam=True, header=True, record="model", param=True,
      validator=(_known_model, "--model takes a registered name (see --helpshort) or "
                 "PATH:FUNCTION, e.g. --model=./nets.py:small_cnn"))
  optimizer: str = _option(group=T, help="Optimizer.", choices=optimizers.optimizer_names(),
                           base="adam", hparam=True, record="optimizer", param=True)
  learning_rate: float = _option(group=T, help="Learning rate.", lower=0, base=0.001,
                                 hparam=True, param=True)
  batch_size: int = _option(group=T, help="Training batch size.", lower=1, base=100,
                            hparam=True)
  steps: int = _option(group=T, help="Train until this global step (or give --epochs).",
                       lower=1, base=1000, hparam=True)
  dropout: float = _option(group=M, help="Dropout rate in TRAIN mode.", lower=0, upper=0.99,
                           base=0.0, hparam=True, param=True)
  hidden_units: Sequence[int] = _option(
      group=M, help="Hidden layer sizes, e.g. 128,32.", base=(), hparam=True,
      record="hidden_units", record_value=list, param=True,
      validator=(_positive_ints,
                 "--hidden_units must be comma-separated positive integers, e.g. 128,32"))
  activation: str = _option(group=M, help="Hidden activation.",
                            choices=sorted(layers.ACTIVATIONS), base="relu", hparam=True,
                            param=True)
  l2: float = _option(group=T, help="L2 scale on kernels: l2 * sum(w**2) / 2.", lower=0,
                      base=0.0, hparam=True, param=True)
  moving_average_decay: float = _option(
      group=T, help="ExponentialMovingAverage of the weights used for evaluate/predict/"
      "export; 0 = off.", lower=0, upper=0.99999, base=0.0, hparam=True,
      record="moving_average", record_value=bool, param=True)
  lr_decay_rate: float = _option(group=T, help="Staircase exponential learning-rate decay "
                                 "per --lr_decay_steps; 1 = off.", lower=0, upper=1, base=1.0,
                                 hparam=True, param=True)
  lr_decay_steps: int = _option(group=T, help="Steps per decay stair; 0 = one epoch.", lower=0,
                                base=0, hparam=True, param=True)
  lr_schedule: str = _option(group=T, help=optimizers.schedule_help(),
                             choices=list(optimizers.SCHEDULES), base="decay", hparam=True,
                             param=True)
  lr_warmup: float = _option(group=T, help="--lr_schedule=one_cycle: the share of the steps "
                             "over which the rate rises.", lower=0, upper=0.99, base=0.25,
                             hparam=True, param=True)
  adam_beta1: float = _option(group=T, help="Adam's beta1 (decay of its mean gradient).",
                              lower=0, upper=0.99999, base=0.9, hparam=True, param=True)
  adam_beta2: float = _option(group=T, help="Adam's beta2 (decay of its squared gradient).",
                              lower=0, upper=0.99999, base=0.999, hparam=True, param=True)
  adam_epsilon: float = _option(group=T, help="Adam's epsilon (added to the root of its "
                                "squared gradient); TensorFlow 1's default 1e-8, Keras' 1e-7.",
                                lower=1e-12, upper=1.0, base=1e-8, hparam=True, param=True)
  epochs: Optional[int] = _option(None, group=T, lower=1, hparam=True, help=(
      "Train for N passes over the training set (instead of --steps): until global step "
      "N x ceil(train images / --batch_size). Your own data trains "
      f"{OWN_DATA_EPOCHS} epochs unless --steps or --epochs is given."))
  mode: str = _option("train", group=M, choices=MODES, header=True, help=(
      "train (then evaluate), evaluate, train_and_evaluate, predict (the first "
      "--num_predictions test images), weights (list / save) or export."))
  model_dir: Optional[str] = _option(None, group=M, header=True, help=(
      "Checkpoints and summaries; default <tmp>/mnist_estimator/<model>-<dataset>, printed "
      "at start."))
  dataset: str = _option("mnist", group=D, help=datasets.help_text(), hparam=True, header=True,
                         validator=(_known_dataset, "--dataset takes a registered name (see "
                                    f"--helpshort) or {datasets.own_forms()}"))
  data_dir: Optional[str] = _option(None, group=D, header=True, help=(
      "Folder with the data set's files (MNIST: the four IDX files, gzip or raw, or "
      "mnist.npz); default: the tf.keras cache."))
  window: Optional[int] = _option(None, group=D, lower=1, help=(
      "--dataset=weather: weeks per example, labelled with the last week's season "
      "(default 52, see data/weather.py)."))
  image_size: Optional[str] = _option(None, group=D, help=(
      "Your own images (folder:, tfrecord:): resize every image to HxW, e.g. 32x32 "
      "(default: the size they all have)."), validator=(_size, "--image_size is HxW, e.g. 28x28"))
  channels: Optional[int] = _option(None, group=D, help=(
      "Your own images: 1 (gray) or 3 (RGB) (default: 3 if any image has colour, else 1)."),
      validator=(lambda c: c in (None, 1, 3), "--channels is 1 or 3"))
  validation_split: Optional[float] = _option(None, group=D, lower=0.0, upper=0.9, help=(
      "The share of each class of the training images held out as the validation set, "
      "seeded by --seed: train_and_evaluate's evaluations, early stopping and export/best "
      "use it, the final evaluation is on the test set. Default: the data's own (a val/ "
      "folder, an npz's x_val, a third tfrecord glob), else the built-in cut (mnist, "
      "fashion_mnist: the last 5,000 training images; mnist_sample: the last 500), else "
      "0.1; fonts and weather: none. 0 = no validation set (evaluations use the test set)."))
  test_split: Optional[float] = _option(None, group=D, lower=0.0, upper=0.9, help=(
      "Your own images without a test split (no DIR/test, no TEST_GLOB): the share of each "
      "class held out as the test set, seeded by --seed (default 0.1); refused where the "
      "data has one."))
  augment: Sequence[str] = _option((), group=D, hparam=True, param=True, help=(
      "Augment the training images (never evaluation's), seeded by --seed: a comma list "
      "from: " + ", ".join(augment_lib.NAMES) + " (inputs/augment.py)."),
      validator=(_known_augment, "--augment takes a comma list of: "
                 + ", ".join(augment_lib.NAMES) + " (each may be NAME:STRENGTH, e.g. "
                 "shift:0.15)"))
  class_weight: Optional[str] = _option(None, group=T, hparam=True, help=(
      "Weigh each class in the training loss: balanced (n / (classes x count), as Keras and "
      "sklearn) or a FILE of name:weight lines (unlisted classes 1)."))
  stream: str = _option("auto", group=D, choices=("auto", "yes", "no"), help=(
      "Your folder's images: read from the files while training (yes), or decoded into "
      "memory once (no); auto streams a folder whose decoded images would not fit in "
      "memory comfortably (over 512 MiB decoded, or a quarter of the free memory)."))
  cache_decoded: bool = _option(False, group=D, help=(
      "Streamed images: keep them decoded and resized in TFRecord shards in the cache "
      "folder ($MNIST_ESTIMATOR_CACHE, else <tmp>/mnist_estimator_cache), so later epochs "
      "and runs read those instead of decoding the files again."))
  skip_bad_images: bool = _option(False, group=D, help=(
      "Your own images: skip (and count) files that do not decode, instead of refusing."))
  seed: Optional[int] = _option(None, group=M, hparam=True, help=(
      "Random seed for initializers, dropout and shuffling."))
  eval_batch_size: int = _option(500, group=T, lower=1, help="Evaluation/predict batch size.")
  input: str = _option("tfdata", group=T, choices=input_fns.INPUT_KINDS, hparam=True, help=(
      "tfdata (fast, default) or numpy (the tutorial's numpy_input_fn)."))
  eval_every_steps: Optional[int] = _option(None, group=T, lower=1, help=(
      "train_and_evaluate: checkpoint and evaluate every N steps (default: tf.estimator's, on "
      "checkpoints every 600 s)."))
  early_stopping_steps: Optional[int] = _option(None, group=T, lower=1, help=(
      "train_and_evaluate: stop when eval accuracy has not improved for N steps."))
  stop_at_accuracy: Optional[float] = _option(None, group=T, lower=0.0, upper=1.0, help=(
      "train_and_evaluate: stop at the first evaluation with at least this accuracy (of the "
      "validation set; of the test set with --validation_split=0)."))
  warm_start_from: Optional[str] = _option(None, group=T, help=(
      "Initialise from this checkpoint or model_dir (when model_dir has no checkpoint yet)."))
  warm_start_vars: str = _option(".*", group=T, help="Regex of the variables to warm-start.")
  log_every_n_iter: int = _option(100, group=C, lower=1, help="Progress line every N steps.")
  log_tensors: Sequence[str] = _option((), group=C, help=(
      "Also log these tensors every N steps; from: "
      f"{', '.join(sorted(hooks.LOG_TENSORS))} (the tutorial: probabilities)."),
      validator=(_known_tensors,
                 f"--log_tensors takes names from: {', '.join(sorted(hooks.LOG_TENSORS))}"))
  save_checkpoints_steps: Optional[int] = _option(None, group=C, lower=1, help=(
      "Checkpoint every N steps (default: every 600 s and at the end)."))
  keep_checkpoint_max: int = _option(5, group=C, lower=1, help="Checkpoints to keep.")
  fallback_checkpoint: bool = _option(False, group=C, help=(
      "If the newest checkpoint is unreadable, use the newest readable one (announced) "
      "instead of refusing."))
  save_summary_steps: int = _option(100, group=C, lower=1, help="Summaries every N steps.")
  histogram_steps: Optional[int] = _option(None, group=C, lower=1, param=True, help=(
      "Weight histograms, input images and conv filter grids every N steps (default 10 x "
      "--save_summary_steps)."))
  report: bool = _option(True, group=C, help=(
      "After evaluating, write model_dir/eval_report/ (JSON, confusion matrix, worst errors) "
      "and print per-class metrics."))
  export_dir: Optional[str] = _option(None, group=E, help=(
      "Export a SavedModel under this folder after training (and with --mode=export)."))
  export_format: Sequence[str] = _option((portable.SAVED_MODEL,), group=E, help=(
      f"What --export_dir gets, comma-separated: {portable.help_text()}; each file beside "
      "the SavedModel version, checked against it on the test set."),
      validator=(_known_formats,
                 f"--export_format takes names from: {', '.join(portable.FORMATS)}"))
  representative_examples: int = _option(500, group=E, lower=1, help=(
      "tflite_int8: training images (sampled by --seed) that calibrate the quantization."))
  verify_export: bool = _option(True, group=E, help=(
      "Check each --export_format file against the SavedModel and print the table."))
  num_predictions: int = _option(10, group=E, lower=1, help=(
      "--mode=predict: test images to predict."))
  weights_out: Optional[str] = _option(None, group=E, help=(
      "--mode=weights: save layer weights to this .npz."))
  weights_names: Optional[str] = _option(None, group=E, help=(
      "--mode=weights: regex of names to save."))
  weights_png_dir: Optional[str] = _option(None, group=E, help=(
      "--mode=weights: draw conv filters and per-class weight maps (matching "
      "--weights_names) as PNGs here."))
  distribute: str = _option("none", group="distribution", choices=est_config.DISTRIBUTE,
                            hparam=True, help=(
                                "mirrored: replicate over all local devices "
                                "(MirroredStrategy; --batch_size is per device)."))
  precision: str = _option("auto", group="speed", choices=precision.PRECISIONS, hparam=True,
                           help=("The training step's compute: bf16 (float32 master weights "
                                 "and loss) where the CPU has AVX512_BF16 or AMX-BF16, else "
                                 "fp32 (auto); or either one. Evaluate, predict and export "
                                 "always run fp32."))
  conv_algorithm: str = _option("winograd", group="speed", choices=CONV_ALGORITHMS,
                                param=True, help=(
      "How the training step computes a 5x5 'same' convolution of 8 or more float32 input "
      "channels: winograd (F(4x4, 5x5) as matmuls, about 4 multiply-adds per output where "
      "oneDNN's direct convolution does 25) or direct. Evaluate, predict and export always "
      "run direct."))
  profile_steps: Optional[int] = _option(None, group="speed", lower=1, help=(
      "Write a Chrome trace of one step every N steps to model_dir/profile."))
  intra_op_threads: int = _option(0, group="speed", lower=0, help=(
      "Threads within an op (0: TF decides)."))
  inter_op_threads: int = _option(0, group="speed", lower=0, help=(
      "Ops in parallel (0: TF decides)."))

  @classmethod
  def for_model(cls, model: str, **overrides: Any) -> "RunSpec":
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
    defaulted = model_defaulted()
    dataset = cast(str, overrides.get("dataset")
                   or RunSpec.__dataclass_fields__["dataset"].default)
    values = defaults(model, dataset)
    given = {key for key, value in overrides.items() if value is not None}
    if {"steps", "epochs"} <= given:
      raise UsageError(f"--steps={overrides['steps']} and --epochs={overrides['epochs']} both "
                       "say how long to train; give one of them")
    info = models.get_model(model)
    if (own_data(dataset) and not {"steps", "epochs"} & given
        and (info.registered or "steps" not in info.defaults)):
      overrides = {**overrides, "epochs": OWN_DATA_EPOCHS}
    values.update({key: value for key, value in overrides.items()
                   if value is not None or key not in defaulted})
    values["hidden_units"] = tuple(int(unit) for unit in values["hidden_units"])
    values["log_tensors"] = tuple(values.get("log_tensors", ()))
    values["augment"] = tuple(item.strip() for item in values.get("augment") or () if item)
    values["export_format"] = tuple(values.get("export_format") or (portable.SAVED_MODEL,))
    return cls(model=model, **values)

  def replace(self, **changes: Any) -> "RunSpec":
    """A copy with `changes` (dataclasses.replace)."""
    return dataclasses.replace(self, **changes)

  def steps_per_epoch(self, train_examples: int) -> int:
    """Batches in one pass over train_examples: the last may be partial; at least 1."""
    return max(1, -(-train_examples // self.batch_size))


def field_names() -> List[str]:
  """Every RunSpec field name, in declaration order."""
  return [field.name for field in dataclasses.fields(RunSpec)]


def option(name: str) -> Option:
  """The Option of field `name`."""
  return RunSpec.__dataclass_fields__[name].metadata["option"]


def names_with(role: str) -> Tuple[str, ...]:
  """The field names whose Option has `role` (an attribute name) set, in field order."""
  return tuple(name for name in field_names() if getattr(option(name), role))


def model_defaulted() -> Tuple[str, ...]:
  """The fields the chosen model decides unless given (their flags default to None)."""
  return names_with("model_defaulted")


def own_data(dataset: str) -> bool:
  """A data set of the user's own (folder:, npz:, tfrecord:), which the seeds never saw."""
  return datasets.known(dataset) and datasets.info(dataset).takes_path


def defaults(model: str, dataset: str) -> Dict[str, Any]:
  """The model-defaulted fields' values for `model` on `dataset`, when no flag gives them.

  The base values, then the model's own defaults; on data of your own a seed model's training
  settings give way to OWN_DATA_RECIPE (a model of yours keeps those it names).

  Raises:
    UsageError: for an unknown model, or a model of yours whose defaults name other fields.
  """
  defaulted = model_defaulted()
  values = {name: option(name).base for name in defaulted}
  info = models.get_model(model)
  unknown = sorted(set(info.defaults) - set(defaulted))
  if unknown:  # a model of the user's names a setting that is not one a model decides
    raise UsageError(f"--model={model}'s defaults name {', '.join(unknown)}; a model sets "
                     f"only: {', '.join(defaulted)}")
  values.update(info.defaults)
  if own_data(dataset):
    values.update({name: value for name, value in OWN_DATA_RECIPE.items()
                   if info.registered or name not in info.defaults})
  return values


def default_model_dir(model: str, dataset: str) -> str:
  """A stable model_dir per model and data set, so re-running a command resumes it.

  A model or data set given by path is named by its last part and a short hash of the
  whole (`small_cnn-folder_shapes-3f2a9c1b`).
  """
  name = f"{model}-{dataset}"
  if ":" in name or os.sep in name:
    short = lambda text: re.sub(r"[^A-Za-z0-9_]+", "_", text.rstrip("/").split("/")[-1])
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    name = f"{short(model.split(':')[-1])}-{short(dataset)}-{digest}"
  return os.path.join(tempfile.gettempdir(), "mnist_estimator", name)
