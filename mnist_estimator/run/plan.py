"""A run planned once: model_dir, precision, RunConfig, params, the record; all below take it."""

import dataclasses
from typing import Any, Dict, Optional, Sequence, cast

from mnist_estimator import models
from mnist_estimator.common import cluster_rules
from mnist_estimator.common import precision as precision_lib
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.data.datasets import Dataset
from mnist_estimator.estimator import config as est_config
from mnist_estimator.estimator import checkpoint_shapes as record_lib
from mnist_estimator.head import class_weights
from mnist_estimator.inputs import augment as augment_lib
from mnist_estimator.run import contract
from mnist_estimator.run import spec as spec_lib

TRAINING_MODES = contract.TRAINING_MODES


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
  """Everything a run works out before it builds a graph.

  Attributes:
    spec: the RunSpec, model_dir filled in.
    data: the Dataset.
    precision: spec.precision resolved on this CPU.
    config: the RunConfig (TF_CONFIG read once: chief or not, cluster or not).
    params: the model_fn's params.
    record: this run's graph, settings and data as the model_dir record keeps them.
    found: the record model_dir already holds, or None.
    model: the model's registry entry (models.get_model), looked up once per run.
    remapped: the data's labels were put in the record's class order (matched by name).
    data_kind: "images" or "series", the data set's kind (its registry entry's).
  """
  spec: spec_lib.RunSpec
  data: Dataset
  precision: precision_lib.Precision
  config: Any  # a tf.estimator.RunConfig
  params: Dict[str, Any]
  record: Dict[str, Any]
  found: Optional[Dict[str, Any]]
  model: models.ModelInfo
  remapped: bool = False  # the data's classes were put in the recorded order, by name
  data_kind: str = "images"

  @property
  def training(self) -> bool:
    return self.spec.mode in TRAINING_MODES

  @property
  def chief(self) -> bool:
    """This process writes what a run writes once: records, stats, exports, the report."""
    return self.config.is_chief

  @property
  def local(self) -> bool:
    """No TF_CONFIG cluster."""
    return not self.config.cluster_spec.as_dict()

  @property
  def log_name(self) -> str:
    """One log file per process: the chief's (or a local run's) and one per other task."""
    if self.chief:
      return "mnist_estimator.log"
    return f"mnist_estimator-{self.config.task_type}{self.config.task_id}.log"


def params(spec: spec_lib.RunSpec, data: Dataset,
           precision: Optional[precision_lib.Precision] = None,
           info: Optional[models.ModelInfo] = None) -> Dict[str, Any]:
  """The model_fn's params of spec on data (see model_params), with its class names.

  `info` is the model's registry entry (looked up when None).
  """
  values = model_params(spec, data.image_shape, data.n_classes, len(data.y_train), precision)
  if data.class_names:  # the classify signature's labels (else "0".."n-1")
    values["class_names"] = [str(name) for name in data.class_names]
  if spec.class_weight and spec.mode in TRAINING_MODES:
    if (info or models.get_model(spec.model)).kind == "model_fn":
      raise UsageError(f"--class_weight weighs the loss of the shared head; {spec.model} is a "
                       "full model_fn with its own loss: weigh it there, or drop "
                       "--class_weight")
    values["class_weights"] = class_weights.resolve(spec.class_weight, data.y_train,
                                                    contract.class_names(data))
  return values


def model_params(spec: spec_lib.RunSpec, image_shape: Sequence[int], n_classes: int,
                 train_examples: int,
                 precision: Optional[precision_lib.Precision] = None) -> Dict[str, Any]:
  """The model_fn's params: every field marked `param`, the data's shape, the precision.

  Args:
    spec: a RunSpec.
    image_shape: (H, W, C) of the data set.
    n_classes: number of classes.
    train_examples: training set size; an lr_decay_steps of 0 means one epoch of it.
    precision: spec.precision resolved (None: resolved here).
  """
  values = {name: getattr(spec, name) for name in spec_lib.names_with("param")}
  # lr_decay_steps 0 = one epoch, as seed 002 decays once per pass over the data.
  epoch = spec.steps_per_epoch(train_examples)
  values.update(hidden_units=list(spec.hidden_units), image_shape=tuple(image_shape),
                n_classes=n_classes, lr_decay_steps=spec.lr_decay_steps or epoch,
                total_steps=spec.steps,
                histogram_steps=spec.histogram_steps or 10 * spec.save_summary_steps,
                train_precision=(precision or precision_lib.resolve(spec.precision)).train)
  return values


def graph_record(spec: spec_lib.RunSpec, data: Dataset,
                 info: Optional[models.ModelInfo] = None) -> Dict[str, Any]:
  """What shapes the variables (fields marked `record`, and the data's shape).

  `info` is the model's registry entry (looked up when None).
  """
  record: Dict[str, Any] = {}
  for name in spec_lib.names_with("record"):
    option = spec_lib.option(name)
    record[cast(str, option.record)] = option.record_value(getattr(spec, name))
  record.update(image_shape=list(data.image_shape), n_classes=data.n_classes)
  info = info or models.get_model(spec.model)
  if not info.registered:  # told apart from the graph keys: see record_lib.ADVISORY
    record["source_sha256"] = models.custom.source_sha256(info.source)
  return record


def load_data(spec: spec_lib.RunSpec) -> Dataset:
  """The spec's data set (its --data_dir, --window, the options of your own images, and the
  validation set)."""
  options = datasets.ImageOptions(
      image_size=datasets.parse_size(spec.image_size) if spec.image_size else None,
      channels=spec.channels, test_split=spec.test_split,
      skip_bad_images=spec.skip_bad_images, seed=spec.seed or 0, stream=spec.stream)
  plain = options == datasets.ImageOptions(seed=spec.seed or 0)
  return datasets.load(spec.dataset, spec.data_dir, window=spec.window,
                       options=None if plain and ":" not in spec.dataset else options,
                       validation_split=spec.validation_split, validation_seed=spec.seed or 0)


def train_precision(spec: spec_lib.RunSpec,
                    info: models.ModelInfo) -> precision_lib.Precision:
  """--precision resolved for this model: a model of your own trains fp32 unless told."""
  precision = precision_lib.resolve(spec.precision)
  if info.kind == "model_fn" and precision.bf16:
    return precision_lib.Precision(
        "fp32", f"{info.name} is a full model_fn: its graph is its own", precision.native)
  if not info.registered and spec.precision == "auto" and precision.bf16:
    return precision_lib.Precision(
        "fp32", "auto: a model of your own trains fp32 unless --precision=bf16",
        precision.native)
  return precision


def data_kind(data: Dataset) -> str:
  """"images" or "series": the kind of the data set's registry entry (images if unregistered)."""
  return datasets.info(data.name).kind if datasets.known(data.name) else "images"


def check_inputs(info: models.ModelInfo, data: Dataset) -> None:
  """Refuses a model that cannot read this kind of data (the weather RNNs need a series)."""
  kind = data_kind(data)
  if info.inputs == "series" and kind != "series":
    raise UsageError(f"--model={info.name} reads windows of a series (--dataset=weather), not "
                     f"{'x'.join(map(str, data.image_shape))} images of {data.name}; use an "
                     "image model (cnn, dnn, ...)")


def check_augment(spec: spec_lib.RunSpec, data: Dataset) -> None:
  """--augment's names, and images to augment (a series' standardised features are not)."""
  augment_lib.check(spec.augment)
  if spec.augment and data.standardize is not None:
    raise UsageError(f"--augment transforms images; {data.name} is a series of standardised "
                     "features: drop --augment")


# Options that act on the evaluations train_and_evaluate makes along the way.
EVALUATION_OPTIONS = ("eval_every_steps", "early_stopping_steps", "stop_at_accuracy")


def check_evaluation_options(spec: spec_lib.RunSpec) -> None:
  """Refuses train_and_evaluate's options with --mode=train, which ignored them."""
  given = [f"--{name}" for name in EVALUATION_OPTIONS if getattr(spec, name) is not None]
  if spec.mode == "train" and given:
    verb = "acts" if len(given) == 1 else "act"
    raise UsageError(f"{', '.join(given)} {verb} on evaluations along the way, which "
                     "--mode=train does not make; add --mode=train_and_evaluate")


def run_config(spec: spec_lib.RunSpec, precision: precision_lib.Precision) -> Any:
  """The RunConfig of spec (and TF_CONFIG); a bad TF_CONFIG is a UsageError."""
  try:
    return est_config.run_config(
        spec.model_dir, seed=spec.seed,
        # Evaluation follows checkpoints, so evaluating every N steps means checkpointing then.
        save_checkpoints_steps=spec.eval_every_steps or spec.save_checkpoints_steps,
        keep_checkpoint_max=spec.keep_checkpoint_max, save_summary_steps=spec.save_summary_steps,
        intra_op_threads=spec.intra_op_threads, inter_op_threads=spec.inter_op_threads,
        distribute=spec.distribute, precision=precision)
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise UsageError(f"TF_CONFIG is not a valid cluster description ({e}); fix it, e.g. "
                     '{"cluster": {"chief": ["host:port"]}, "task": {"type": "chief", '
                     '"index": 0}}, or unset it') from None


def make(spec: spec_lib.RunSpec, data: Dataset) -> Plan:
  """Plans the run of `spec` on `data`.

  Raises:
    UsageError: a bad TF_CONFIG or flags its task cannot run with, a model_dir that is a
      file, a damaged record, or one of another model or shape.
  """
  model_dir = spec.model_dir or spec_lib.default_model_dir(spec.model, spec.dataset)
  spec = spec.replace(model_dir=model_dir)
  if spec.distribute != "none" and spec.input != "tfdata":
    raise UsageError(f"--distribute={spec.distribute} needs --input=tfdata (numpy_input_fn "
                     "feeds one device)")
  info = models.get_model(spec.model)
  check_inputs(info, data)
  check_augment(spec, data)
  check_evaluation_options(spec)
  if spec.epochs:  # --epochs: train until the step that ends the last of them
    spec = spec.replace(steps=spec.epochs * spec.steps_per_epoch(len(data.y_train)))
  precision = train_precision(spec, info)
  found = record_lib.read(model_dir)
  data, remapped = contract.match_classes(model_dir, found, data)
  record = dict(graph_record(spec, data, info), settings=contract.settings(spec),
                data=contract.data_record(data))
  record_lib.check(model_dir, found, record, training=spec.mode in TRAINING_MODES)
  config = run_config(spec, precision)
  if config.cluster_spec.as_dict():  # a TF_CONFIG cluster, the launcher's or one made by hand
    cluster_rules.check(spec.distribute, spec.mode, config.task_type)
  return Plan(spec=spec, data=data, precision=precision, config=config,
              params=params(spec, data, precision, info), record=record, found=found,
              remapped=remapped, model=info, data_kind=data_kind(data))


def estimator(plan: Plan) -> Any:
  """The Estimator of a plan (warm-started from spec.warm_start_from, if given)."""
  warm_start = est_config.warm_start_settings(plan.spec.warm_start_from,
                                              plan.spec.warm_start_vars)
  return est_config.build_estimator(plan.params, plan.config, warm_start)
