"""What main's flags may be in a TF_CONFIG cluster: the launcher and each task check the same."""

from typing import Optional

from mnist_estimator.common.errors import UsageError

# Task types that only tf.estimator's train_and_evaluate runs (a ps serves variables, an
# evaluator follows checkpoints); Estimator.train refuses them ("Train has been called wrong
# configuration").
_TRAIN_AND_EVALUATE_ONLY = ("ps", "evaluator")


def check(distribute: Optional[str], mode: Optional[str], task_type: Optional[str]) -> None:
  """Refuses --distribute and --mode values a cluster's task cannot run with.

  With a train_distribute, tf.estimator's RunConfig makes every task of a TF_CONFIG cluster
  its chief: all reached for model_dir's lock and died on "in use by pid N", N being another
  task of the same job.

  Args:
    distribute: --distribute, or None if not given.
    mode: --mode, or None if not given (train_and_evaluate).
    task_type: this task's type in TF_CONFIG; None for the launcher, which gives every task
      (a ps among them) the same flags.

  Raises:
    UsageError: one line saying what to drop.
  """
  if distribute not in (None, "none"):
    raise UsageError(f"--distribute={distribute} replicates the model over one process's "
                     "devices; a cluster's tasks share it through its parameter servers: drop "
                     "--distribute, or train in one process without the cluster")
  if task_type is not None and task_type not in _TRAIN_AND_EVALUATE_ONLY:
    return  # a chief or worker may train alone (--mode=train): between-graph replication
  if mode in (None, "train_and_evaluate"):
    return
  if task_type is None:  # the launcher's flags: --mode was given after --
    raise UsageError(f"a cluster's tasks run --mode=train_and_evaluate, not --mode={mode}: "
                     "drop --mode (evaluate, predict and export the model_dir after the job, "
                     "without the cluster)")
  # A task started by hand: main's default --mode is train.
  raise UsageError(f"a cluster's {task_type} tasks run only under --mode=train_and_evaluate, "
                   f"not --mode={mode}: start every task of the cluster with "
                   "--mode=train_and_evaluate")
