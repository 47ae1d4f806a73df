"""The cluster on its two engines, timed: local launcher vs Ray, interleaved, medians of rounds.

python -m benchmarks.bench_cluster --rounds=3 --workers=1 --evaluator --steps=2000

Each round runs `python -m mnist_estimator.cluster` once per engine (the order
alternates between rounds) on a fresh model_dir, and measures the wall time of the whole
command, the peak memory of its process tree (proportional set size, summed every 0.2 s;
with a private Ray its gcs_server, raylet and actors are in that tree), and the chief's
steps/s (the median of its progress lines, from model_dir/train_stats.json: global steps,
so the workers' steps count too). Prints a README-ready Markdown table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINES = ("local", "ray")


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--workers", type=int, default=1)
  parser.add_argument("--ps", type=int, default=1)
  parser.add_argument("--evaluator", action="store_true")
  parser.add_argument("--model", default="cnn")
  parser.add_argument("--steps", type=int, default=2000)
  parser.add_argument("--batch_size", type=int, default=100)
  parser.add_argument("--task_cpus", type=float, default=1.0,
                      help="--task_cpus for Ray; the local tasks get the same --intra_op_threads")
  parser.add_argument("--dataset", default="mnist_sample")
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--timeout", type=int, default=1800, help="seconds per run")
  return parser.parse_args(argv)


def _pss_kib(pid):
  try:
    with open(f"/proc/{pid}/smaps_rollup") as f:
      return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
  except (OSError, StopIteration, ValueError):
    return 0


def _tree(pid):
  children = {}
  for entry in os.listdir("/proc"):
    if entry.isdigit():
      try:
        with open(f"/proc/{entry}/stat") as f:
          children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
      except (OSError, IndexError, ValueError):
        continue
  found, todo = [], [pid]
  while todo:
    found.append(todo.pop())
    todo += children.get(found[-1], [])
  return found


def run_once(engine, args, model_dir):
  """{"wall_s", "peak_gib", "steps_per_sec"} of one cluster command (an error if it fails)."""
  threads = max(1, round(args.task_cpus))
  command = [sys.executable, "-m", "mnist_estimator.cluster", f"--engine={engine}",
             f"--workers={args.workers}", f"--ps={args.ps}",
             "--evaluator" if args.evaluator else "--noevaluator"]
  if engine == "ray":
    command.append(f"--task_cpus={args.task_cpus}")
  command += ["--", f"--model={args.model}", f"--dataset={args.dataset}",
              f"--steps={args.steps}", f"--batch_size={args.batch_size}", "--noreport",
              f"--model_dir={model_dir}", f"--intra_op_threads={threads}",
              f"--log_every_n_iter={max(1, args.steps // 20)}"]  # 20 rates for the median
  if args.data_dir:
    command.append(f"--data_dir={args.data_dir}")
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  start = time.time()
  proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  peak = [0]

  def sample():
    while proc.poll() is None:
      peak[0] = max(peak[0], sum(_pss_kib(p) for p in _tree(proc.pid)))
      time.sleep(0.2)

  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  out, _ = proc.communicate(timeout=args.timeout)
  wall = time.time() - start
  sampler.join()
  if proc.returncode:
    sys.exit(f"error: the {engine} run failed (exit code {proc.returncode}):\n{out[-3000:]}")
  with open(os.path.join(model_dir, "train_stats.json")) as f:
    rate = json.load(f)["steps_per_sec"]
  return {"wall_s": wall, "peak_gib": peak[0] / 2**20, "steps_per_sec": rate}


def table(results, args):
  """The Markdown table of the medians, engine by engine."""
  tasks = (f"chief + {args.workers} worker{'s' * (args.workers != 1)} + {args.ps} ps"
           + (" + evaluator" if args.evaluator else ""))
  lines = [f"{tasks}, {args.model}, {args.steps} steps of {args.batch_size} on "
           f"{args.dataset}; medians of {args.rounds} interleaved rounds", "",
           "| engine | wall time (s) | peak memory (GiB) | chief's steps/s |",
           "| --- | ---: | ---: | ---: |"]
  for engine in ENGINES:
    runs = results[engine]
    median = lambda key: statistics.median(r[key] for r in runs)  # noqa: B023
    name = "local launcher" if engine == "local" else "Ray (a private Ray per job)"
    lines.append(f"| {name} | {median('wall_s'):.1f} | {median('peak_gib'):.2f} | "
                 f"{median('steps_per_sec'):.1f} |")
  return "\n".join(lines)


def main(argv):
  args = parse_args(argv)
  results = {engine: [] for engine in ENGINES}
  with tempfile.TemporaryDirectory(prefix="bench_cluster") as tmp:
    for round_ in range(args.rounds):
      order = ENGINES if round_ % 2 == 0 else ENGINES[::-1]
      for engine in order:
        result = run_once(engine, args, os.path.join(tmp, f"{engine}{round_}"))
        results[engine].append(result)
        print(f"round {round_ + 1}/{args.rounds} {engine}: {result['wall_s']:.1f} s, "
              f"{result['peak_gib']:.2f} GiB, {result['steps_per_sec']:.1f} steps/s",
              file=sys.stderr, flush=True)
  print(table(results, args))


if __name__ == "__main__":
  main(sys.argv[1:])
