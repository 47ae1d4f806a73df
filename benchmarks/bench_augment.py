"""--augment, measured: test accuracy and training speed with and without it, interleaved seeds.

python -m benchmarks.bench_augment --data_dir=../shared/data/fashion_mnist --steps=3000 --seeds=3

Each seed trains --model (cnn) on --dataset (fashion_mnist) once per variant: without
augmentation, then with each --augment (repeat the flag to compare several), the order
reversed every other seed so drift in the machine's speed hits every variant alike. One run is
`python -m mnist_estimator.main ... --model_dir=TMP` in its own process, on a fresh model_dir:
its accuracy is main's "eval on ... accuracy X" line (the test set), its steps/s the median of
its progress rates (model_dir/train_stats.json). Flags this script does not know are passed to
every run (e.g. --precision=fp32). Prints the command, date and CPU first, a Markdown table last.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NONE = "none"
_ACCURACY = re.compile(r"^(?:\[\w+\] )?eval on .*?accuracy ([0-9.]+)", re.MULTILINE)


def parse_args(argv):
  """(the script's flags, the rest: passed to every run)."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default=os.path.join(ROOT, "..", "shared", "data",
                                                         "fashion_mnist"),
                      help="the data set's files; empty for a bundled one (mnist_sample)")
  parser.add_argument("--dataset", default="fashion_mnist")
  parser.add_argument("--model", default="cnn")
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N, one run per variant")
  parser.add_argument("--augment", action="append",
                      help="a variant (repeatable), e.g. flip,crop; default shift,rotate,zoom")
  parser.add_argument("--optimizer", default="adam")
  parser.add_argument("--learning_rate", type=float, default=0.001)
  parser.add_argument("--timeout", type=int, default=3600, help="seconds per run")
  args, extra = parser.parse_known_args(argv)
  args.augment = args.augment or ["shift,rotate,zoom"]
  return args, extra


def cpu():
  """The CPU's model name and whether it has AVX512_BF16 (native bf16 training steps)."""
  name, flags = "unknown CPU", ""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name == "unknown CPU":
          name = value.strip()
        elif key.strip() == "flags" and not flags:
          flags = value
  except OSError:
    pass
  bf16 = "avx512_bf16" in flags.split()
  return f"{name}, {os.cpu_count()} logical CPUs, avx512_bf16 {'yes' if bf16 else 'no'}"


def command(variant, seed, args, extra, model_dir):
  """main's command line for one run."""
  argv = [sys.executable, "-m", "mnist_estimator.main", f"--model={args.model}",
          f"--dataset={args.dataset}", f"--steps={args.steps}", f"--seed={seed}",
          f"--optimizer={args.optimizer}", f"--learning_rate={args.learning_rate}",
          "--input=tfdata", "--noreport", f"--model_dir={model_dir}",
          f"--log_every_n_iter={max(1, args.steps // 20)}"]  # 20 rates for the median
  if args.data_dir:
    argv.append(f"--data_dir={os.path.abspath(args.data_dir)}")
  if variant != NONE:
    argv.append(f"--augment={variant}")
  return argv + list(extra)


def run_once(variant, seed, args, extra, model_dir):
  """{"accuracy", "steps_per_sec"} of one run (exits with its output's tail if it fails)."""
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  argv = command(variant, seed, args, extra, model_dir)
  proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, timeout=args.timeout,
                        check=False)
  found = _ACCURACY.findall(proc.stdout)
  if proc.returncode or not found:
    sys.exit(f"error: {shlex.join(argv)} failed (exit code {proc.returncode}, "
             f"{'no' if not found else 'an'} eval line):\n{proc.stdout[-3000:]}")
  rate = None
  stats = os.path.join(model_dir, "train_stats.json")
  if os.path.exists(stats):  # absent when no progress rate was measured (a few steps)
    with open(stats) as f:
      rate = json.load(f)["steps_per_sec"]
  return {"accuracy": float(found[-1]), "steps_per_sec": rate}


def _median(values):
  values = [v for v in values if v is not None]
  return statistics.median(values) if values else None


def table(results, args):
  """The Markdown table: per variant the median accuracy and steps/s, and their ratios."""
  base_rate = _median(r["steps_per_sec"] for r in results[NONE])
  base_accuracy = _median(r["accuracy"] for r in results[NONE])
  lines = [f"{args.model} on {args.dataset}, {args.steps} steps, optimizer {args.optimizer} "
           f"at {args.learning_rate}; medians over seeds 1..{args.seeds} (interleaved)", "",
           "| augment | test accuracy | per seed | vs none | steps/s | steps/s vs none |",
           "| --- | ---: | --- | ---: | ---: | ---: |"]
  for variant, runs in results.items():
    accuracy, rate = _median(r["accuracy"] for r in runs), _median(r["steps_per_sec"]
                                                                  for r in runs)
    seeds = " ".join(f"{r['accuracy']:.4f}" for r in runs)
    ratio = f"{rate / base_rate:.2f}" if rate and base_rate else "n/a"
    lines.append(f"| {variant} | {accuracy:.4f} | {seeds} | {accuracy - base_accuracy:+.4f} | "
                 f"{f'{rate:.1f}' if rate else 'n/a'} | {ratio} |")
  return "\n".join(lines)


def main(argv):
  args, extra = parse_args(argv)
  this = [sys.executable, "-m", "benchmarks.bench_augment", *argv]
  print(f"command: {shlex.join(this)}")
  print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
  print(f"cpu: {cpu()}", flush=True)
  variants = [NONE] + [v for v in args.augment if v != NONE]
  results = {variant: [] for variant in variants}
  with tempfile.TemporaryDirectory(prefix="bench_augment_") as tmp:
    for seed in range(1, args.seeds + 1):
      order = variants if seed % 2 else variants[::-1]
      for i, variant in enumerate(order):
        result = run_once(variant, seed, args, extra, os.path.join(tmp, f"s{seed}_{i}"))
        results[variant].append(result)
        rate = result["steps_per_sec"]
        print(f"seed {seed}/{args.seeds} {variant}: accuracy {result['accuracy']:.4f}, "
              f"{'n/a' if rate is None else f'{rate:.1f}'} steps/s", file=sys.stderr,
              flush=True)
  print(table(results, args))


if __name__ == "__main__":
  main(sys.argv[1:])
