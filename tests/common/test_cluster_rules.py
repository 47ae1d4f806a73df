"""The flags a cluster's tasks may run with: one rule for the launcher and each task."""

import pytest

from mnist_estimator.common import cluster_rules
from mnist_estimator.common.errors import UsageError


@pytest.mark.parametrize("task_type", [None, "chief", "worker", "ps", "evaluator"])
def test_distribute_is_refused_for_every_task(task_type):
  with pytest.raises(UsageError, match=r"^--distribute=mirrored replicates .* drop --distribute"):
    cluster_rules.check("mirrored", None, task_type)
  cluster_rules.check("none", None, task_type)
  cluster_rules.check(None, "train_and_evaluate", task_type)


@pytest.mark.parametrize("mode", ["train", "evaluate", "predict"])
def test_only_train_and_evaluate_runs_a_ps_or_an_evaluator(mode):
  with pytest.raises(UsageError) as raised:  # the launcher: --mode given after --
    cluster_rules.check(None, mode, None)
  assert str(raised.value).startswith(
      f"a cluster's tasks run --mode=train_and_evaluate, not --mode={mode}: drop --mode")
  for task_type in ("ps", "evaluator"):  # a task started by hand, maybe on main's default
    with pytest.raises(UsageError) as raised:
      cluster_rules.check(None, mode, task_type)
    assert str(raised.value) == (
        f"a cluster's {task_type} tasks run only under --mode=train_and_evaluate, not "
        f"--mode={mode}: start every task of the cluster with --mode=train_and_evaluate")


@pytest.mark.parametrize("task_type", ["chief", "worker"])
def test_a_chief_or_worker_may_train_alone(task_type):
  cluster_rules.check(None, "train", task_type)  # between-graph replication, no evaluation
