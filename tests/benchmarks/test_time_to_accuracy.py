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
      time_to_accuracy.parse_args(["--data_dir=d"]), spec, "x.npz", "w", 3, False,
      60000)["keras"][0]
      if a.startswith("--"))
  assert argv == {"--data": "x.npz", "--seed": "3", "--epochs": "1", "--batch_size": "256",
                  "--learning_rate": "0.015", "--beta1": "0.7", "--beta2": "0.9",
                  "--epsilon": "1e-07", "--warmup": "0.15", "--target": "0.99",
                  "--hidden": "256", "--dropout": "0.0", "--shift": "0.0", "--rotate": "0.0",
                  "--moving_average_decay": "0.0"}


def test_ours_evaluates_after_each_epoch_and_stops_at_the_target():
  # As the ports: all 60,000 training images, the test set after each epoch (235 steps of 256).
  spec = time_to_accuracy.recipe(paths.flagfile("fast_995"), None)
  argv = time_to_accuracy.commands(time_to_accuracy.parse_args(["--data_dir=d", "--target=0.995"]),
                                   spec, "x.npz", "w", 3, False, 60000)["ours"][0]
  assert {"--mode=train_and_evaluate", "--validation_split=0", "--eval_every_steps=235",
          "--stop_at_accuracy=0.995", "--seed=3"} <= set(argv)


def test_a_recipe_the_ports_cannot_write_is_refused(tmp_path):
  flagfile = tmp_path / "r.flags"
  flagfile.write_text("--model=cnn\n--optimizer=sgd\n--augment=shift,zoom\n--l2=0.001\n")
  with pytest.raises(SystemExit, match=r"^error: .*r.flags sets model, optimizer, lr_schedule, "
                     r"augment, l2 beyond what the Keras and PyTorch ports write"):
    time_to_accuracy.recipe(str(flagfile), None)


def test_dropout_augmentation_and_the_average_reach_the_ports(tmp_path):
  flagfile = tmp_path / "r.flags"
  flagfile.write_text("--model=fast_cnn\n--optimizer=adam\n--lr_schedule=one_cycle\n"
                      "--hidden_units=128\n--dropout=0.3\n--augment=rotate:5,shift\n"
                      "--moving_average_decay=0.99\n")
  spec = time_to_accuracy.recipe(str(flagfile), 4)
  assert time_to_accuracy.port_flags(spec) == [
      "--hidden=128", "--dropout=0.3", "--shift=0.1", "--rotate=5.0",
      "--moving_average_decay=0.99"]
  assert spec.epochs == 4
  spec = time_to_accuracy.recipe(paths.flagfile("fast_995"), None)  # the 99.5% recipe: timed
  assert time_to_accuracy.port_flags(spec) == [
      "--hidden=256", "--dropout=0.4", "--shift=0.1", "--rotate=10.0",
      "--moving_average_decay=0.999"]


def test_the_ports_average_decays_as_tensorflows():
  with tf.Graph().as_default(), tf.compat.v1.Session() as session:
    updates = tf.compat.v1.placeholder(tf.int64, [])
    weight = tf.Variable(0.0)
    average = tf.train.ExponentialMovingAverage(0.999, num_updates=updates)
    update = average.apply([weight])
    session.run(tf.compat.v1.global_variables_initializer())
    ours = 0.0
    for n in range(1, 30, 3):
      session.run(weight.assign(float(n * n)))
      session.run(update, {updates: n})
      d = tta_recipe.moving_average_decay(0.999, n)
      ours = d * ours + (1 - d) * n * n
      np.testing.assert_allclose(ours, session.run(average.average(weight)), rtol=1e-6)


# fast.flags' recipe, and fast_995.flags' extras: dropout, augmentation, a moving average.
# keras_bf16 (mixed_bfloat16) with them: the augmentation layers stay float32.
EXTRAS = {"plain": [], "extras": ["--dropout=0.4", "--shift=0.1", "--rotate=10",
                                  "--moving_average_decay=0.999"]}
EXTRAS["extras_bf16"] = EXTRAS["extras"] + ["--bf16"]


@pytest.mark.parametrize("extras", EXTRAS.values(), ids=EXTRAS.keys())
def test_the_keras_port_trains_and_reports_one_line(tmp_path, small, extras):
  data = tmp_path / "d.npz"
  np.savez(data, x_train=small.x_train[:512], y_train=small.y_train[:512],
           x_test=small.x_test[:100], y_test=small.y_test[:100])
  done = subprocess.run([sys.executable, "-m", "benchmarks.tta_keras", f"--data={data}",
                         "--target=0.5", "--epochs=2"] + extras, env=paths.child_env(),
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


needs_torch = pytest.mark.skipif(
    not paths.has_torch(paths.torch_python()),
    reason="no Python with torch here (make torch, or Debian's python3-torch)")


@needs_torch
@pytest.mark.parametrize("extras", EXTRAS.values(), ids=EXTRAS.keys())
def test_the_pytorch_port_trains_and_reports_one_line(tmp_path, small, extras):
  data = tmp_path / "d.npz"
  np.savez(data, x_train=small.x_train[:512], y_train=small.y_train[:512],
           x_test=small.x_test[:100], y_test=small.y_test[:100])
  done = subprocess.run([paths.torch_python(), str(paths.REPO_ROOT) + "/benchmarks/tta_torch.py",
                         f"--data={data}", "--target=0.5"] + extras, capture_output=True,
                        text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert out["epochs"] == 1 and 0 <= out["accuracy"] <= 1


# Each image of a batch shifted by whole pixels (as --augment's shift), zeros coming in, or
# an error naming the first image that is not.
_SHIFT_CHECK = """
import sys, types, numpy as np, torch
sys.path.insert(0, sys.argv[1])
from benchmarks import tta_torch
args = types.SimpleNamespace(shift=0.1, rotate=0.0)
x = torch.from_numpy(np.load(sys.argv[2])).permute(0, 3, 1, 2).contiguous()
out = tta_torch.augmenter(torch, args)(x).numpy()[:, 0]
x = np.pad(x.numpy()[:, 0], ((0, 0), (3, 3), (3, 3)))
seen = set()
for i, image in enumerate(out):
  found = [(dx, dy) for dx in range(-3, 4) for dy in range(-3, 4)
           if np.allclose(image, x[i, 3 - dy:31 - dy, 3 - dx:31 - dx], atol=1e-5)]
  assert found, f"image {i} is not a whole-pixel shift"
  seen.add(found[0])
print(len(seen))
"""


@needs_torch
def test_the_pytorch_ports_shift_moves_whole_pixels(tmp_path, small):
  images = tmp_path / "x.npy"
  np.save(images, small.x_train[:64].reshape(-1, 28, 28, 1).astype(np.float32) / 255.0)
  done = subprocess.run([paths.torch_python(), "-c", _SHIFT_CHECK, str(paths.REPO_ROOT),
                         str(images)], capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert int(done.stdout) > 10  # shifts of many sizes and directions, not one
