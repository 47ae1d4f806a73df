"""Your own images, timed: decoding a 60,000-PNG folder, and training from it against MNIST.

python -m benchmarks.bench_folder --mnist_dir=../shared/data/mnist --folder=/tmp/mnist_png

Writes MNIST's training and test images as DIR/train/<digit>/*.png and DIR/test/<digit>/*.png
(once), decodes the folder with an empty cache (images/s), then times the CLI's training
path (`bench --variants=cli`) on `--dataset=folder:DIR` decoded in memory, on the same folder
streamed from its files (`--stream=yes`) and on `--dataset=mnist`, interleaved, and prints the
medians and their ratios to mnist.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from mnist_estimator.common import cli  # pylint: disable=g-import-not-at-top

cli.import_tensorflow()

from benchmarks import bench  # pylint: disable=g-import-not-at-top
from mnist_estimator.data import datasets  # pylint: disable=g-import-not-at-top


def write_folder(mnist, folder):
  """MNIST as PNG files in class folders, unless the folder is there already."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if os.path.isdir(os.path.join(folder, "test", "9")):
    return
  for split, x, y in (("train", mnist.x_train, mnist.y_train), ("test", mnist.x_test,
                                                                 mnist.y_test)):
    for digit in range(10):
      os.makedirs(os.path.join(folder, split, str(digit)), exist_ok=True)
    for i, (image, label) in enumerate(zip(x, y)):
      Image.fromarray(image[..., 0]).save(os.path.join(folder, split, str(label), f"{i:05d}.png"))


def time_decoding(folder):
  """Seconds to load the folder with an empty record cache, and the data set."""
  os.environ[datasets.images.CACHE_ENV] = tempfile.mkdtemp(prefix="bench_folder_cache_")
  start = time.perf_counter()
  data = datasets.load(f"folder:{folder}")
  return time.perf_counter() - start, data


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--mnist_dir", required=True)
  parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "mnist_png"))
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=300)
  args = parser.parse_args()
  mnist = datasets.load("mnist", args.mnist_dir, validation_split=0)  # all 60,000 as PNGs
  write_folder(mnist, args.folder)
  seconds, folder_data = time_decoding(args.folder)
  count = sum(len(y) for y in (folder_data.y_train, folder_data.y_val, folder_data.y_test)
              if y is not None)
  print(f"decode: {count:,} PNG files of 28x28 in {seconds:.1f} s = {count / seconds:,.0f} "
        f"images/s ({os.cpu_count()} cores; probe, decode and cache write)")
  streamed = datasets.load(f"folder:{args.folder}",
                           options=datasets.ImageOptions(stream="yes"))
  rates = {"folder": [], "stream": [], "mnist": []}
  for _ in range(args.rounds):
    for name, data, dataset in (("folder", folder_data, f"folder:{args.folder}"),
                                ("stream", streamed, f"folder:{args.folder}"),
                                ("mnist", mnist, "mnist")):
      config = bench.BenchConfig(model="cnn", dataset=dataset, variants=("cli",),
                                 steps=args.steps, startup=False, serving=False, graph=False,
                                 batch_size=100,  # cnn's; a folder's recipe would take 32
                                 matmul_n=256)
      result = bench.run_benchmark(config, data)
      rates[name].append(result["variants"]["cli"]["steps_per_sec"])
  medians = {name: statistics.median(values) for name, values in rates.items()}
  for name, values in rates.items():
    print(f"train cnn on {name}: {medians[name]:.2f} steps/s (rounds "
          f"{', '.join(f'{v:.2f}' for v in values)})")
  for name in ("folder", "stream"):
    print(f"{name} / mnist: {medians[name] / medians['mnist']:.3f}")


if __name__ == "__main__":
  main()
