"""The Ray engine's pieces without Ray: task flags, options, TF_CONFIG, a task's runner."""

import json
import os
import signal
import sys
import time

from cluster_helpers import alive
import pytest

from mnist_estimator.common.errors import UsageError
from mnist_estimator.cluster import ray_task
from mnist_estimator.cluster import task_flags as cluster_flags
from mnist_estimator.cluster import tf_config as cluster


def test_task_flags_make_shared_paths_absolute_and_set_threads(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  flagfile = tmp_path / "f.flags"
  flagfile.write_text("# a comment\n--data_dir=data\n")
  argv, shared = cluster_flags.for_ray(["--model=mlp", "--model_dir=m",
                                        f"--flagfile={flagfile}"], task_cpus=2)
  assert shared == {"model_dir": str(tmp_path / "m"), "data_dir": str(tmp_path / "data")}
  assert argv[:3] == ["-m", "mnist_estimator.main", "--mode=train_and_evaluate"]
  assert argv[-3:] == [f"--model_dir={tmp_path / 'm'}", f"--data_dir={tmp_path / 'data'}",
                       "--intra_op_threads=2"]
  argv, _ = cluster_flags.for_ray(["--model_dir=/m", "--intra_op_threads=4"], task_cpus=0.5)
  assert "--intra_op_threads=4" in argv and "--intra_op_threads=1" not in argv


@pytest.mark.parametrize("argv, message", [
    (["--model=mlp"], "--engine=ray needs --model_dir=DIR"),
    (["--model_dir", "/m"], "write --model_dir=VALUE (with =)"),
    (["--model_dir=/m", "--flagfile=/nonexistent.flags"], "--flagfile=/nonexistent.flags: No"),
])
def test_task_flags_errors(argv, message):
  with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
    cluster_flags.for_ray(argv, 1)


def test_resources_and_runtime_envs_per_kind():
  options = cluster_flags.RayOptions(
      task_cpus=2, resources=cluster_flags.parse_resources(["big=1", "ps:CPU=0.5", "ps:ssd=2"]),
      runtime_envs=cluster_flags.parse_runtime_envs(
          ['{"env_vars": {"A": "1"}}', 'worker:{"py_executable": "py"}']))
  assert options.task_resources("chief") == (2, {"big": 1.0})
  assert options.task_resources("ps") == (0.5, {"big": 1.0, "ssd": 2.0})
  assert options.runtime_env("worker") == {"env_vars": {"A": "1"}, "py_executable": "py"}
  assert options.runtime_env("chief") == {"env_vars": {"A": "1"}}
  assert cluster_flags.RayOptions().runtime_env("chief") is None
  for bad, message in [("boss:x=1", "KIND one of chief"), ("x=many", "expected")]:
    with pytest.raises(UsageError, match=message):
      cluster_flags.parse_resources([bad])
  for bad, message in [("boss:{}", "boss is no task kind"), ("{oops", "not JSON"),
                       ("[1]", "expected a JSON object")]:
    with pytest.raises(UsageError, match=message):
      cluster_flags.parse_runtime_envs([bad])


def test_tf_config_from_reported_addresses_matches_the_local_launchers():
  places = {"chief": "10.0.0.1:1", "worker0": "10.0.0.2:2", "worker1": "10.0.0.3:3",
            "ps0": "10.0.0.1:4"}
  spec = cluster.spec_from(places)
  assert spec == {"chief": ["10.0.0.1:1"], "ps": ["10.0.0.1:4"],
                  "worker": ["10.0.0.2:2", "10.0.0.3:3"]}
  assert list(spec) == list(cluster.cluster_spec(workers=2, ps=1))  # the same key order
  assert [label for label, _, _ in cluster.labels(2, 1, True)] == [
      label for label, _ in cluster.tasks(spec, evaluator=True)]
  assert "worker" not in cluster.spec_from({"chief": "h:1", "ps0": "h:2"})


def test_ray_only_flags_are_refused_with_the_local_engine():
  import helpers  # pylint: disable=g-import-not-at-top
  proc = helpers.run_module("mnist_estimator.cluster", "--max_restarts=1", "--", "--model=mlp",
                            timeout=60)
  assert proc.returncode == 2
  assert "error: --max_restarts only work with --engine=ray" in proc.stderr


@pytest.mark.parametrize("flag, error", [
    ("--distribute=mirrored", "error: --distribute=mirrored replicates the model over one "
     "process's devices; a cluster's tasks share it through its parameter servers: drop "
     "--distribute, or train in one process without the cluster"),
    ("--mode=train", "error: a cluster's tasks run --mode=train_and_evaluate, not --mode=train: "
     "drop --mode (evaluate, predict and export the model_dir after the job, without the "
     "cluster)")])
def test_flags_no_task_can_run_with_are_refused_before_any_starts(flag, error):
  import helpers  # pylint: disable=g-import-not-at-top
  proc = helpers.run_module("mnist_estimator.cluster", "--", "--model=mlp", flag, timeout=60)
  assert proc.returncode == 2 and "[cluster]" not in proc.stdout
  assert proc.stderr.strip().splitlines() == [error]


def test_storage_check_sees_a_missing_or_another_folder(tmp_path):
  runner = ray_task.TaskRunner("worker0")
  (tmp_path / "check").write_text("token")
  assert runner.check_storage(str(tmp_path), "check", "token") is None
  assert "is missing" in runner.check_storage(str(tmp_path / "gone"), "check", "token")
  assert "another folder" in runner.check_storage(str(tmp_path), "other", "token")
  data = tmp_path / "data"
  data.mkdir()
  (data / "a.idx").write_bytes(b"12")
  listing = json.loads(json.dumps(ray_task.listing(str(data))))  # as Ray hands it over
  assert runner.check_storage(str(tmp_path), "check", "token", str(data), listing) is None
  (data / "b.idx").write_bytes(b"3")
  assert "holds other files" in runner.check_storage(str(tmp_path), "check", "token",
                                                     str(data), listing)


def test_task_runner_streams_lines_and_stops_the_tasks_group():
  runner = ray_task.TaskRunner("chief")
  script = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print('child', child.pid, flush=True)\n"
            "time.sleep(60)\n")
  pid = runner.start(["-c", script], {"TF_CONFIG": "{}"})
  assert os.getpgid(pid) == pid and os.getsid(pid) == pid  # a session of its own
  lines, deadline = [], time.time() + 30
  while not lines and time.time() < deadline:
    lines, code = runner.poll()
    time.sleep(0.1)
  assert code is None and lines[0].startswith("child ")
  child = int(lines[0].split()[1])
  _, code = runner.stop(timeout=5)
  assert code == -signal.SIGTERM
  time.sleep(0.5)
  assert not alive(child)  # the task's own children go with its group


def test_a_task_dies_with_its_runner(tmp_path):
  """PDEATHSIG: a task outlives no actor, however the actor's process ends."""
  script = tmp_path / "actor.py"
  script.write_text(
      "import sys, time\n"
      f"sys.path.insert(0, {os.getcwd()!r})\n"
      "from mnist_estimator.cluster import ray_task\n"
      "runner = ray_task.TaskRunner('ps0')\n"
      "print(runner.start(['-c', 'import time; time.sleep(60)'], {}), flush=True)\n"
      "time.sleep(60)\n")
  import subprocess  # pylint: disable=g-import-not-at-top
  actor = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
  task = int(actor.stdout.readline())
  actor.kill()  # as ray.kill ends an actor: SIGKILL, no cleanup of ours
  actor.wait()
  deadline = time.time() + 10
  while alive(task) and time.time() < deadline:
    time.sleep(0.1)
  assert not alive(task)

