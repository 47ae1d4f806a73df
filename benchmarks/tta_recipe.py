"""The fast recipes as the ports read them (flags/fast*.flags), their schedules and data file.

Standard library and numpy only: the PyTorch port runs it under another Python (Debian's).
"""

import argparse
import json
import time

import numpy as np


def one_cycle(step, total, peak, warmup):
  """The learning rate at `step` of `total`: models' --lr_schedule=one_cycle, written again.

  A linear rise from peak/10 to peak over the first `warmup` share of the steps, then a linear
  fall to 0 at the last step (head/optimizers.py computes the same in the graph).
  """
  t = step / total
  if t < warmup:
    return peak * (0.1 + 0.9 * t / warmup)
  return peak * max(0.0, (1.0 - t) / (1.0 - warmup))


def moving_average_decay(decay, updates):
  """The decay of the `updates`-th update: tf.train.ExponentialMovingAverage's with num_updates.

  min(decay, (1 + n) / (10 + n)), so a short run's average does not hold on to the initial
  weights (--moving_average_decay passes the global step as n).
  """
  return min(decay, (1.0 + updates) / (10.0 + updates))


def parser(description):
  """The arguments every port takes (the driver passes the recipe's values)."""
  p = argparse.ArgumentParser(description=description)
  p.add_argument("--data", required=True, help="npz with x_train, y_train, x_test, y_test")
  p.add_argument("--seed", type=int, default=1)
  p.add_argument("--epochs", type=int, default=1)
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--learning_rate", type=float, default=0.01)
  p.add_argument("--beta1", type=float, default=0.7)
  p.add_argument("--beta2", type=float, default=0.9)
  p.add_argument("--epsilon", type=float, default=1e-7, help="Adam's epsilon")
  p.add_argument("--warmup", type=float, default=0.25)
  p.add_argument("--filters", default="24,32")
  p.add_argument("--hidden", type=int, default=256)
  p.add_argument("--dropout", type=float, default=0.0, help="after the dense layer")
  p.add_argument("--shift", type=float, default=0.0,
                 help="--augment's shift: whole pixels, at most this share of the size")
  p.add_argument("--rotate", type=float, default=0.0, help="--augment's rotate: degrees")
  p.add_argument("--moving_average_decay", type=float, default=0.0,
                 help="evaluate a moving average of the weights (moving_average_decay())")
  p.add_argument("--target", type=float, default=0.99)
  p.add_argument("--bf16", action="store_true", help="bf16 compute (where the CPU has it)")
  p.add_argument("--threads", type=int, default=0)
  return p


def load(path):
  """(x_train float32 [N, 28, 28, 1] in 0..1, y_train, x_test, y_test) from the driver's npz."""
  with np.load(path) as f:
    scale = lambda x: (x.astype(np.float32) / 255.0).reshape(-1, 28, 28, 1)
    return scale(f["x_train"]), f["y_train"].astype(np.int64), scale(f["x_test"]), \
        f["y_test"].astype(np.int64)


class Clock:
  """Training and evaluation seconds, and the first epoch whose evaluation reaches the target."""

  def __init__(self, target):
    self.target, self.train, self.evaluate = target, 0.0, 0.0
    self.curve = []

  def timed(self, kind, work):
    start = time.perf_counter()
    out = work()
    setattr(self, kind, getattr(self, kind) + time.perf_counter() - start)
    return out

  def reached(self, epoch, accuracy):
    self.curve.append({"epoch": epoch, "accuracy": float(accuracy),
                       "seconds": round(self.train + self.evaluate, 3)})
    return accuracy >= self.target

  def report(self):
    """The one JSON line the driver reads."""
    last = self.curve[-1]
    print(json.dumps({"train_seconds": round(self.train, 3),
                      "eval_seconds": round(self.evaluate, 3), "accuracy": last["accuracy"],
                      "epochs": last["epoch"], "reached": last["accuracy"] >= self.target,
                      "curve": self.curve}))
