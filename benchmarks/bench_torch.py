"""The tutorial cnn's training step in PyTorch (CPU), timed: make bench's pytorch variants.

Runs under any Python with torch and numpy (`make torch`'s venv); it imports nothing of
mnist_estimator. Reads the training arrays from an .npz (x_train NHWC, uint8 or 0..1 floats;
y_train), trains conv 32 5x5 -> pool -> conv 64 5x5 -> pool -> dense 1024 -> dropout -> logits
with the Estimator's optimizer on shuffled batches held in memory (in bf16 autocast with
--bf16), and prints one JSON line.
"""

import argparse
import json
import os
import time


def _parser():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data", required=True, help=".npz with x_train [N, H, W, C], y_train")
  p.add_argument("--batch_size", type=int, default=100)
  p.add_argument("--warmup", type=int, default=50)
  p.add_argument("--steps", type=int, default=300)
  p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
  p.add_argument("--learning_rate", type=float, default=0.001)
  p.add_argument("--hidden", type=int, default=1024)
  p.add_argument("--dropout", type=float, default=0.4)
  p.add_argument("--channels_last", action="store_true",
                 help="NHWC memory format (oneDNN's preferred layout)")
  p.add_argument("--bf16", action="store_true",
                 help="bf16 autocast (float32 weights and updates: PyTorch's mixed precision)")
  p.add_argument("--threads", type=int, default=0, help="0: one per CPU")
  return p


def main():
  args = _parser().parse_args()
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(args.threads or os.cpu_count())
  torch.manual_seed(0)
  with np.load(args.data) as data:
    pixels = data["x_train"]
    scale = 255.0 if pixels.dtype == np.uint8 else 1.0  # as the Estimator's input: 0..1 floats
    x = torch.from_numpy(pixels.astype(np.float32) / scale).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(data["y_train"].astype(np.int64))
  channels, size = x.shape[1], x.shape[2]
  model = nn.Sequential(
      nn.Conv2d(channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
      nn.Linear(64 * (size // 4) ** 2, args.hidden), nn.ReLU(), nn.Dropout(args.dropout),
      nn.Linear(args.hidden, int(y.max()) + 1))
  layout = torch.channels_last if args.channels_last else torch.contiguous_format
  model = model.to(memory_format=layout)
  make = torch.optim.Adam if args.optimizer == "adam" else torch.optim.SGD
  optimizer = make(model.parameters(), args.learning_rate)
  loss_fn = nn.CrossEntropyLoss()
  model.train()
  batches = iter(())
  started = None
  for step in range(args.warmup + args.steps):
    if step == args.warmup:
      started = time.perf_counter()
    batch = next(batches, None)
    if batch is None:
      batches = iter(torch.randperm(len(x)).split(args.batch_size))
      batch = next(batches)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
      loss = loss_fn(model(x[batch].contiguous(memory_format=layout)), y[batch])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
  seconds = time.perf_counter() - started
  print(json.dumps({"seconds": seconds, "steps": args.steps,
                    "steps_per_sec": args.steps / seconds,
                    "images_per_sec": args.steps * args.batch_size / seconds,
                    "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
  main()
