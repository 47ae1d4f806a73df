"""The lines a run starts with: what trains on what, the changed settings, precision, paths."""

from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Sequence

from mnist_estimator.data import stream
from mnist_estimator.data import stream_cache
from mnist_estimator.data import validation as validation_lib
from mnist_estimator.head import class_weights
from mnist_estimator.inputs import augment as augment_lib
from mnist_estimator.run import contract
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.run import spec as spec_lib

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.run.plan import Plan


def changed_settings(spec: spec_lib.RunSpec) -> List[str]:
  """`name=value` for every setting that differs from the model's defaults, in field order."""
  defaults = spec_lib.RunSpec.for_model(spec.model, dataset=spec.dataset)
  changed = []
  for name in spec_lib.field_names():
    value = getattr(spec, name)
    if value is None and name == "epochs":  # --steps given instead: that one is shown
      continue
    if not spec_lib.option(name).header and value != getattr(defaults, name):
      changed.append(f"{name}={_shown(value)}")
  return changed


def _shown(value: Any) -> Any:
  return ",".join(map(str, value)) if isinstance(value, tuple) else value


def opening(spec: spec_lib.RunSpec, adopted: Sequence[str] = ()) -> List[str]:
  """The lines a run prints before it reads its data (which may take a while to decode).

  Args:
    spec: the RunSpec.
    adopted: the settings taken from the model_dir's training run (run/contract.py).
  """
  changed = changed_settings(spec)
  lines = [f"{spec.mode} {spec.model} on {spec.dataset}",
           "settings: " + (", ".join(changed) if changed else f"{spec.model}'s defaults")]
  if (spec_lib.own_data(spec.dataset) and spec.mode in ("train", "train_and_evaluate")
      and spec_lib.models.get_model(spec.model).registered):
    recipe = spec_lib.defaults(spec.model, spec.dataset)
    lines.append(f"own-data recipe where no flag says otherwise: {recipe['optimizer']} at "
                 f"{recipe['learning_rate']:g}, batch {recipe['batch_size']}, "
                 f"{spec_lib.OWN_DATA_EPOCHS} epochs ({spec.model}'s seed settings suit its "
                 "seed's data)")
  if adopted:
    taken = ", ".join(f"{name}={_shown(getattr(spec, name))}" for name in adopted)
    lines.append(f"from the model_dir's training run: {taken}")
  lines.append(f"model_dir: {spec.model_dir}")
  return lines


def training(spec: spec_lib.RunSpec, train_images: int, start_step: int = 0) -> str:
  """How long training runs: "3 epochs = 1,260 steps of 100" (or the other way round).

  From a checkpoint at `start_step` (a resumed run): the steps left, or that none are.
  """
  per_epoch = spec.steps_per_epoch(train_images)
  if start_step >= spec.steps:
    ends = (f"--epochs={spec.epochs} ends at step {spec.steps:,}" if spec.epochs
            else f"--steps={spec.steps}")
    option = "--epochs" if spec.epochs else "--steps"
    return (f"training: none; model_dir is at step {start_step:,} and {ends} (raise {option} "
            "to train further)")
  if start_step:
    left = spec.steps - start_step
    return (f"training: {left:,} more steps of {spec.batch_size} = {left / per_epoch:,.1f} "
            f"epochs of {train_images:,} images, from model_dir's step {start_step:,} to "
            f"{spec.steps:,}")
  if spec.epochs:
    return (f"training: {spec.epochs} epoch{'s' * (spec.epochs != 1)} = {spec.steps:,} steps "
            f"of {spec.batch_size} ({per_epoch:,} per epoch)")
  return (f"training: {spec.steps:,} steps of {spec.batch_size} = "
          f"{spec.steps / per_epoch:,.1f} epochs of {train_images:,} images")


def header(spec: spec_lib.RunSpec, data: Dataset, log_path: Optional[str] = None,
           precision: Optional[str] = None, model: Optional[str] = None, remapped: bool = False,
           extra: Iterable[str] = (), start_step: int = 0) -> List[str]:
  """The lines a run prints once its data is read (after `opening`).

  Args:
    spec: the RunSpec.
    data: the loaded datasets.Dataset.
    log_path: where TensorFlow's own log goes, if anywhere.
    precision: a line saying which precision runs and why, if known.
    model: what a model of your own is (a logits function or a full model_fn), if it is one.
    remapped: the data's classes were put in the trained order, matched by name.
    extra: more lines of the run (augmentation, class weights), after the training line.
    start_step: the global step of the checkpoint training resumes from (0: none).

  Returns:
    A list of text lines.
  """
  h, w, c = data.image_shape
  val = (f"{len(data.y_val):,} validation / "
         if data.has_validation and data.y_val is not None else "")
  lines = [f"data: {len(data.y_train):,} train / {val}{len(data.y_test):,} test images of "
           f"{h}x{w}x{c}, {data.n_classes} classes; from {data.source}"]
  if spec.mode in ("train", "train_and_evaluate"):
    lines.append("validation: " + validation_lib.describe(data))
  if data.class_names:
    shown = ", ".join(map(str, data.class_names[:20]))
    lines.append(f"classes: {shown}" + (", ..." if len(data.class_names) > 20 else "")
                 + (" (matched to the trained order by name)" if remapped else ""))
  if spec.mode in ("train", "train_and_evaluate"):
    lines.append(training(spec, len(data.y_train), start_step))
  lines += list(extra)
  if model:
    lines.append(f"model: {model}")
  if precision:
    lines.append(f"precision: {precision}")
  if log_path:
    lines.append(f"log: {log_path} (-v to show it here)")
  return lines


def extra_lines(plan: "Plan") -> List[str]:
  """The header's lines on augmentation and class weights, when a training run has them."""
  spec = plan.spec
  lines: List[str] = []
  if not plan.training:
    return lines
  if spec.augment:
    lines.append(f"augment: {augment_lib.describe(spec.augment)} (training images only)")
  if isinstance(plan.data.x_train, stream.FileImages):
    lines.append("images: streamed from the files" + (
        f", decoded shards cached in {stream_cache.cache_folder()}" if spec.cache_decoded else
        " (--cache_decoded keeps them decoded for later epochs and runs)"))
  elif spec.cache_decoded:
    lines.append("--cache_decoded: not used, the images are decoded in memory (and cached "
                 "as a record file)")
  if plan.params.get("class_weights"):
    lines.append("class weights: " + class_weights.describe(
        plan.params["class_weights"], contract.class_names(plan.data), spec.class_weight))
  return lines
