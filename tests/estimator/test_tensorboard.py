"""TensorBoard: train and eval curves under shared tags in the event files, and a real server."""

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from tensorboard.backend.event_processing import event_accumulator

from mnist_estimator.run import runner
from mnist_estimator.run.spec import RunSpec


@pytest.fixture(scope="module")
def model_dir(small, tmp_path_factory):
  """conv_learn trained 20 steps with summaries every 5 steps, then evaluated."""
  path = str(tmp_path_factory.mktemp("tb") / "model")
  spec = RunSpec.for_model("conv_learn", model_dir=path, steps=20, batch_size=16,
                            save_summary_steps=5, log_every_n_iter=5, eval_batch_size=100, seed=0,
                            report=False)
  runner.run(spec, small)
  return path


def tags(path):
  acc = event_accumulator.EventAccumulator(
      path, size_guidance={event_accumulator.IMAGES: 0, event_accumulator.HISTOGRAMS: 0})
  acc.Reload()
  return acc, acc.Tags()


def test_train_events(model_dir):
  acc, found = tags(model_dir)
  assert {"loss", "accuracy", "learning_rate", "losses/cross_entropy"} <= set(found["scalars"])
  assert [e.step for e in acc.Scalars("loss")][-3:] == [6, 11, 16]  # every 5 steps
  # The batch accuracy of 16 images: a count of right ones over 16.
  assert all(abs(e.value * 16 - round(e.value * 16)) < 1e-4 for e in acc.Scalars("accuracy"))
  assert acc.Scalars("learning_rate")[0].value == pytest.approx(0.01)
  assert "input_images/image/0" in found["images"]
  assert "filters/conv_layer/Conv/kernel/image" in found["images"]
  grid = acc.Images("filters/conv_layer/Conv/kernel/image")[0]
  assert (grid.height, grid.width) == (12, 12)  # 4 filters of 5x5 in a 2x2 grid with borders
  assert {"weights/conv_layer/Conv/kernel", "weights/fully_connected/kernel",
          "weights/fully_connected_1/bias"} <= set(found["histograms"])


def test_the_graph_is_in_the_events_and_each_checkpoint_not_as_text(model_dir):
  """hooks.CheckpointSaver: TensorBoard's graph and meta graph, a .meta per checkpoint (from
  the start's at step 0), no graph.pbtxt."""
  acc, found = tags(model_dir)
  assert found["graph"] and found["meta_graph"]
  assert "conv_layer/Conv/Conv2D" in {node.name for node in acc.Graph().node}
  assert acc.MetaGraph().saver_def.filename_tensor_name
  metas = sorted(f for f in os.listdir(model_dir) if f.endswith(".meta"))
  assert metas[0] == "model.ckpt-0.meta" and "model.ckpt-20.meta" in metas
  assert "graph.pbtxt" not in os.listdir(model_dir)


def test_eval_events_share_the_tags(model_dir):
  acc, found = tags(os.path.join(model_dir, "eval"))
  assert {"loss", "accuracy"} <= set(found["scalars"])
  assert acc.Scalars("accuracy")[-1].step == 20


@contextlib.contextmanager
def tensorboard_server(logdir, log_path):
  """A real `tensorboard --logdir` on 127.0.0.1; yields its base URL."""
  tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
  log = open(log_path, "w+")
  proc = subprocess.Popen([tensorboard, "--logdir", logdir, "--host", "127.0.0.1",
                           "--port", "0", "--load_fast", "false"], stdout=log, stderr=log)
  try:
    port = None
    for _ in range(120):  # up to 60 s to start
      log.seek(0)
      match = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read())
      if match:
        port = match.group(1)
        break
      assert proc.poll() is None, f"tensorboard exited: {open(log_path).read()[-2000:]}"
      time.sleep(0.5)
    assert port, "tensorboard did not print its address"
    yield f"http://127.0.0.1:{port}"
  finally:
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def _get(url, body=None):
  data = None if body is None else json.dumps(body).encode()
  request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
  with urllib.request.urlopen(request, timeout=10) as response:
    return json.load(response)


@pytest.fixture(scope="module")
def served(model_dir, small, tmp_path_factory):
  """(url, the linear run's metrics): one real TensorBoard over conv_learn's and a linear run."""
  logdir = os.path.dirname(model_dir)
  # Summaries after the first step: TensorBoard drops the step-1 ones at the session start.
  other = RunSpec.for_model("linear", model_dir=os.path.join(logdir, "linear"), steps=12,
                            save_summary_steps=5, learning_rate=0.05, eval_batch_size=100,
                            report=False)
  evaluation = runner.run(other, small)["metrics"]
  with tensorboard_server(logdir, tmp_path_factory.mktemp("tb") / "tb.log") as url:
    yield url, evaluation


def test_a_real_tensorboard_serves_the_scalars(served):
  url, _ = served
  runs = {}
  for _ in range(60):  # the first load of the event files takes a moment
    runs = _get(f"{url}/data/plugin/scalars/tags")
    if "model/eval" in runs and "model" in runs:
      break
    time.sleep(0.5)
  assert {"loss", "accuracy", "learning_rate"} <= set(runs["model"])
  assert {"loss", "accuracy"} <= set(runs["model/eval"])
  graph = urllib.request.urlopen(f"{url}/data/plugin/graphs/graph?run=model", timeout=30).read()
  assert b"conv_layer/Conv/Conv2D" in graph  # the Graphs tab draws the training graph


def test_hparams_dashboard_compares_runs(served):
  url, evaluation = served
  query = {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN"], "colParams": [],
           "startIndex": 0, "sliceSize": 10}
  groups = []
  for _ in range(60):
    try:  # 500 until the first load of the event files is done
      groups = _get(f"{url}/data/plugin/hparams/session_groups", query)["sessionGroups"]
    except urllib.error.HTTPError:
      groups = []
    if len(groups) == 2 and all(len(g["metricValues"]) >= 4 for g in groups):
      break
    time.sleep(0.5)
  experiment = _get(f"{url}/data/plugin/hparams/experiment", {"experimentName": ""})
  by_name = {group["name"]: group for group in groups}
  assert set(by_name) == {"model", "linear"}
  assert by_name["model"]["hparams"]["model"] == "conv_learn"
  assert by_name["linear"]["hparams"]["learning_rate"] == pytest.approx(0.05)
  differs = {info["name"] for info in experiment["hparamInfos"] if info.get("differs")}
  assert {"model", "learning_rate"} <= differs
  metrics = {(m["name"].get("group", ""), m["name"]["tag"]): m["value"]
             for m in by_name["linear"]["metricValues"]}
  # The dashboard's metrics are the linear run's own last evaluation.
  assert metrics[("eval", "accuracy")] == pytest.approx(evaluation["accuracy"], abs=1e-6)
  assert metrics[("eval", "loss")] == pytest.approx(evaluation["loss"], rel=1e-4)
