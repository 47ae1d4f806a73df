"""SIGKILL during training; the same command then finishes from the last checkpoint."""

import os
import re
import signal
import time

import helpers
import tensorflow as tf


def start(model_dir):
  return helpers.start_module(
      "mnist_estimator.main", "--model=dnn", "--dataset=mnist_sample", "--steps=200",
      "--batch_size=16", "--save_checkpoints_steps=20", f"--model_dir={model_dir}",
      "--noreport", "--seed=3")


def checkpoint_step(model_dir):
  path = tf.train.latest_checkpoint(model_dir)
  return int(path.rsplit("-", 1)[1]) if path else 0


def kill_after_checkpoint(model_dir, beyond):
  """Starts training, SIGKILLs it as soon as a checkpoint past `beyond` exists; returns it."""
  proc = start(model_dir)
  deadline = time.time() + 240
  while checkpoint_step(model_dir) <= beyond:
    assert proc.poll() is None, "training ended before it could be killed"
    assert time.time() < deadline, "no new checkpoint"
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  return checkpoint_step(model_dir)


def test_killed_then_resumed(tmp_path):
  model_dir = str(tmp_path / "m")
  killed = kill_after_checkpoint(model_dir, beyond=0)
  assert 0 < killed < 200
  proc = start(model_dir)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  # tf.estimator's INFO lines go to the run's log file, not the console.
  with open(os.path.join(model_dir, "mnist_estimator.log")) as f:
    log = f.read()
  restored = [int(s) for s in re.findall(r"Restoring parameters from .*model\.ckpt-(\d+)", log)]
  assert restored and restored[-1] >= killed  # the second run resumed, not restarted
  assert "global_step 200" in out
  assert checkpoint_step(model_dir) == 200


def test_the_header_says_what_a_resumed_run_trains(small, tmp_path, capsys):
  from mnist_estimator.run import runner  # pylint: disable=g-import-not-at-top

  def training_line(**overrides):
    runner.run(helpers.small_spec("linear", tmp_path, report=False, **overrides), small)
    return [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("training:")]

  assert training_line(steps=4) == ["training: 4 steps of 16 = 0.1 epochs of 600 images"]
  assert training_line(steps=10) == [
      "training: 6 more steps of 16 = 0.2 epochs of 600 images, from model_dir's step 4 to 10"]
  assert training_line(steps=10) == [
      "training: none; model_dir is at step 10 and --steps=10 (raise --steps to train further)"]
  assert training_line(steps=None, epochs=1) == [
      "training: 28 more steps of 16 = 0.7 epochs of 600 images, from model_dir's step 10 to 38"]
