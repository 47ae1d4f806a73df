"""The local cluster launcher: TF_CONFIGs, a real cluster in bf16, a dying task, SIGTERM."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import cluster_helpers
import helpers
import pytest

from mnist_estimator.cluster import main as cluster
from mnist_estimator.cluster import tf_config

# Emulated bf16 (no AVX512_BF16) is ~10x slower than fp32: the bf16 cluster's steps are
# smaller there (the graph, its dtypes and the unfused convolutions are the same).
BF16_STEPS, BF16_BATCH = (50, 8) if helpers.NATIVE_BF16 else (30, 2)


def test_tasks_and_tf_config():
  spec = tf_config.cluster_spec(workers=2, ps=1)
  assert len(spec["chief"]) == 1 and len(spec["worker"]) == 2 and len(spec["ps"]) == 1
  addresses = spec["chief"] + spec["worker"] + spec["ps"]
  assert len(set(addresses)) == 4 and all(a.startswith("127.0.0.1:") for a in addresses)
  labels = [label for label, _ in tf_config.tasks(spec, evaluator=True)]
  assert labels == ["chief", "worker0", "worker1", "ps0", "evaluator"]
  assert tf_config.tasks(spec, True)[-1][1]["task"] == {"type": "evaluator", "index": 0}


def progress_steps(out, label):
  steps = re.findall(rf"^\[{label}\] step ([\d,]+)/", out, re.M)
  return [int(s.replace(",", "")) for s in steps]


@pytest.fixture
def launch():
  """cluster_helpers.Launched, and whatever a failed test's launch left running killed after."""
  yield cluster_helpers.Launched
  cluster_helpers.Launched.kill_all()


@pytest.mark.bf16
def test_chief_worker_ps_and_evaluator_train_in_bf16(tmp_path, launch):
  """The forced-bf16 group's cluster: grappler's bf16 conv fusion must not reach a worker.

  The chief is held until the worker has trained (tf.estimator starts a worker 5 s after the
  chief, and a fast chief could otherwise finish first), so every CPU and load proves it.
  """
  model_dir = tmp_path / "m"
  launched = launch(
      "--workers=1", "--ps=1", "--evaluator", "--",
      "--model=cnn", "--dataset=mnist_sample", f"--steps={BF16_STEPS}",
      f"--model_dir={model_dir}", "--precision=bf16", f"--batch_size={BF16_BATCH}",
      "--log_every_n_iter=10", "--optimizer=adam", "--learning_rate=0.001", "--noreport",
      f"--save_checkpoints_steps={BF16_STEPS}")
  cluster_helpers.worker_trains_alone(launched, lines=2)
  code, out = launched.finish(timeout=400)
  assert code == 0, out[-3000:]
  assert re.search(r"^\[cluster\] worker0 on 127\.0\.0\.1:\d+, pid \d+$", out, re.M), out[:2000]
  assert "train step bf16" in out and "_FusedConv2D" not in out
  chief, worker = progress_steps(out, "chief"), progress_steps(out, "worker0")
  assert chief and len(worker) >= 2 and max(worker) > 0, out[-3000:]  # both trained
  assert len(set(chief) | set(worker)) > len(chief)  # one shared global step
  assert "[ps0] " in out
  assert "[evaluator] eval on 1000 mnist_sample test images" in out, out[-3000:]
  steps = [int(m.group(1)) for f in os.listdir(model_dir)
           for m in [re.match(r"model\.ckpt-(\d+)\.index$", f)] if m]
  assert steps and max(steps) >= BF16_STEPS, steps  # two trainers may both take the last step
  assert json.loads((model_dir / "mnist_estimator.json").read_text())["model"] == "cnn"


def _fake_task(code, delay, line):
  """A task printing `line`, then ending after `delay` s with exit `code` (SIGKILL: killed)."""
  end = "os.kill(os.getpid(), 9)" if code == "SIGKILL" else f"sys.exit({code})"
  return subprocess.Popen([sys.executable, "-c", f"import os, sys, time; print({line!r}, "
                           f"flush=True); time.sleep({delay}); {end}"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("dies, how, code", [("worker0", "SIGKILL", 1), ("ps0", 3, 3),
                                             ("chief", 3, 3)])
def test_cluster_names_the_task_that_died(dies, how, code, capsys):
  """Its exit code is the launcher's; a task killed by a signal is named so, and gives 1."""
  import threading  # pylint: disable=g-import-not-at-top

  from mnist_estimator.cluster import watch as cluster_watch  # pylint: disable=g-import-not-at-top
  tasks = cluster_watch.Tasks()
  for label in ("chief", "worker0", "ps0"):
    tasks.procs[label] = (_fake_task(how, 0.1, f"{label} last words") if label == dies
                          else _fake_task(0, 60, f"{label} working"))
    threading.Thread(target=tasks.stream, args=(label, tasks.procs[label]), daemon=True).start()
  start = time.time()
  try:
    returned = cluster_watch.watch(tasks, grace_secs=120)
  finally:
    cluster._stop_all(tasks.procs)  # pylint: disable=protected-access
  assert returned == code and time.time() - start < 30
  err = capsys.readouterr().err
  died = "signal SIGKILL" if how == "SIGKILL" else f"exit code {how}"
  assert f"task {dies} died ({died})" in err and f"{dies} last words" in err
  assert all(proc.poll() is not None for proc in tasks.procs.values())


# The launcher's tasks stand in for main: processes that sleep. "starting": the SIGTERM comes
# while the second task starts (the launcher died at once, its first task left running).
LAUNCH = """
import os, signal, subprocess, sys
from mnist_estimator.cluster import main as cluster
started = []

def start(label, task_config, spec, training_flags):
  if started and sys.argv[1] == "starting":
    os.kill(os.getpid(), signal.SIGTERM)
  proc = subprocess.Popen([sys.executable, "-c", "import time; print(1, flush=True); "
                           "time.sleep(300)"], stdout=subprocess.PIPE, text=True)
  started.append(proc)
  print("pid", proc.pid, flush=True)
  return proc

cluster._start = start
sys.exit(cluster.launch([], workers=0, ps=1, evaluator=False, grace_secs=10))
"""


@pytest.mark.parametrize("when", ["starting", "watching"])
def test_sigterm_to_the_launcher_stops_its_tasks(tmp_path, when):
  script = tmp_path / "launch.py"
  script.write_text(LAUNCH)
  proc = subprocess.Popen([sys.executable, str(script), when], cwd=helpers.ROOT,
                          env=helpers.cli_env(), stdout=subprocess.PIPE, text=True)
  pids = []
  for line in proc.stdout:
    pids += [int(line.split()[1])] if line.startswith("pid ") else []
    if len(pids) == (1 if when == "starting" else 2):
      break
  if when == "watching":
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=30) == 143
  for pid in pids:
    assert not os.path.exists(f"/proc/{pid}") or _zombie(pid), pid


def _zombie(pid):
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().split()[2] == "Z"
  except OSError:
    return True


def _cluster_run(launch, model_dir, *options, timeout=300):
  launched = launch("--workers=1", *options[:options.index("--")], "--", "--model=mlp",
                    "--dataset=mnist_sample", f"--model_dir={model_dir}", "--noreport",
                    "--save_checkpoints_steps=20", "--log_every_n_iter=10",
                    *options[options.index("--") + 1:])
  return launched.finish(timeout=timeout)


def test_a_job_resumed_with_stop_at_accuracy_stops_early_and_ends(tmp_path, launch):
  """A job started without a stop option, resumed with --stop_at_accuracy: it restores (the
  stop signal is in no checkpoint), the chief stops at the evaluation that reaches it, the
  workers follow, and the evaluator ends after the chief's last checkpoint instead of waiting
  for one at --steps, which never comes (the launcher then failed the job after
  --grace_secs).
  """
  model_dir = tmp_path / "m"
  code, out = _cluster_run(launch, model_dir, "--", "--steps=20")
  assert code == 0, out[-3000:]
  code, out = _cluster_run(launch, model_dir, "--evaluator", "--grace_secs=60", "--",
                           "--steps=5000", "--stop_at_accuracy=0.5")
  assert code == 0, out[-3000:]
  assert "not found in checkpoint" not in out and "still running" not in out
  assert re.search(r"^\[chief\] stopping: accuracy [\d.]+ at step [\d,]+ reached "
                   r"--stop_at_accuracy=0\.5$", out, re.M), out[-3000:]
  last = max(int(m.group(1)) for name in os.listdir(model_dir)
             for m in [re.match(r"model\.ckpt-(\d+)\.index$", name)] if m)
  assert 20 <= last < 5000
  assert max(progress_steps(out, "worker0") or [0]) < 5000  # the worker followed the chief
  evaluated = re.findall(r"^\[evaluator\] eval on 500 mnist_sample validation images.*"
                         r"global_step ([\d,]+)$", out, re.M)
  assert evaluated and int(evaluated[-1].replace(",", "")) == last, (evaluated, last)
  assert "[evaluator] eval on 1000 mnist_sample test images" in out  # then the test set
