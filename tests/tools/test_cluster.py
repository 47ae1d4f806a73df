"""A real TF_CONFIG cluster on loopback: chief + 1 worker + 1 ps train one shared global step."""

import json
import os
import re

import helpers

from mnist_estimator.tools import cluster


def test_tasks_and_tf_config():
  spec = cluster.cluster_spec(workers=2, ps=1)
  assert len(spec["chief"]) == 1 and len(spec["worker"]) == 2 and len(spec["ps"]) == 1
  addresses = spec["chief"] + spec["worker"] + spec["ps"]
  assert len(set(addresses)) == 4 and all(a.startswith("127.0.0.1:") for a in addresses)
  labels = [label for label, _ in cluster.tasks(spec, evaluator=True)]
  assert labels == ["chief", "worker0", "worker1", "ps0", "evaluator"]
  assert cluster.tasks(spec, True)[-1][1]["task"] == {"type": "evaluator", "index": 0}


def progress_steps(out, label):
  steps = re.findall(rf"^\[{label}\] step ([\d,]+)/", out, re.M)
  return [int(s.replace(",", "")) for s in steps]


def test_chief_worker_and_ps_train_together(tmp_path):
  model_dir = tmp_path / "m"
  proc = helpers.run_module(
      "mnist_estimator.tools.cluster", "--workers=1", "--ps=1", "--",
      "--model=linear", "--dataset=mnist_sample", "--steps=1500", f"--model_dir={model_dir}",
      "--eval_every_steps=500", "--log_every_n_iter=100", "--optimizer=sgd",
      "--learning_rate=0.5", "--batch_size=32", timeout=400)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  out = proc.stdout
  chief, worker = progress_steps(out, "chief"), progress_steps(out, "worker0")
  assert chief and worker, out[-3000:]
  # Both advanced the one global step (each logs it), and it went past either one's share.
  assert max(worker) > 0 and max(chief) > 0
  assert len(set(chief) | set(worker)) > len(chief)
  assert "[ps0] " in out
  checkpoints = [f for f in os.listdir(model_dir) if f.endswith(".index")]
  assert any(re.match(r"model\.ckpt-1[5-9]\d\d\.index", f) for f in checkpoints), checkpoints
  assert json.loads((model_dir / "mnist_estimator.json").read_text())["model"] == "linear"
