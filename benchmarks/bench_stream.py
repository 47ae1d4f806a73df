"""Peak memory of a folder of photos, streamed from the files or decoded into memory (issue #28).

python -m benchmarks.bench_stream [--counts=600,6000] [--routes=stream,cached,memory]

Writes 6,000 800x600 JPEG photos (smooth random colours with texture, ~120 KB each, as a
camera's) in 10 class folders under --folder once, and the first 60 of each class as a
600-photo folder of hard links beside them. Then, in a fresh process per (count, route), reads
the whole folder once at 224x224 and reports the process's peak RSS and images/s:
  stream  stream_input.input_fn over the files (one pass, in order), no cache;
  cached  stream_cache.build_cache (its decoding not timed), then one pass over the shards;
  stream_train, cached_train  the same with train=True: one epoch, shuffled (shuffle buffers);
  memory  datasets.load("folder:DIR", image_size 224x224) with an empty record cache, then one
          pass of inputs.tfdata_input_fn over its training and test arrays;
  import  TensorFlow imported, nothing read: the floor under every route.
"""

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CACHE_ENV = "MNIST_ESTIMATOR_CACHE"  # the record cache (images.py): empty for each run
CLASSES = 10
SIZE = (224, 224)


def _photo(args):
  """Writes one 800x600 JPEG: a smooth random colour field, texture and noise (~120 KB)."""
  path, seed = args
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  field = Image.fromarray(rng.integers(0, 256, (6, 8, 3), np.uint8)).resize((800, 600),
                                                                           Image.BICUBIC)
  texture = Image.fromarray(rng.integers(0, 256, (150, 200, 3), np.uint8)).resize(
      (800, 600), Image.BILINEAR)
  noise = rng.normal(0, 4, (600, 800, 3))
  pixels = (np.asarray(field, np.float32) + (np.asarray(texture, np.float32) - 128) / 4
            + noise)
  Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


def write_photos(folder, count, workers=2):
  """folder/n<count>/c<k>/<i>.jpg (written once); the folder of `count` photos."""
  full = os.path.join(folder, "n6000")
  if not os.path.isfile(full + ".done"):
    jobs = []
    for k in range(CLASSES):
      os.makedirs(os.path.join(full, f"c{k}"), exist_ok=True)
      jobs += [(os.path.join(full, f"c{k}", f"{i:05d}.jpg"), k * 100_000 + i)
               for i in range(6000 // CLASSES)]
    start = time.time()
    with multiprocessing.Pool(workers) as pool:
      pool.map(_photo, jobs, chunksize=50)
    open(full + ".done", "w").close()
    print(f"wrote 6,000 photos in {time.time() - start:.0f} s", file=sys.stderr)
  if count == 6000:
    return full
  part = os.path.join(folder, f"n{count}")
  if not os.path.isdir(part):
    for k in range(CLASSES):
      os.makedirs(os.path.join(part, f"c{k}"))
      for i in range(count // CLASSES):
        name = f"{i:05d}.jpg"
        os.link(os.path.join(full, f"c{k}", name), os.path.join(part, f"c{k}", name))
  return part


def _listing(folder):
  """(paths, labels) of folder/c<k>/*.jpg, class by class, sorted."""
  paths, labels = [], []
  for k in range(CLASSES):
    names = sorted(os.listdir(os.path.join(folder, f"c{k}")))
    paths += [os.path.join(folder, f"c{k}", name) for name in names]
    labels += [k] * len(names)
  return paths, labels


def _one_pass(input_fn, limit=None):
  """Images read by one pass of an input_fn (or `limit` of them) in a graph session."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  count = 0
  with tf.Graph().as_default():
    element = tf.compat.v1.data.make_one_shot_iterator(input_fn()).get_next()
    with tf.compat.v1.Session() as session:
      while limit is None or count < limit:
        try:
          features, _ = session.run(element)
        except tf.errors.OutOfRangeError:
          break
        count += len(features["x"])
  return count


def child(route, folder, batch):
  """Runs one route in this process; prints {"images": n, "seconds": s} as JSON."""
  from mnist_estimator.common import cli  # pylint: disable=g-import-not-at-top
  cli.import_tensorflow()
  from mnist_estimator.data import decode  # pylint: disable=g-import-not-at-top
  from mnist_estimator.data import stream  # pylint: disable=g-import-not-at-top
  from mnist_estimator.data import stream_cache  # pylint: disable=g-import-not-at-top
  from mnist_estimator.data import stream_input  # pylint: disable=g-import-not-at-top
  start, count = time.perf_counter(), 0
  if route.startswith(("stream", "cached")):
    paths, labels = _listing(folder)
    images = stream.FileImages(paths, decode.Decoding(*SIZE, 3, resized=True))
    train = route.endswith("_train")
    cache = None
    if route.startswith("cached"):
      cache = os.path.join(os.environ[CACHE_ENV], "shards")
      stream_cache.build_cache(images, labels, cache, shuffled=train)
      start = time.perf_counter()
    fn = stream_input.input_fn(images, labels, batch, train=train, seed=1, cache_dir=cache)
    count = _one_pass(fn, len(images) if train else None)
  elif route == "memory":
    from mnist_estimator.data import datasets  # pylint: disable=g-import-not-at-top
    from mnist_estimator.inputs import input_fns  # pylint: disable=g-import-not-at-top
    data = datasets.load(f"folder:{folder}",
                         options=datasets.ImageOptions(image_size=SIZE))
    for split in ("train", "val", "test"):  # x_val: a validation split, where there is one
      x, y = getattr(data, f"x_{split}", None), getattr(data, f"y_{split}", None)
      if x is not None and len(x):
        count += _one_pass(input_fns.tfdata_input_fn(x, y, batch, train=False))
  print(json.dumps({"images": count, "seconds": time.perf_counter() - start}))


def measure(route, folder, batch):
  """(peak RSS in MB, images/s) of `route` in a fresh process with an empty record cache."""
  cache = tempfile.mkdtemp(prefix="bench_stream_cache_")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **{CACHE_ENV: cache})
  try:
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), f"--child={route}", f"--folder={folder}",
         f"--batch={batch}"], stdout=subprocess.PIPE, env=env)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not all children's
    process.returncode = status
  finally:
    shutil.rmtree(cache, ignore_errors=True)
  if status:
    raise SystemExit(f"{route} on {folder} failed (status {status})")
  result = json.loads(out.decode().strip().splitlines()[-1])
  rate = result["images"] / result["seconds"] if result["images"] else float("nan")
  return usage.ru_maxrss / 1024, rate, result["images"]


def _cpu():
  """(CPU model, whether /proc/cpuinfo lists avx512_bf16)."""
  try:
    with open("/proc/cpuinfo") as f:
      text = f.read()
  except OSError:
    return platform.processor() or "unknown", False
  model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith("model name")), "unknown")
  return model, "avx512_bf16" in text


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(),
                                                       "bench_stream_photos"))
  parser.add_argument("--counts", default="600,6000")
  parser.add_argument("--routes",
                      default="import,stream,stream_train,cached,cached_train,memory")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--child", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    return child(args.child, args.folder, args.batch)
  model, bf16 = _cpu()
  print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
  print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
  print(f"cpu: {model} x {os.cpu_count()}; avx512_bf16: {'yes' if bf16 else 'no'}")
  counts = [int(c) for c in args.counts.split(",")]
  routes = args.routes.split(",")
  folders = {n: write_photos(args.folder, n) for n in counts}
  rss = {}
  print(f"{'N':>6}  {'route':<12} {'peak RSS MB':>11}  {'img/s':>7}")
  for n in counts:
    for route in routes:
      peak, rate, images = measure(route, folders[n], args.batch)
      rss[n, route] = peak
      print(f"{n:>6}  {route:<12} {peak:>11,.0f}  {rate:>7,.0f}"
            + (f"  ({images:,} images)" if images != n and route != "import" else ""),
            flush=True)
  if len(counts) > 1:
    low, high = counts[0], counts[-1]
    for route in routes:
      print(f"RSS growth {low:,} -> {high:,} photos, {route}: "
            f"{100 * (rss[high, route] / rss[low, route] - 1):+.0f}%")


if __name__ == "__main__":
  main()
