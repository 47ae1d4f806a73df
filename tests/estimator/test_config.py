"""The RunConfig: threads for every run, and tf.estimator's own session defaults in a cluster."""

import json

import pytest

from mnist_estimator.estimator import config as est_config

CLUSTER = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"],
           "ps": ["127.0.0.1:4"]}


@pytest.mark.parametrize("task, filters", [
    ({"type": "chief", "index": 0}, ["/job:ps", "/job:chief"]),
    ({"type": "worker", "index": 1}, ["/job:ps", "/job:worker/task:1"]),
    ({"type": "ps", "index": 0}, ["/job:ps", "/job:worker", "/job:chief", "/job:master"]),
    ({"type": "evaluator", "index": 0}, []),
])
def test_a_cluster_task_talks_only_to_the_ps(monkeypatch, task, filters):
  """A worker's session must not wait for the chief or another worker (a dead or stopped one
  would stall it), as tf.estimator's default for cluster tasks has it; our threads are kept."""
  monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": CLUSTER, "task": task}))
  config = est_config.run_config("/unused", intra_op_threads=2, inter_op_threads=3)
  assert list(config.session_config.device_filters) == filters
  assert config.session_config.intra_op_parallelism_threads == 2
  assert config.session_config.inter_op_parallelism_threads == 3
  assert config.session_config.allow_soft_placement == bool(filters)


def test_a_local_run_has_threads_and_no_filters(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  config = est_config.run_config("/unused", intra_op_threads=1)
  assert not config.session_config.device_filters
  assert config.session_config.intra_op_parallelism_threads == 1
