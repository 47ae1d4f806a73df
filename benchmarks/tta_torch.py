"""The fast recipes written plainly in PyTorch (CPU): bf16 autocast where asked.

Runs under any Python with torch and numpy (e.g. Debian's python3-torch); it imports nothing
of mnist_estimator.
"""

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import tta_recipe  # pylint: disable=g-import-not-at-top,wrong-import-position


def augmenter(torch, args):
  """A batch's random rotation and whole-pixel shift, each image its own, in one resampling.

  affine_grid and grid_sample (bilinear, zeros coming in): what --augment=shift,rotate does.
  """
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

  def augment(x):
    n, _, height, width = x.shape
    angle = (torch.rand(n) * 2 - 1) * math.radians(args.rotate)
    dx = torch.round((torch.rand(n) * 2 - 1) * width * args.shift)
    dy = torch.round((torch.rand(n) * 2 - 1) * height * args.shift)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Output to input, in [-1, 1] coordinates: a shift right by dx reads dx pixels to the left.
    theta = torch.stack([torch.stack([cos, -sin, -2 * dx / width], 1),
                         torch.stack([sin, cos, -2 * dy / height], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
  return augment if args.shift or args.rotate else (lambda x: x)


class Average:
  """A moving average of the parameters (tta_recipe.moving_average_decay), swapped in to test."""

  def __init__(self, torch, params, decay):
    self.torch, self.params, self.decay, self.updates = torch, list(params), decay, 0
    self.averages = [p.detach().clone() for p in self.params]

  def update(self):
    self.updates += 1
    d = tta_recipe.moving_average_decay(self.decay, self.updates)
    with self.torch.no_grad():
      for average, param in zip(self.averages, self.params):
        average.lerp_(param, 1.0 - d)

  def swap(self):
    with self.torch.no_grad():
      for average, param in zip(self.averages, self.params):
        kept = param.detach().clone()
        param.copy_(average)
        average.copy_(kept)


def main():
  args = tta_recipe.parser(__doc__).parse_args()
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(args.threads or os.cpu_count())
  torch.manual_seed(args.seed)
  x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in tta_recipe.load(args.data))
  x_train, x_test = x_train.permute(0, 3, 1, 2).contiguous(), x_test.permute(0, 3, 1, 2)
  first, second = (int(f) for f in args.filters.split(","))
  model = nn.Sequential(
      nn.Conv2d(1, first, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(first, second, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Linear(second * 49, args.hidden), nn.ReLU(), nn.Dropout(args.dropout),
      nn.Linear(args.hidden, 10))
  optimizer = torch.optim.Adam(model.parameters(), args.learning_rate, (args.beta1, args.beta2),
                               eps=args.epsilon)
  steps_per_epoch = -(-len(x_train) // args.batch_size)
  total = steps_per_epoch * args.epochs
  schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: tta_recipe.one_cycle(
      step, total, 1.0, args.warmup))
  autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)
  loss_fn = nn.CrossEntropyLoss()
  augment = augmenter(torch, args)
  average = (Average(torch, model.parameters(), args.moving_average_decay)
             if args.moving_average_decay else None)

  def train_epoch():
    model.train()
    for batch in torch.randperm(len(x_train)).split(args.batch_size):
      with autocast():
        loss = loss_fn(model(augment(x_train[batch])), y_train[batch])
      optimizer.zero_grad(set_to_none=True)
      loss.backward()
      optimizer.step()
      schedule.step()
      if average:
        average.update()

  def evaluate():
    model.eval()
    if average:
      average.swap()  # the average in, for evaluation; then back, to train on
    with torch.no_grad(), autocast():
      right = sum(int((model(x).argmax(1) == y).sum())
                  for x, y in zip(x_test.split(1000), y_test.split(1000)))
    if average:
      average.swap()
    return right / len(x_test)

  clock = tta_recipe.Clock(args.target)
  for epoch in range(1, args.epochs + 1):
    clock.timed("train", train_epoch)
    if clock.reached(epoch, clock.timed("evaluate", evaluate)):
      break
  clock.report()


if __name__ == "__main__":
  main()
