"""The cnn tutorial's 20,000 steps (tf.data input) under each --precision, over seeds: medians."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_one(out_dir, flagfile, precision, seed, steps, data_dir):
  """Trains one flagfile run; returns (accuracy, seconds, the precision the header names)."""
  model_dir = os.path.join(out_dir, f"{precision}-seed{seed}")
  argv = [sys.executable, "-m", "mnist_estimator.main", f"--flagfile={flagfile}",
          f"--model_dir={model_dir}", f"--seed={seed}", f"--precision={precision}",
          f"--steps={steps}", f"--data_dir={data_dir}", "--log_tensors=",
          "--log_every_n_iter=1000", "--input=tfdata"]
  start = time.time()
  report = os.path.join(model_dir, "eval_report", "eval_report.json")
  if os.path.exists(os.path.join(model_dir, f"model.ckpt-{steps}.index")) and os.path.exists(
      report):  # done in an earlier call of this script: its figures stand
    argv.append("--mode=evaluate")
  with open(model_dir + ".log", "a") as log:
    proc = subprocess.run(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
  if proc.returncode:
    sys.exit(f"error: {precision} seed {seed} failed; see {model_dir}.log")
  with open(report) as f:
    accuracy = json.load(f)["accuracy"]
  with open(model_dir + ".log") as f:
    used = next((line.strip() for line in f if "train step" in line), "?")
  return accuracy, time.time() - start, used


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--data_dir", default=os.path.join(ROOT, "..", "shared", "data", "mnist"))
  parser.add_argument("--out_dir", default="/tmp/mnist_estimator/precision_accuracy")
  parser.add_argument("--flagfile", default=os.path.join(ROOT, "flags", "cnn.flags"))
  parser.add_argument("--precisions", default="auto,fp32")
  parser.add_argument("--seeds", default="1,2,3")
  parser.add_argument("--steps", type=int, default=20000)
  args = parser.parse_args()
  os.makedirs(args.out_dir, exist_ok=True)
  precisions, seeds = args.precisions.split(","), [int(s) for s in args.seeds.split(",")]
  results = {p: [] for p in precisions}
  for seed in seeds:  # interleaved: the machine's drift falls on every precision alike
    for p in precisions:
      accuracy, seconds, used = run_one(args.out_dir, args.flagfile, p, seed, args.steps,
                                        args.data_dir)
      results[p].append(accuracy)
      print(f"{p} seed {seed}: accuracy {accuracy:.4f} in {seconds:.0f} s ({used})", flush=True)
  print("\n| --precision | seeds | accuracies | median |\n|---|---|---|---|")
  for p, accs in results.items():
    print(f"| {p} | {args.seeds} | {', '.join(f'{a:.2%}' for a in accs)} | "
          f"{statistics.median(accs):.2%} |")


if __name__ == "__main__":
  main()
