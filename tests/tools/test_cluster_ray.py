"""tools.cluster --engine=ray on a real local Ray cluster, loopback only: train, faults, storage."""

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
import typing

import helpers
import pytest

ray = pytest.importorskip("ray")

from mnist_estimator.tools import cluster  # pylint: disable=g-import-not-at-top

LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_AUTH_MODE": "token"}
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
MLP = ["--model=mlp", "--dataset=mnist_sample", "--precision=fp32", "--noreport",
       "--batch_size=16"]


def _free_ports(count):
  return cluster.free_ports(count)


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
       f"--temp-dir={temp}"], env=_env(RAY_AUTH_TOKEN_PATH=token), stdout=log, stderr=subprocess.STDOUT,
      start_new_session=True)
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


def _tree(pid):
  """pid and every descendant of it now."""
  children = {}
  for entry in os.listdir("/proc"):
    if entry.isdigit():
      try:
        with open(f"/proc/{entry}/stat") as f:
          ppid = int(f.read().rsplit(")", 1)[1].split()[1])
      except (OSError, IndexError, ValueError):
        continue
      children.setdefault(ppid, []).append(int(entry))
  found, todo = set(), [pid]
  while todo:
    found.add(todo[-1])
    todo += [c for c in children.get(todo.pop(), []) if c not in found]
  return found


def _alive(pid):
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


def _assert_no_leftovers(pids, secs=20):
  deadline = time.time() + secs
  while any(_alive(p) for p in pids) and time.time() < deadline:
    time.sleep(0.3)
  left = [p for p in pids if _alive(p)]
  assert not left, [open(f"/proc/{p}/cmdline").read().replace("\0", " ")[:200] for p in left]


class Driver:
  """The launcher as a user runs it: output read line by line, its process tree sampled."""

  def __init__(self, *argv, head=None):
    address = [f"--address={head.address}"] if head else []
    env = _env(RAY_AUTH_TOKEN_PATH=head.token_path) if head else _env()
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "mnist_estimator.tools.cluster", "--engine=ray", *address, *argv],
        cwd=helpers.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    self.lines = []
    self.seen = set()  # every process of the job seen: the driver's tree, tasks and actors
    threading.Thread(target=self._sample, daemon=True).start()

  def _sample(self):
    """The driver's process tree (a private Ray's processes among it) while it runs."""
    while self.proc.poll() is None:
      self.seen |= _tree(self.proc.pid)
      time.sleep(0.5)

  def read_until(self, pattern, timeout=120):
    """Reads lines until one matches; returns the match."""
    deadline = time.time() + timeout
    for line in self.proc.stdout:
      self.lines.append(line)
      self._note(line)
      match = re.search(pattern, line)
      if match:
        return match
      assert time.time() < deadline, "".join(self.lines)[-4000:]
    raise AssertionError(f"no line matched {pattern}:\n" + "".join(self.lines)[-4000:])

  def finish(self, timeout=240):
    out, _ = self.proc.communicate(timeout=timeout)
    for line in out.splitlines(True):
      self.lines.append(line)
      self._note(line)
    return self.proc.returncode, "".join(self.lines)

  def _note(self, line):
    match = re.match(r"\[cluster\] (\w+) on .*, pid (\d+) \(Ray actor pid (\d+)\)", line)
    if match:
      self.seen |= {int(match.group(2)), int(match.group(3))}

  def pid(self, label):
    return next(int(m.group(1)) for line in reversed(self.lines)
                for m in [re.match(rf"\[cluster\] {label} on .*, pid (\d+)", line)] if m)


def _progress(out, label):
  return [int(s.replace(",", "")) for s in
          re.findall(rf"^\[{label}\] step ([\d,]+)/", out, re.M)]


def _checkpoints(model_dir):
  return sorted(int(m.group(1)) for name in os.listdir(model_dir)
                for m in [re.match(r"model\.ckpt-(\d+)\.index$", name)] if m)


def _kill_when_training(driver, label="worker0", lines=1):
  """Waits for `lines` progress lines of the task's own, SIGKILLs it; returns its pid."""
  for _ in range(lines):
    driver.read_until(rf"^\[{label}\] step ")
  pid = driver.pid(label)
  os.kill(pid, signal.SIGKILL)
  return pid


@pytest.mark.bf16
def test_four_tasks_train_through_a_killed_worker_and_a_restart(head, tmp_path):
  """A worker killed: named, all stopped, nothing left. The re-run resumes; chief, worker,
  ps and evaluator then train 400+ steps with --max_restarts=1 through another kill.

  In bf16: Ray's tasks are cluster tasks to precision.configure (no bf16 _FusedConv2D).
  """
  model_dir, every = tmp_path / "m", 20
  # The cnn's steps are slow enough (~20/s) for a worker, which starts ~10 s after the chief
  # (tf.estimator delays worker i by 5 (i + 1) s), to train a good part of the job.
  argv = ["--", *MLP, "--model=cnn", "--precision=bf16", "--steps=600",
          f"--log_every_n_iter={every}", "--save_checkpoints_steps=50", f"--model_dir={model_dir}"]
  first = Driver("--workers=1", "--ps=1", *argv, head=head)
  first.read_until(r"^\[chief\] step ([6-9]\d|\d{3,})/")  # past the checkpoint at 50
  os.kill(first.pid("worker0"), signal.SIGKILL)
  code, out = first.finish(timeout=60)
  assert code == 1, out[-3000:]
  assert re.search(r"task worker0 died \(signal SIGKILL\); its last line: .+; "
                   "stopping the others", out), out[-3000:]
  assert re.search(r"^\[chief\] interrupted at step \d+; checkpoint saved", out, re.M), out[-2000:]
  _assert_no_leftovers(first.seen - {first.proc.pid})
  saved = max(_checkpoints(model_dir))
  assert 50 <= saved < 600 - 400, saved

  again = Driver("--workers=1", "--ps=1", "--evaluator", "--max_restarts=1", *argv, head=head)
  start = int(again.read_until(r"^\[chief\] step ([\d,]+)/").group(1).replace(",", ""))
  assert start >= saved  # the re-run resumed from the checkpoint
  killed = _kill_when_training(again, lines=3)
  again.read_until(r"^\[cluster\] restart 1/1: relaunching every task from the last "
                   r"checkpoint \(step [\d,]+\)")
  assert not _alive(killed)
  code, out = again.finish()
  assert code == 0, out[-4000:]
  assert "train step bf16" in out and "_FusedConv2D" not in out
  # A line at a task's first step, then every `every` of its own: what each trained itself.
  own = {label: sum(max(0, len(_progress(launch, label)) - 1) * every
                    for launch in out.split("[cluster] restart 1/1"))
         for label in ("chief", "worker0")}
  assert own["chief"] >= 2 * every and own["worker0"] >= 2 * every, own
  lost = 50  # at most a checkpoint interval is trained again after the restart
  assert 600 - start - 4 * every <= sum(own.values()) <= 600 - start + lost + 4 * every, own
  assert re.search(r"^\[evaluator\] eval on 1000 mnist_sample test images.*global_step 6\d\d",
                   out, re.M), out[-3000:]
  assert max(_checkpoints(model_dir)) >= 600
  assert not [n for n in os.listdir(model_dir) if n.startswith(".cluster-check")]
  _assert_no_leftovers(again.seen - {again.proc.pid})


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
