"""Every command-line flag, grouped; validation; flags (or a flagfile) -> RunSpec."""

import functools
import sys
import textwrap

from absl import app
from absl import flags

from mnist_estimator import datasets
from mnist_estimator import estimator
from mnist_estimator import hooks
from mnist_estimator import inputs
from mnist_estimator import models
from mnist_estimator import optimizers
from mnist_estimator import precision as precision_lib
from mnist_estimator import runner
from mnist_estimator import spec as spec_lib
from mnist_estimator.errors import UsageError
from mnist_estimator.models import layers

FLAGS = flags.FLAGS


# Help groups in the order --helpshort shows them: group -> flag names.
GROUPS = {}


class _On:
  """absl's DEFINE_* and register_validator bound to one FlagValues (and a help group)."""

  def __init__(self, flag_values, group=None):
    self._flag_values = flag_values
    self._group = group

  def __getattr__(self, name):
    define = functools.partial(getattr(flags, name), flag_values=self._flag_values)
    if not name.startswith("DEFINE_"):
      return define

    def define_in_group(flag_name, *args, **kwargs):
      names = GROUPS.setdefault(self._group or "other", [])
      if flag_name not in names:
        names.append(flag_name)
      return define(flag_name, *args, **kwargs)

    return define_in_group


def define_data(flag_values=FLAGS):
  """--dataset and --data_dir (main and bench)."""
  f = _On(flag_values, "data")
  f.DEFINE_enum("dataset", "mnist", datasets.dataset_names(), "Data set.")
  f.DEFINE_string("data_dir", None, "Folder with the data set's files (MNIST: the four "
                  "IDX files, gzip or raw, or mnist.npz); default: the tf.keras cache.")
  f.DEFINE_integer("window", None, "--dataset=weather: weeks per example, labelled with "
                   "the last week's season (default 52, see weather.py).", lower_bound=1)


def define_threads(flag_values=FLAGS):
  """--intra_op_threads and --inter_op_threads (main and bench)."""
  f = _On(flag_values, "speed")
  f.DEFINE_integer("intra_op_threads", 0, "Threads within an op (0: TF decides).",
                   lower_bound=0)
  f.DEFINE_integer("inter_op_threads", 0, "Ops in parallel (0: TF decides).", lower_bound=0)


def define_verbosity(flag_values=FLAGS):
  """--verbose (every command line)."""
  _On(flag_values, "output").DEFINE_bool("verbose", False, "Show Python tracebacks for errors.")


def _define_model(f):
  f.DEFINE_enum("model", "cnn", models.model_names(), "Network to train.")
  f.DEFINE_enum("mode", "train", runner.MODE_NAMES,
                "train (then evaluate), evaluate, train_and_evaluate, predict "
                "(the first --num_predictions test images), weights (list / save) or export.")
  f.DEFINE_string("model_dir", None, "Checkpoints and summaries; default "
                  "<tmp>/mnist_estimator/<model>-<dataset>, printed at start.")
  f.DEFINE_list("hidden_units", None, "Hidden layer sizes, e.g. 128,32 (model default).")
  f.DEFINE_enum("activation", None, sorted(layers.ACTIVATIONS),
                "Hidden activation of dnn (model default).")
  f.DEFINE_float("dropout", None, "Dropout rate in TRAIN mode (model default).",
                 lower_bound=0, upper_bound=0.99)
  f.DEFINE_integer("seed", None, "Random seed for initializers, dropout and shuffling.")


def _define_training(f):
  f.DEFINE_integer("steps", None, "Train until this global step (model default).",
                   lower_bound=1)
  f.DEFINE_integer("batch_size", None, "Training batch size (model default).", lower_bound=1)
  f.DEFINE_integer("eval_batch_size", 500, "Evaluation/predict batch size.", lower_bound=1)
  f.DEFINE_float("learning_rate", None, "Learning rate (model default).", lower_bound=0)
  f.DEFINE_enum("optimizer", None, optimizers.optimizer_names(), "Optimizer (model default).")
  f.DEFINE_float("l2", None, "L2 scale on kernels: l2 * sum(w**2) / 2 (model default).",
                 lower_bound=0)
  f.DEFINE_float("moving_average_decay", None, "ExponentialMovingAverage of the weights "
                 "used for evaluate/predict/export; 0 = off (model default).",
                 lower_bound=0, upper_bound=0.99999)
  f.DEFINE_float("lr_decay_rate", None, "Staircase exponential learning-rate decay per "
                 "--lr_decay_steps; 1 = off (model default).", lower_bound=0, upper_bound=1)
  f.DEFINE_integer("lr_decay_steps", None, "Steps per decay stair; 0 = one epoch "
                   "(model default).", lower_bound=0)
  f.DEFINE_enum("input", "tfdata", inputs.INPUT_KINDS,
                "tfdata (fast, default) or numpy (the tutorial's numpy_input_fn).")
  f.DEFINE_integer("eval_every_steps", None, "train_and_evaluate: checkpoint and evaluate "
                   "every N steps (default: tf.estimator's, on checkpoints every 600 s).",
                   lower_bound=1)
  f.DEFINE_integer("early_stopping_steps", None, "train_and_evaluate: stop when eval "
                   "accuracy has not improved for N steps.", lower_bound=1)
  f.DEFINE_string("warm_start_from", None, "Initialise from this checkpoint or model_dir "
                  "(when model_dir has no checkpoint yet).")
  f.DEFINE_string("warm_start_vars", ".*", "Regex of the variables to warm-start.")


def _define_checkpoints_and_summaries(f):
  f.DEFINE_integer("log_every_n_iter", 100, "Progress line every N steps.", lower_bound=1)
  f.DEFINE_list("log_tensors", [], "Also log these tensors every N steps; "
                f"from: {', '.join(sorted(hooks.LOG_TENSORS))} (the tutorial: probabilities).")
  f.DEFINE_integer("save_checkpoints_steps", None,
                   "Checkpoint every N steps (default: every 600 s and at the end).",
                   lower_bound=1)
  f.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints to keep.", lower_bound=1)
  f.DEFINE_bool("fallback_checkpoint", False, "If the newest checkpoint is unreadable, "
                "use the newest readable one (announced) instead of refusing.")
  f.DEFINE_integer("save_summary_steps", 100, "Summaries every N steps.", lower_bound=1)
  f.DEFINE_integer("histogram_steps", None, "Weight histograms, input images and conv "
                   "filter grids every N steps (default 10 x --save_summary_steps).",
                   lower_bound=1)
  f.DEFINE_bool("report", True, "After evaluating, write model_dir/eval_report/ (JSON, "
                "confusion matrix, worst errors) and print per-class metrics.")


def _define_export(f):
  f.DEFINE_string("export_dir", None, "Export a SavedModel under this folder after "
                  "training (and with --mode=export).")
  f.DEFINE_integer("num_predictions", 10, "--mode=predict: test images to predict.",
                   lower_bound=1)
  f.DEFINE_string("weights_out", None, "--mode=weights: save layer weights to this .npz.")
  f.DEFINE_string("weights_names", None, "--mode=weights: regex of names to save.")
  f.DEFINE_string("weights_png_dir", None, "--mode=weights: draw conv filters and "
                  "per-class weight maps (matching --weights_names) as PNGs here.")


def _define_distribution(f):
  f.DEFINE_enum("distribute", "none", estimator.DISTRIBUTE, "mirrored: replicate over all "
                "local devices (MirroredStrategy; --batch_size is per device).")


def _define_speed(f):
  f.DEFINE_enum("precision", "auto", precision_lib.PRECISIONS, "Compute precision: bf16 "
                "(float32 variables and loss) where the CPU has AVX512_BF16 or AMX-BF16, else "
                "fp32 (auto); or either one.")
  f.DEFINE_integer("profile_steps", None, "Write a Chrome trace of one step every N steps "
                   "to model_dir/profile.", lower_bound=1)


def define_flags(flag_values=FLAGS):
  """Declares main's flags on `flag_values` once (safe to call again)."""
  if "model" in flag_values:
    return
  f = _On(flag_values)
  _define_model(_On(flag_values, "model"))
  define_data(flag_values)
  _define_training(_On(flag_values, "training"))
  _define_checkpoints_and_summaries(_On(flag_values, "checkpoints and summaries"))
  _define_export(_On(flag_values, "export"))
  _define_distribution(_On(flag_values, "distribution"))
  _define_speed(_On(flag_values, "speed"))
  define_threads(flag_values)
  define_verbosity(flag_values)
  f.register_validator(
      "hidden_units", _hidden_units_ok,
      message="--hidden_units must be comma-separated positive integers, e.g. 128,32")
  f.register_validator(
      "log_tensors", lambda names: set(names) <= set(hooks.LOG_TENSORS),
      message=f"--log_tensors takes names from: {', '.join(sorted(hooks.LOG_TENSORS))}")


def _hidden_units_ok(value):
  return value is None or all(item.strip().isdigit() and int(item) > 0 for item in value)


def run_spec(flag_values=FLAGS):
  """The RunSpec of parsed flags: the chosen model's defaults where a flag is unset."""
  values = {name: flag_values[name].value for name in spec_lib.field_names()
            if name != "model"}
  return spec_lib.RunSpec.for_model(flag_values["model"].value, **values)


def spec_from_flagfile(path, argv=()):
  """Parses a flagfile (and more `argv` flags) as main would, without touching FLAGS.

  absl reads the file, so nested --flagfile lines, validators and model defaults are
  the same as on main's command line.

  Args:
    path: an absl flagfile.
    argv: more flags, applied after the file's.

  Returns:
    The RunSpec.

  Raises:
    UsageError: the file cannot be read, or a flag in it is unknown or invalid.
  """
  flag_values = flags.FlagValues()
  define_flags(flag_values)
  try:
    flag_values(["flagfile", f"--flagfile={path}", *argv])
  except flags.Error as e:
    raise UsageError(f"flagfile {path}: {str(e).splitlines()[0]}; fix that line") from None
  return run_spec(flag_values)


def help_text(flag_values=FLAGS):
  """Every flag of this command, by group, with its default (what --helpshort prints)."""
  lines = []
  for group, names in GROUPS.items():
    defined = [flag_values[name] for name in names if name in flag_values]
    if defined:
      lines.append(f"{group}:")
      lines += [_flag_help(flag) for flag in defined]
  lines.append("absl: --flagfile=FILE reads flags from a file; --verbosity=1 (-v) shows "
               "TensorFlow's log; --helpfull lists absl's own flags too.")
  return "\n".join(lines)


def _flag_help(flag):
  name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
  text = f"  {name}: {flag.help} (default: {flag.default_as_str or 'none'})"
  return textwrap.fill(text, 100, subsequent_indent="      ")


def parse_with_help(argv):
  """absl's flag parsing, with --help and --helpshort printing help_text() (grouped)."""
  if any(arg in ("--help", "--helpshort", "-h", "-?") for arg in argv[1:]):
    print((sys.modules["__main__"].__doc__ or "").strip())
    print(help_text())
    sys.exit(0)
  return app.parse_flags_with_usage(argv)
