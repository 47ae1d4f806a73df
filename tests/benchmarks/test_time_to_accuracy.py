"""The time-to-accuracy benchmark: its ports train the recipe ours does (tiny runs, no speed)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import paths
from benchmarks import time_to_accuracy
from benchmarks import tta_recipe
from mnist_estimator.head import optimizers


def test_the_ports_schedule_is_ours():
  total, peak, warmup = 215, 0.01, 0.25
  steps = [0, 1, 20, 53, 54, 100, 214, 215]
  with tf.Graph().as_default(), tf.compat.v1.Session() as session:
    ours = session.run([optimizers.one_cycle(peak, tf.constant(s, tf.int64), total, warmup)
                        for s in steps])
  np.testing.assert_allclose(ours, [tta_recipe.one_cycle(s, total, peak, warmup) for s in steps],
                             rtol=1e-6, atol=1e-9)


def test_the_recipe_reaches_the_ports_as_fast_flags_says():
  spec = time_to_accuracy.recipe(paths.flagfile("fast"), None)
  argv = dict(a.split("=", 1) for a in time_to_accuracy.commands(
      time_to_accuracy.parse_args(["--data_dir=d"]), spec, "x.npz", "w", 3, False)["keras"][0]
      if a.startswith("--"))
  assert argv == {"--data": "x.npz", "--seed": "3", "--epochs": "1", "--batch_size": "256",
                  "--learning_rate": "0.015", "--beta1": "0.7", "--beta2": "0.9",
                  "--epsilon": "1e-07", "--warmup": "0.15", "--target": "0.99"}


def test_a_recipe_the_ports_cannot_write_is_refused():
  with pytest.raises(SystemExit, match=r"^error: .*fast_995.flags sets model, hidden_units, "
                     r"dropout, augment, moving_average_decay beyond what the Keras and PyTorch "
                     r"ports write"):
    time_to_accuracy.recipe(paths.flagfile("fast_995"), None)


def test_the_keras_port_trains_and_reports_one_line(tmp_path, small):
  data = tmp_path / "d.npz"
  np.savez(data, x_train=small.x_train[:512], y_train=small.y_train[:512],
           x_test=small.x_test[:100], y_test=small.y_test[:100])
  done = subprocess.run([sys.executable, "-m", "benchmarks.tta_keras", f"--data={data}",
                         "--target=0.5", "--epochs=2"], env=paths.child_env(),
                        capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert out["train_seconds"] > 0 and out["eval_seconds"] > 0 and out["epochs"] in (1, 2)
  assert out["reached"] == (out["accuracy"] >= 0.5)
  assert [p["epoch"] for p in out["curve"]] == list(range(1, out["epochs"] + 1))


def test_the_table_gives_medians_and_who_reached_the_target():
  rows = [{"seconds": s, "wall": s + 5, "accuracy": a} for s, a in ((9, .991), (7, .989),
                                                                   (8, .992))]
  text = time_to_accuracy.table({"ours": rows}, 0.99, True)
  assert "| ours | 8.0 | 13.0 | 0.9910 | 2 of 3 |" in text and "bf16 on (native)" in text


@pytest.mark.skipif(not paths.has_torch(paths.torch_python()),
                    reason="no Python with torch here (make torch, or Debian's python3-torch)")
def test_the_pytorch_port_trains_and_reports_one_line(tmp_path, small):
  data = tmp_path / "d.npz"
  np.savez(data, x_train=small.x_train[:512], y_train=small.y_train[:512],
           x_test=small.x_test[:100], y_test=small.y_test[:100])
  done = subprocess.run([paths.torch_python(), str(paths.REPO_ROOT) + "/benchmarks/tta_torch.py",
                         f"--data={data}", "--target=0.5"], capture_output=True, text=True,
                        timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert out["epochs"] == 1 and 0 <= out["accuracy"] <= 1
