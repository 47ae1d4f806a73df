"""The cluster with --engine=ray on a real local Ray, loopback only: train, faults, storage."""

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
import typing

import cluster_helpers
from cluster_helpers import alive, process_tree, worker_trains_alone
import helpers
import pytest

ray = pytest.importorskip("ray")

from mnist_estimator.cluster import tf_config  # noqa: E402  # pylint: disable=g-import-not-at-top

LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_AUTH_MODE": "token"}
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
# The restart test trains the cnn in bf16 where the CPU has it natively: there grappler would
# fuse a bf16 conv a cluster task refuses. Emulated (AVX2), bf16 steps are ~10x slower and
# nothing fuses (test_cluster.py's bf16 cluster covers that case): there it trains the mlp in
# fp32, the same job for the cluster at a third of the CPU.
RESTART_MODEL, RESTART_PRECISION = ("cnn", "bf16") if helpers.NATIVE_BF16 else ("mlp", "fp32")
in_bf16_group = pytest.mark.bf16 if helpers.NATIVE_BF16 else (lambda test: test)
MLP = ["--model=mlp", "--dataset=mnist_sample", "--precision=fp32", "--noreport",
       "--batch_size=16"]


def _free_ports(count):
  return tf_config.free_ports(count)


def _env(**extra):
  return helpers.cli_env(**LOOPBACK, **extra)


class Head(typing.NamedTuple):
  address: str     # --address=HOST:PORT
  token_path: str  # its token: RAY_AUTH_TOKEN_PATH for a driver


@pytest.fixture(scope="module")
def head():
  """A one-node Ray cluster on 127.0.0.1 for the module ('ray start --head' as a user runs it).

  With token authentication, and the token made here (RAY_AUTH_TOKEN_PATH, for the head and
  every driver of the module): nothing is read from or left in the home folder.
  """
  temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit
  token = os.path.join(temp, "auth_token")
  with open(token, "w") as f:
    f.write(secrets.token_hex(32))
  gcs, client, dashboard = _free_ports(3)
  log = open(os.path.join(temp, "head.log"), "w")
  proc = subprocess.Popen(
      [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
       f"--ray-client-server-port={client}", f"--dashboard-port={dashboard}",
       "--include-dashboard=false", "--disable-usage-stats", "--num-cpus=8",
       f"--temp-dir={temp}"], env=_env(RAY_AUTH_TOKEN_PATH=token), stdout=log,
      stderr=subprocess.STDOUT, start_new_session=True)
  try:
    deadline = time.time() + 90
    while "Ray runtime started" not in open(log.name).read():
      assert proc.poll() is None and time.time() < deadline, open(log.name).read()[-3000:]
      time.sleep(0.3)
    yield Head(f"127.0.0.1:{gcs}", token)
  finally:
    with contextlib.suppress(ProcessLookupError):  # the head may have died on its own
      os.killpg(proc.pid, signal.SIGKILL)  # the head's own processes: no state worth a drain
    proc.wait()
    log.close()
    shutil.rmtree(temp, ignore_errors=True)


def _assert_no_leftovers(pids, secs=20):
  deadline = time.time() + secs
  while any(alive(p) for p in pids) and time.time() < deadline:
    time.sleep(0.3)
  left = [p for p in pids if alive(p)]
  assert not left, [open(f"/proc/{p}/cmdline").read().replace("\0", " ")[:200] for p in left]


class Driver(cluster_helpers.Launched):
  """`cluster --engine=ray` as a user runs it; its process tree sampled while it runs."""

  def __init__(self, *argv, head=None):
    address = [f"--address={head.address}"] if head else []
    env = _env(RAY_AUTH_TOKEN_PATH=head.token_path) if head else _env()
    super().__init__("--engine=ray", *address, *argv, env=env)
    threading.Thread(target=self._sample, daemon=True).start()

  def _sample(self):
    """The driver's process tree (a private Ray's processes among it) while it runs."""
    while self.proc.poll() is None:
      self.seen |= process_tree(self.proc.pid)
      time.sleep(0.5)

  def note(self, line):
    match = re.match(r"\[cluster\] (\w+) on .*, pid (\d+) \(Ray actor pid (\d+)\)", line)
    if match:
      self.seen |= {int(match.group(2)), int(match.group(3))}


@pytest.fixture(autouse=True)
def _jobs_end_with_their_test():
  """Whatever a test's drivers left running (it failed midway) is killed after it."""
  yield
  Driver.kill_all()


def _progress(out, label):
  return [int(s.replace(",", "")) for s in
          re.findall(rf"^\[{label}\] step ([\d,]+)/", out, re.M)]


def _checkpoints(model_dir):
  return sorted(int(m.group(1)) for name in os.listdir(model_dir)
                for m in [re.match(r"model\.ckpt-(\d+)\.index$", name)] if m)


@in_bf16_group
def test_four_tasks_train_through_a_killed_worker_and_a_restart(head, tmp_path):
  """A worker killed: named, all stopped; with --max_restarts=1 every task is relaunched and
  resumes from the checkpoint the chief saved as it stopped; chief, worker, ps and evaluator
  then finish the job, and nothing is left. A job out of restarts exits with the code of its
  last attempt (test_a_job_out_of_restarts_exits_with_the_code_of_its_last_attempt), 1 for a
  task killed by a signal (test_cluster.py's test_cluster_names_the_task_that_died).

  In bf16 on a native CPU: Ray's tasks are cluster tasks to precision.configure (no bf16
  _FusedConv2D).
  """
  model_dir, every, steps = tmp_path / "m", 10, 150
  argv = ["--", *MLP, f"--model={RESTART_MODEL}", f"--precision={RESTART_PRECISION}",
          f"--steps={steps}",
          f"--log_every_n_iter={every}", "--save_checkpoints_steps=50", f"--model_dir={model_dir}"]
  job = Driver("--workers=1", "--ps=1", "--evaluator", "--max_restarts=1", *argv, head=head)
  start = worker_trains_alone(job, lines=3)
  assert start == 1  # a new model_dir: the chief's first line is after its first step
  killed = job.pid("worker0")
  os.kill(killed, signal.SIGKILL)
  saved = int(job.read_until(r"^\[cluster\] restart 1/1: relaunching every task from the last "
                             r"checkpoint \(step ([\d,]+)\)").group(1).replace(",", ""))
  assert not alive(killed)
  code, out = job.finish()
  assert code == 0, out[-4000:]
  first, second = out.split("[cluster] restart 1/1")
  assert re.search(r"task worker0 died \(signal SIGKILL\); its last line: .+; "
                   "stopping the others", first), first[-3000:]
  stopped = re.findall(r"^\[chief\] interrupted at step ([\d,]+); checkpoint saved", first, re.M)
  assert stopped and 1 <= saved == int(stopped[-1].replace(",", "")) < steps, (stopped, saved)
  resumed = _progress(second, "chief")
  assert resumed and resumed[0] >= saved, resumed  # the relaunched tasks resumed from it
  assert f"train step {RESTART_PRECISION}" in out and "_FusedConv2D" not in out
  # A line at a task's first step, then every `every` of its own: what each trained itself.
  own = {label: sum(max(0, len(_progress(launch, label)) - 1) * every
                    for launch in (first, second))
         for label in ("chief", "worker0")}
  assert own["chief"] >= 2 * every and own["worker0"] >= 2 * every, own
  lost = 50  # at most a checkpoint interval is trained again after the restart
  assert steps - 4 * every <= sum(own.values()) <= steps + lost + 4 * every, own
  evaluated = re.findall(r"^\[evaluator\] eval on 1000 mnist_sample test images.*global_step "
                         r"([\d,]+)", out, re.M)
  assert evaluated and int(evaluated[-1].replace(",", "")) >= steps, out[-3000:]
  assert max(_checkpoints(model_dir)) >= steps
  assert not [n for n in os.listdir(model_dir) if n.startswith(".cluster-check")]
  _assert_no_leftovers(job.seen - {job.proc.pid})


def test_a_job_out_of_restarts_exits_with_the_code_of_its_last_attempt(tmp_path, monkeypatch,
                                                                        capsys):
  """ray_engine.launch with each attempt's Job failing as a killed task's does (code 1)."""
  from mnist_estimator.cluster import ray_engine, task_flags  # pylint: disable=g-import-not-at-top
  attempts = []

  class FailingJob:
    def __init__(self, ray_module, tasks, argv, shared, options):
      del ray_module, argv, options
      attempts.append((tuple(label for label, _, _ in tasks), shared["model_dir"]))

    def run(self):
      return 1

  shut = []
  ray_module = types.SimpleNamespace(shutdown=lambda: shut.append(1))
  monkeypatch.setattr(ray_engine, "connect", lambda address, needed: ray_module)
  monkeypatch.setattr(ray_engine, "Job", FailingJob)
  (tmp_path / "m").mkdir()
  for restarts in (0, 1):
    options = task_flags.RayOptions(address="127.0.0.1:1", max_restarts=restarts)
    assert ray_engine.launch([f"--model_dir={tmp_path / 'm'}"], 1, 1, False, options) == 1
  assert attempts == [(("chief", "worker0", "ps0"), str(tmp_path / "m"))] * 3
  assert shut == [1, 1]  # Ray let go of each time
  assert capsys.readouterr().out.count("[cluster] restart 1/1: relaunching every task") == 1


def test_a_model_dir_one_task_cannot_see_is_refused_before_training(tmp_path):
  """On a private Ray (no --address), stopped after: the worker's actor runs in a mount
  namespace where the model_dir's parent is an empty tmpfs, as on a node without the mount."""
  shared = tmp_path / "shared"
  shared.mkdir()
  blind = tmp_path / "blind_python"  # the python of a node that did not mount `shared`
  blind.write_text(
      "#!/bin/sh\nexec unshare --mount --propagation private -- sh -c "
      f"'mount -t tmpfs tmpfs {shared} && exec {sys.executable} \"$@\"' sh \"$@\"\n")
  blind.chmod(0o755)
  if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode:
    pytest.skip("unshare --mount needs root (CAP_SYS_ADMIN) here")
  driver = Driver("--workers=1", "--ps=1",
                  f'--runtime_env=worker:{{"py_executable": "{blind}"}}', "--", *MLP,
                  "--steps=50", f"--model_dir={shared / 'm'}")
  code, out = driver.finish(timeout=120)
  assert code == 2, out[-3000:]
  assert re.search(rf"error: task worker0 on node .+ \(127\.0\.0\.1\) cannot see this job's "
                   rf"storage: --model_dir={shared / 'm'} is missing there; mount the same "
                   "shared filesystem", out), out[-3000:]
  assert "[chief] " not in out and not _checkpoints(shared / "m")  # nothing trained
  assert os.listdir(shared / "m") == []  # the check file is gone too
  # A private Ray's token lived in its environment only: nothing in the (test's) home folder.
  assert not os.path.exists(os.path.expanduser("~/.ray")), os.listdir(os.path.expanduser("~"))
  _assert_no_leftovers(driver.seen - {driver.proc.pid})


def test_tasks_no_node_can_take_are_refused_with_what_they_ask(head, tmp_path):
  driver = Driver("--workers=1", "--ps=1", "--task_resources=ps:ssd=1",
                  "--placement_timeout_secs=3", "--", *MLP, f"--model_dir={tmp_path / 'm'}",
                  head=head)
  code, out = driver.finish(timeout=90)
  assert code == 2, out[-3000:]
  assert re.search(r"error: could not place every task within 3 s \(--placement_timeout_secs\): "
                   r"ps0 1 CPU, 1 ssd \(--task_cpus, --task_resources\), and the Ray cluster has "
                   r".*8 CPU", out), out[-3000:]
  assert "[chief] " not in out
  _assert_no_leftovers(driver.seen - {driver.proc.pid})
