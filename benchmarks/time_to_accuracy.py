"""Time to a test accuracy: our fast recipe against the same recipe in Keras and in PyTorch.

python -m benchmarks.time_to_accuracy --data_dir=../shared/data/mnist --target=0.99 --seeds=1,2,3

Every variant runs as its own command, in turn for each seed (the order rotates between
seeds, so the machine's drift falls on all of them alike), trains on all 60,000 training images
and evaluates the 10,000 test images after each epoch, stopping at the first evaluation at or
above the target. Ours is `python -m mnist_estimator.main --flagfile=flags/fast.flags
--mode=train_and_evaluate --validation_split=0 --eval_every_steps=<an epoch's steps>
--stop_at_accuracy=<target>` (each evaluation also exports export/best and export/latest, as
any train_and_evaluate does); the ports (tta_keras.py, tta_torch.py) train the same network,
optimizer, schedule, batch and epochs. Figures: the medians over seeds of the seconds to the
target (training and evaluations; ours from model_dir/train_stats.json and eval_stats.json), of
the whole command's wall time, and of the accuracy reached. Keras runs with
TF_ENABLE_ONEDNN_OPTS=1 and, on a CPU with native bf16, also as mixed_bfloat16; PyTorch
also with bf16 autocast there. PyTorch runs under --torch_python (`make torch`'s venv where it
exists, else Debian's python3 with python3-torch) and is left out, said so, where that Python
has no torch.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import paths

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data_dir", required=True, help="the full MNIST IDX files")
  p.add_argument("--flagfile", default=paths.flagfile("fast"), help="our recipe")
  p.add_argument("--target", type=float, default=0.99)
  p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
  p.add_argument("--seeds", default="1,2,3")
  p.add_argument("--variants", default="ours,keras,pytorch",
                 help="of ours, keras, pytorch; on a CPU with native bf16, keras and pytorch "
                 "also run as keras_bf16 and pytorch_bf16 (each port's best is its faster one)")
  p.add_argument("--torch_python", default=paths.torch_python())
  p.add_argument("--timeout", type=int, default=1800)
  return p.parse_args(argv)


def native_bf16():
  with open("/proc/cpuinfo", encoding="utf-8") as f:
    words = set(f.read().split())
  return bool(words & {"avx512_bf16", "amx_bf16"})


def recipe(flagfile, epochs):
  """The recipe's RunSpec (our flag parser reads the flagfile), epochs overridden if asked.

  Raises:
    SystemExit: a recipe the ports cannot write again (they are fast_cnn's shape with Adam
      and the one-cycle schedule, dropout after the dense layer, --augment's shift and rotate,
      and a moving average): they would time another network.
  """
  from mnist_estimator import flagdefs  # pylint: disable=g-import-not-at-top
  from mnist_estimator.inputs import augment  # pylint: disable=g-import-not-at-top
  spec = flagdefs.spec_from_flagfile(flagfile)
  extra = {"model": spec.model != "fast_cnn", "optimizer": spec.optimizer != "adam",
           "lr_schedule": spec.lr_schedule != "one_cycle",
           "hidden_units": len(spec.hidden_units) != 1,
           "augment": bool(set(augment.parse(spec.augment)) - {"shift", "rotate"}),
           "l2": bool(spec.l2)}
  if any(extra.values()):
    raise SystemExit(f"error: {flagfile} sets {', '.join(k for k, v in extra.items() if v)} "
                     "beyond what the Keras and PyTorch ports write (fast_cnn, Adam, one-cycle, "
                     "dropout, shift and rotate, a moving average); time it alone with its own "
                     "command, or pass such a recipe")
  return spec.replace(epochs=epochs) if epochs else spec


def port_flags(spec):
  """The ports' arguments beyond the optimizer's: the network's width, dropout, augmentation."""
  from mnist_estimator.inputs import augment  # pylint: disable=g-import-not-at-top
  chosen = augment.parse(spec.augment)
  found = {"hidden": spec.hidden_units[0], "dropout": spec.dropout or 0.0,
           "shift": chosen.get("shift", 0.0), "rotate": chosen.get("rotate", 0.0),
           "moving_average_decay": spec.moving_average_decay or 0.0}
  return [f"--{k}={v}" for k, v in found.items()]


def write_data(data_dir, path):
  """All 60,000 training images of `mnist` (no validation cut, as ours runs) and the test set."""
  from mnist_estimator.data import datasets  # pylint: disable=g-import-not-at-top
  data = datasets.load("mnist", data_dir, validation_split=0)
  np.savez(path, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
           y_test=data.y_test)
  return len(data.x_train)


def commands(args, spec, data_file, work, seed, bf16, train_examples):
  """{variant: (argv, env)} for one seed."""
  port = [f"--data={data_file}", f"--seed={seed}", f"--epochs={spec.epochs}",
          f"--batch_size={spec.batch_size}", f"--learning_rate={spec.learning_rate}",
          f"--beta1={spec.adam_beta1}", f"--beta2={spec.adam_beta2}",
          f"--epsilon={spec.adam_epsilon}",
          f"--warmup={spec.lr_warmup}", f"--target={args.target}"] + port_flags(spec)
  ours = [sys.executable, "-m", "mnist_estimator.main", f"--flagfile={args.flagfile}",
          f"--data_dir={args.data_dir}", f"--seed={seed}", f"--model_dir={work}/ours-{seed}",
          "--noreport", "--mode=train_and_evaluate", "--validation_split=0",
          f"--eval_every_steps={spec.steps_per_epoch(train_examples)}",
          f"--stop_at_accuracy={args.target}"] + (
              [f"--epochs={args.epochs}"] if args.epochs else [])
  keras = ([sys.executable, os.path.join(HERE, "tta_keras.py")] + port,
           paths.child_env(TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="2"))
  torch = ([args.torch_python, os.path.join(HERE, "tta_torch.py")] + port, dict(os.environ))
  found = {"ours": (ours, paths.child_env()), "keras": keras, "pytorch": torch}
  if bf16:
    found["keras_bf16"] = (keras[0] + ["--bf16"], keras[1])
    found["pytorch_bf16"] = (torch[0] + ["--bf16"], torch[1])
  return found


def run_one(variant, argv, env, work, seed, timeout, per_epoch):
  """{wall, seconds, train, eval, accuracy, epochs} of one command (per_epoch: ours' steps)."""
  start = time.perf_counter()
  done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                        check=False)
  wall = time.perf_counter() - start
  if done.returncode:
    raise RuntimeError(f"{variant} (seed {seed}) failed: {done.stderr.strip()[-800:]}")
  if variant == "ours":
    stats = {}
    for kind in ("train", "eval"):
      with open(os.path.join(work, f"ours-{seed}", f"{kind}_stats.json"), encoding="utf-8") as f:
        stats[kind] = json.load(f)
    return {"wall": wall, "seconds": stats["train"]["seconds"] + stats["eval"]["seconds"],
            "train": stats["train"]["seconds"], "eval": stats["eval"]["seconds"],
            "accuracy": stats["eval"]["accuracy"],
            "epochs": -(-stats["eval"]["global_step"] // per_epoch)}
  out = json.loads(done.stdout.strip().splitlines()[-1])
  return {"wall": wall, "seconds": out["train_seconds"] + out["eval_seconds"],
          "train": out["train_seconds"], "eval": out["eval_seconds"],
          "accuracy": out["accuracy"], "epochs": out["epochs"]}


def table(results, target, bf16):
  med = lambda rows, key: statistics.median(r[key] for r in rows)
  lines = [f"| variant | seconds to {target:.1%} (train + eval) | whole command, s | "
           f"test accuracy | seeds reaching it |", "|---|---:|---:|---:|---:|"]
  for variant, rows in results.items():
    reached = sum(r["accuracy"] >= target for r in rows)
    lines.append(f"| {variant} | {med(rows, 'seconds'):.1f} | {med(rows, 'wall'):.1f} | "
                 f"{med(rows, 'accuracy'):.4f} | {reached} of {len(rows)} |")
  lines.append(f"\nmedians over seeds; bf16 {'on (native)' if bf16 else 'off (no native bf16)'}")
  return "\n".join(lines)


def main(argv=None):
  args = parse_args(argv if argv is not None else sys.argv[1:])
  bf16 = native_bf16()
  spec = recipe(args.flagfile, args.epochs)
  variants = args.variants.split(",")
  if "pytorch" in variants and not paths.has_torch(args.torch_python):
    print(f"pytorch left out: {args.torch_python} has no torch (make torch, or apt-get "
          "install python3-torch)")
    variants.remove("pytorch")
  if bf16:
    variants += [f"{v}_bf16" for v in ("keras", "pytorch") if v in variants]
  results = {v: [] for v in variants}
  with tempfile.TemporaryDirectory(prefix="tta-") as work:
    data_file = os.path.join(work, "mnist.npz")
    examples = write_data(args.data_dir, data_file)
    per_epoch = spec.steps_per_epoch(examples)
    for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
      order = variants[i % len(variants):] + variants[:i % len(variants)]
      runs = commands(args, spec, data_file, work, seed, bf16, examples)
      for variant in order:
        row = run_one(variant, *runs[variant], work, seed, args.timeout, per_epoch)
        results[variant].append(row)
        at = f" at epoch {row['epochs']}" if row["epochs"] else ""
        print(f"seed {seed} {variant}: {row['seconds']:.1f} s to {row['accuracy']:.4f}{at} "
              f"(whole command {row['wall']:.1f} s)", flush=True)
  print(table(results, args.target, bf16))
  return results


if __name__ == "__main__":
  main()
