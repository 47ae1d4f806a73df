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


@pytest.mark.parametrize("task_type, who", [(None, "tasks"), ("ps", "ps tasks"),
                                            ("evaluator", "evaluator tasks")])
@pytest.mark.parametrize("mode", ["train", "evaluate", "predict"])
def test_only_train_and_evaluate_runs_a_ps_or_an_evaluator(task_type, who, mode):
  with pytest.raises(UsageError) as raised:
    cluster_rules.check(None, mode, task_type)
  assert str(raised.value).startswith(
      f"a cluster's {who} run --mode=train_and_evaluate, not --mode={mode}: drop --mode")


@pytest.mark.parametrize("task_type", ["chief", "worker"])
def test_a_chief_or_worker_may_train_alone(task_type):
  cluster_rules.check(None, "train", task_type)  # between-graph replication, no evaluation
