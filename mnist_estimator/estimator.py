"""The Estimator: model_fn, RunConfig, and the model_dir record that guards a checkpoint."""

import json
import os

import tensorflow as tf

from mnist_estimator import head
from mnist_estimator import models
from mnist_estimator import precision as precision_lib
from mnist_estimator import summaries
from mnist_estimator.models import layers
from mnist_estimator.errors import UsageError

RECORD_FILE = "mnist_estimator.json"


def model_fn(features, labels, mode, params, config=None):
  """The tf.estimator model_fn of every registered model.

  Args:
    features: dict with "x", a float batch of images.
    labels: int class ids, or None in PREDICT.
    mode: a tf.estimator.ModeKeys value.
    params: dict with "model" (a registered name) and the model's settings;
      "histogram_steps" sets how often the heavy summaries are written;
      "train_precision" "bf16" computes the training step in bfloat16.
    config: the RunConfig (tf.estimator passes it): where and whether to write them.

  Returns:
    A tf.estimator.EstimatorSpec built by the shared head.
  """
  info = models.get_model(params["model"])
  if mode != tf.estimator.ModeKeys.TRAIN:  # always float32: what the SavedModel computes
    return head.build_spec(info.logits_fn(features, mode, params), labels, mode, params)
  if params.get("train_precision") == "bf16":
    logits = precision_lib.train_logits(info.logits_fn, features, mode, params)
  else:
    logits = info.logits_fn(features, mode, params)
  summaries.add_train_summaries(layers.image_input(features, params))
  spec = head.build_spec(logits, labels, mode, params)
  chief = config is None or config.is_chief
  hook = summaries.heavy_summary_hook(params.get("histogram_steps"),
                                      config.model_dir if config and chief else None)
  return spec._replace(training_hooks=list(spec.training_hooks) + [hook]) if hook else spec


DISTRIBUTE = ("none", "mirrored")


def run_config(model_dir, seed=None, save_checkpoints_steps=None, keep_checkpoint_max=5,
               save_summary_steps=100, intra_op_threads=0, inter_op_threads=0,
               distribute="none", precision=None):
  """Builds the RunConfig.

  Args:
    model_dir: checkpoints and summaries go here.
    seed: graph-level random seed (initializers, dropout, numpy_input_fn shuffle).
    save_checkpoints_steps: checkpoint every N steps; None keeps the default of
      every 600 seconds.
    keep_checkpoint_max: how many recent checkpoints to keep.
    save_summary_steps: write train summaries every N steps.
    intra_op_threads: threads inside one op; 0 lets TensorFlow pick (all cores).
    inter_op_threads: ops run in parallel; 0 lets TensorFlow pick.
    distribute: "mirrored" replicates the model on every local device
      (tf.distribute.MirroredStrategy; the batch size is per device); "none".
    precision: a resolved precision.Precision (None: fp32).

  Returns:
    A tf.estimator.RunConfig.
  """
  session_config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=intra_op_threads,
                                            inter_op_parallelism_threads=inter_op_threads)
  strategy = tf.distribute.MirroredStrategy() if distribute == "mirrored" else None
  config = tf.estimator.RunConfig(
      model_dir=model_dir, tf_random_seed=seed, train_distribute=strategy,
      eval_distribute=strategy,
      save_checkpoints_steps=save_checkpoints_steps,
      save_checkpoints_secs=None if save_checkpoints_steps else 600,
      keep_checkpoint_max=keep_checkpoint_max, save_summary_steps=save_summary_steps,
      session_config=session_config,
      log_step_count_steps=None)  # hooks.ProgressHook logs progress instead
  if precision is not None:
    # A chief or worker of a TF_CONFIG cluster runs its graph through the cluster's master.
    distributed = bool(config.cluster_spec.as_dict()) and config.task_type != "evaluator"
    precision_lib.configure(config.session_config, precision, distributed)
  return config


def graph_record(params):
  """The params that shape a model's variables, as stored in model_dir."""
  record = {key: _plain(params.get(key)) for key in models.COMMON_GRAPH_KEYS}
  record["moving_average"] = bool(params.get("moving_average_decay"))
  return record


def _plain(value):
  return list(value) if isinstance(value, (tuple, list)) else value


def check_model_dir(model_dir, params, write):
  """Refuses a model_dir that holds a different model, before any graph is built.

  Args:
    model_dir: the run's model_dir.
    params: this run's params.
    write: record this run's graph params if model_dir has no record yet.

  Raises:
    UsageError: if model_dir is a file, or its record differs from this run.
  """
  if os.path.exists(model_dir) and not os.path.isdir(model_dir):
    raise UsageError(f"--model_dir {model_dir} is a file, not a directory; "
                     "pass a directory path")
  path = os.path.join(model_dir, RECORD_FILE)
  wanted = graph_record(params)
  if os.path.exists(path):
    with open(path) as f:
      found = json.load(f)
    # A key the record lacks (written by an older version) is not held against the run.
    diffs = [f"{key}={found[key]!r} there, {value!r} here"
             for key, value in wanted.items() if key in found and found[key] != value]
    if diffs:
      raise UsageError(
          f"--model_dir {model_dir} holds a {found.get('model')} model that differs from "
          f"this {wanted['model']} run ({'; '.join(diffs)}); use another --model_dir or "
          "delete that one")
  elif write:
    try:
      os.makedirs(model_dir, exist_ok=True)
      tmp = f"{path}.{os.getpid()}.tmp"  # cluster tasks may write at once: replace atomically
      with open(tmp, "w") as f:
        json.dump(wanted, f, indent=2)
      os.replace(tmp, path)
    except OSError as e:
      raise UsageError(f"cannot write to --model_dir {model_dir} ({e.strerror}); pass a "
                       "directory you can write to") from None


def require_checkpoint(model_dir):
  """Raises UsageError unless model_dir holds a checkpoint (for evaluate, predict, weights)."""
  if not tf.train.latest_checkpoint(model_dir):
    raise UsageError(f"no checkpoint in --model_dir {model_dir}; train first "
                     "(--mode=train) or point --model_dir at a trained model")


def warm_start_settings(path, variables=".*"):
  """WarmStartSettings from a checkpoint or a model_dir (its latest checkpoint).

  Args:
    path: a checkpoint prefix (model.ckpt-1000) or a directory holding checkpoints.
    variables: regular expression of the variables to take from it.

  Returns:
    tf.estimator.WarmStartSettings, or None when path is empty.

  Raises:
    UsageError: if path holds no checkpoint.
  """
  if not path:
    return None
  found = (tf.train.latest_checkpoint(path) if os.path.isdir(path)
           else path if tf.compat.v1.train.checkpoint_exists(path) else None)
  if not found:
    raise UsageError(f"--warm_start_from {path} is neither a checkpoint nor a directory with "
                     "one; point it at a trained model_dir or a model.ckpt-N prefix")
  return tf.estimator.WarmStartSettings(ckpt_to_initialize_from=found,
                                        vars_to_warm_start=variables)


def build_estimator(params, config, warm_start=None):
  """Returns a tf.estimator.Estimator of `params["model"]` with `config`."""
  return tf.estimator.Estimator(model_fn=model_fn, params=params, config=config,
                                warm_start_from=warm_start)
