"""The Estimator itself: its RunConfig (threads, distribution, precision) and warm start."""

import os
from typing import Any, Dict, Optional

import tensorflow as tf

from mnist_estimator.common import precision as precision_lib
from mnist_estimator.common.errors import UsageError
from mnist_estimator.head import model_fn as model_fn_lib

DISTRIBUTE = ("none", "mirrored")


def run_config(model_dir: Optional[str], seed: Optional[int] = None,
               save_checkpoints_steps: Optional[int] = None, keep_checkpoint_max: int = 5,
               save_summary_steps: int = 100, intra_op_threads: int = 0,
               inter_op_threads: int = 0, distribute: str = "none",
               precision: Optional[precision_lib.Precision] = None) -> tf.estimator.RunConfig:
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
  strategy = tf.distribute.MirroredStrategy() if distribute == "mirrored" else None
  config = tf.estimator.RunConfig(
      model_dir=model_dir, tf_random_seed=seed, train_distribute=strategy,
      eval_distribute=strategy,
      save_checkpoints_steps=save_checkpoints_steps,
      save_checkpoints_secs=None if save_checkpoints_steps else 600,
      keep_checkpoint_max=keep_checkpoint_max, save_summary_steps=save_summary_steps,
      log_step_count_steps=None)  # hooks.ProgressHook logs progress instead
  # Without a session_config of ours, a TF_CONFIG cluster's chief, worker or ps gets
  # tf.estimator's own: device filters (a worker talks to the ps alone, not to the chief or
  # the other workers, so a dead or slow one stalls nobody's session) and soft placement.
  # Our thread settings go into that config rather than replace it.
  session_config = config.session_config or tf.compat.v1.ConfigProto()
  session_config.intra_op_parallelism_threads = intra_op_threads
  session_config.inter_op_parallelism_threads = inter_op_threads
  config = config.replace(session_config=session_config)
  if precision is not None:
    # A chief or worker of a TF_CONFIG cluster runs its graph through the cluster's master.
    distributed = bool(config.cluster_spec.as_dict()) and config.task_type != "evaluator"
    precision_lib.configure(config.session_config, precision, distributed)
  return config


def warm_start_settings(path: Optional[str],
                        variables: str = ".*") -> Optional[tf.estimator.WarmStartSettings]:
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


def build_estimator(
    params: Dict[str, Any], config: tf.estimator.RunConfig,
    warm_start: Optional[tf.estimator.WarmStartSettings] = None) -> tf.estimator.Estimator:
  """Returns a tf.estimator.Estimator of `params["model"]` with `config`."""
  return tf.estimator.Estimator(model_fn=model_fn_lib.model_fn, params=params, config=config,
                                warm_start_from=warm_start)
