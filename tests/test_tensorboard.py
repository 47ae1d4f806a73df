"""TensorBoard: train and eval curves under shared tags in the event files, and a real server."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from tensorboard.backend.event_processing import event_accumulator

from mnist_estimator import runner
from mnist_estimator.spec import RunSpec


@pytest.fixture(scope="module")
def model_dir(small, tmp_path_factory):
  """conv_learn trained 20 steps with summaries every 5 steps, then evaluated."""
  path = str(tmp_path_factory.mktemp("tb") / "model")
  spec = RunSpec.for_model("conv_learn", model_dir=path, steps=20, batch_size=16,
                            save_summary_steps=5, log_every_n_iter=5, eval_batch_size=100, seed=0)
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
  assert all(0.0 <= e.value <= 1.0 for e in acc.Scalars("accuracy"))
  assert acc.Scalars("learning_rate")[0].value == pytest.approx(0.01)
  assert "input_images/image/0" in found["images"]
  assert "filters/conv_layer/Conv/kernel/image" in found["images"]
  grid = acc.Images("filters/conv_layer/Conv/kernel/image")[0]
  assert (grid.height, grid.width) == (12, 12)  # 4 filters of 5x5 in a 2x2 grid with borders
  assert {"weights/conv_layer/Conv/kernel", "weights/fully_connected/kernel",
          "weights/fully_connected_1/bias"} <= set(found["histograms"])


def test_eval_events_share_the_tags(model_dir):
  acc, found = tags(os.path.join(model_dir, "eval"))
  assert {"loss", "accuracy"} <= set(found["scalars"])
  assert acc.Scalars("accuracy")[-1].step == 20


def test_a_real_tensorboard_serves_the_scalars(model_dir, tmp_path):
  tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
  log = open(tmp_path / "tb.log", "w+")
  proc = subprocess.Popen([tensorboard, "--logdir", model_dir, "--host", "127.0.0.1",
                           "--port", "0", "--load_fast", "false"], stdout=log, stderr=log)
  try:
    port = None
    for _ in range(120):  # up to 60 s to start
      log.seek(0)
      match = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read())
      if match:
        port = match.group(1)
        break
      assert proc.poll() is None, "tensorboard exited"
      time.sleep(0.5)
    assert port, "tensorboard did not print its address"
    runs = {}
    for _ in range(60):  # the first load of the event files takes a moment
      with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags",
                                  timeout=10) as response:
        runs = json.load(response)
      if "eval" in runs and "." in runs:
        break
      time.sleep(0.5)
    assert {"loss", "accuracy", "learning_rate"} <= set(runs["."])
    assert {"loss", "accuracy"} <= set(runs["eval"])
  finally:
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
