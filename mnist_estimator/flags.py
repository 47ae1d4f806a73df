"""Every command-line flag, its validation, and the conversion of flags to a RunSpec."""

from absl import flags

from mnist_estimator import datasets
from mnist_estimator import estimator
from mnist_estimator import hooks
from mnist_estimator import inputs
from mnist_estimator import models
from mnist_estimator import optimizers
from mnist_estimator import runner
from mnist_estimator.models import layers

FLAGS = flags.FLAGS

# Flags whose default comes from the chosen model (models.MODELS[...].defaults).
MODEL_DEFAULTED = ("optimizer", "learning_rate", "batch_size", "steps", "dropout",
                   "hidden_units", "activation", "l2", "moving_average_decay",
                   "lr_decay_rate", "lr_decay_steps")


def define_flags():
  """Declares the flags once (safe to call again)."""
  if "model" in FLAGS:
    return
  flags.DEFINE_enum("model", "cnn", models.model_names(), "Network to train.")
  flags.DEFINE_enum("mode", "train", runner.MODES,
                    "train (then evaluate), evaluate, train_and_evaluate, predict "
                    "(the first --num_predictions test images), weights (list / save) or export.")
  flags.DEFINE_string("model_dir", None, "Checkpoints and summaries; default "
                      "<tmp>/mnist_estimator/<model>-<dataset>, printed at start.")
  flags.DEFINE_enum("dataset", "mnist", datasets.dataset_names(), "Data set.")
  flags.DEFINE_string("data_dir", None, "Folder with the data set's files (MNIST: the four "
                      "IDX files, gzip or raw, or mnist.npz); default: the tf.keras cache.")
  flags.DEFINE_integer("window", None, "--dataset=weather: weeks per example, labelled with "
                       "the last week's season (default 52, see weather.py).", lower_bound=1)
  flags.DEFINE_integer("steps", None, "Train until this global step (model default).",
                       lower_bound=1)
  flags.DEFINE_integer("batch_size", None, "Training batch size (model default).",
                       lower_bound=1)
  flags.DEFINE_integer("eval_batch_size", 500, "Evaluation/predict batch size.",
                       lower_bound=1)
  flags.DEFINE_float("learning_rate", None, "Learning rate (model default).", lower_bound=0)
  flags.DEFINE_enum("optimizer", None, optimizers.optimizer_names(),
                    "Optimizer (model default).")
  flags.DEFINE_list("hidden_units", None, "Hidden layer sizes, e.g. 128,32 (model default).")
  flags.DEFINE_enum("activation", None, sorted(layers.ACTIVATIONS),
                    "Hidden activation of dnn (model default).")
  flags.DEFINE_float("dropout", None, "Dropout rate in TRAIN mode (model default).",
                     lower_bound=0, upper_bound=0.99)
  flags.DEFINE_float("l2", None, "L2 scale on kernels: l2 * sum(w**2) / 2 (model default).",
                     lower_bound=0)
  flags.DEFINE_float("moving_average_decay", None, "ExponentialMovingAverage of the weights "
                     "used for evaluate/predict/export; 0 = off (model default).",
                     lower_bound=0, upper_bound=0.99999)
  flags.DEFINE_float("lr_decay_rate", None, "Staircase exponential learning-rate decay per "
                     "--lr_decay_steps; 1 = off (model default).", lower_bound=0,
                     upper_bound=1)
  flags.DEFINE_integer("lr_decay_steps", None, "Steps per decay stair; 0 = one epoch "
                       "(model default).", lower_bound=0)
  flags.DEFINE_enum("input", "tfdata", inputs.INPUT_KINDS,
                    "tfdata (fast, default) or numpy (the tutorial's numpy_input_fn).")
  flags.DEFINE_integer("log_every_n_iter", 100, "Progress line every N steps.", lower_bound=1)
  flags.DEFINE_list("log_tensors", [], "Also log these tensors every N steps; "
                    f"from: {', '.join(sorted(hooks.LOG_TENSORS))} (the tutorial: "
                    "probabilities).")
  flags.DEFINE_integer("save_checkpoints_steps", None,
                       "Checkpoint every N steps (default: every 600 s and at the end).",
                       lower_bound=1)
  flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints to keep.", lower_bound=1)
  flags.DEFINE_integer("save_summary_steps", 100, "Summaries every N steps.", lower_bound=1)
  flags.DEFINE_integer("histogram_steps", None, "Weight histograms, input images and conv "
                       "filter grids every N steps (default 10 x --save_summary_steps).",
                       lower_bound=1)
  flags.DEFINE_integer("seed", None, "Random seed for initializers, dropout and shuffling.")
  flags.DEFINE_integer("intra_op_threads", 0, "Threads within an op (0: TF decides).",
                       lower_bound=0)
  flags.DEFINE_integer("inter_op_threads", 0, "Ops in parallel (0: TF decides).",
                       lower_bound=0)
  flags.DEFINE_integer("num_predictions", 10, "--mode=predict: test images to predict.",
                       lower_bound=1)
  flags.DEFINE_string("weights_out", None, "--mode=weights: save layer weights to this .npz.")
  flags.DEFINE_string("weights_names", None, "--mode=weights: regex of names to save.")
  flags.DEFINE_string("weights_png_dir", None, "--mode=weights: draw conv filters and "
                      "per-class weight maps (matching --weights_names) as PNGs here.")
  flags.DEFINE_bool("report", True, "After evaluating, write model_dir/eval_report/ (JSON, "
                    "confusion matrix, worst errors) and print per-class metrics.")
  flags.DEFINE_string("export_dir", None, "Export a SavedModel under this folder after "
                      "training (and with --mode=export).")
  flags.DEFINE_integer("eval_every_steps", None, "train_and_evaluate: checkpoint and evaluate "
                       "every N steps (default: tf.estimator's, on checkpoints every 600 s).",
                       lower_bound=1)
  flags.DEFINE_integer("early_stopping_steps", None, "train_and_evaluate: stop when eval "
                       "accuracy has not improved for N steps.", lower_bound=1)
  flags.DEFINE_string("warm_start_from", None, "Initialise from this checkpoint or model_dir "
                      "(when model_dir has no checkpoint yet).")
  flags.DEFINE_string("warm_start_vars", ".*", "Regex of the variables to warm-start.")
  flags.DEFINE_integer("profile_steps", None, "Write a Chrome trace of one step every N steps "
                       "to model_dir/profile.", lower_bound=1)
  flags.DEFINE_enum("distribute", "none", estimator.DISTRIBUTE, "mirrored: replicate over all "
                    "local devices (MirroredStrategy; --batch_size is per device).")
  flags.DEFINE_bool("verbose", False, "Show Python tracebacks for errors.")
  _register_validators()


def _hidden_units_ok(value):
  return value is None or all(item.strip().isdigit() and int(item) > 0 for item in value)


def _register_validators():
  flags.register_validator(
      "hidden_units", _hidden_units_ok,
      message="--hidden_units must be comma-separated positive integers, e.g. 128,32")
  flags.register_validator(
      "log_tensors", lambda names: set(names) <= set(hooks.LOG_TENSORS),
      message=f"--log_tensors takes names from: {', '.join(sorted(hooks.LOG_TENSORS))}")


def run_spec():
  """Builds the RunSpec from the parsed flags, filling model defaults for unset flags."""
  defaults = models.get_model(FLAGS.model).defaults
  values = {name: FLAGS[name].value for name in MODEL_DEFAULTED}
  for name in MODEL_DEFAULTED:
    if values[name] is None:
      values[name] = defaults[name]
  values["hidden_units"] = [int(unit) for unit in values["hidden_units"]]
  plain = ("model", "mode", "model_dir", "dataset", "data_dir", "eval_batch_size", "input",
           "log_every_n_iter", "log_tensors", "save_checkpoints_steps",
           "keep_checkpoint_max", "save_summary_steps", "histogram_steps", "seed",
           "intra_op_threads", "inter_op_threads", "num_predictions", "weights_out",
           "weights_names", "export_dir", "weights_png_dir", "report", "eval_every_steps",
           "early_stopping_steps", "warm_start_from", "warm_start_vars", "profile_steps",
           "distribute", "window")
  values.update({name: FLAGS[name].value for name in plain})
  return runner.RunSpec(**values)
