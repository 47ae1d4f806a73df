"""Runs the seeds' flagfiles; writes a reproduction table (Markdown) and accuracy curves (PNG)."""

import dataclasses
import json
import os
import re
import subprocess
import sys
import time

from mnist_estimator.common import cli  # pylint: disable=g-import-not-at-top

cli.import_tensorflow()  # first: its start-up lines go to the run log, not the console

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from benchmarks import paths
from mnist_estimator import flagdefs
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets



@dataclasses.dataclass(frozen=True)
class Target:
  """One row of the table: a flagfile under flags/ and the figure its seed reports."""
  name: str       # flagfile stem
  dataset: str    # a registered data set: its DatasetInfo.dir_flag says which --*_dir to pass
  reported: float  # the seed's test (fonts: validation) accuracy
  target: float    # what a run must reach: the seed's figure, rounded to the claim it makes;
                   # None for a baseline, which is measured, not judged
  source: str
  # "run": train the flagfile; "majority": the majority-class baseline of the data set,
  # computed, not trained (its flagfile `flagfile` names the data set's settings).
  kind: str = "run"
  flagfile: str = ""


TARGETS = {t.name: t for t in (
    Target("cnn", "mnist", 0.9707, 0.970, "000 cnn_mnist tutorial"),
    Target("mlp", "mnist", 0.984, 0.983, "002 moving-average MLP"),
    Target("keras_cnn", "mnist", 0.9912, 0.990, "004 Keras CNN"),
    Target("tuned_mnist", "mnist", 0.9921, 0.993, "beyond the seeds (best seed: 99.21%)"),
    Target("lenet", "fashion_mnist", 0.7527, 0.7527, "001 d2l LeNet"),
    Target("fonts_linear", "fonts", 0.40, 0.40, "003 ch. 3 logistic regression"),
    Target("fonts_dnn", "fonts", 0.63, 0.63, "003 ch. 3 DNN 128-32"),
    Target("fonts_cnn", "fonts", 0.68, 0.68, "003 ch. 3 CNN (conv_learn, dense 32)"),
    Target("deep_cnn", "fonts", 0.80, 0.80, "003 ch. 3 deep CNN"),
    # The book reports only "much better than the 25% of a random guess": the target is 50%.
    Target("weather_rnn", "weather", 0.25, 0.50, "003 ch. 4 weather BasicRNNCell"),
    Target("weather_better", "weather", 0.25, 0.85, "beyond the seed: LSTM 32, Adam"),
    Target("weather_linear", "weather", 0.25, None, "baseline: linear on the last week"),
    Target("weather_majority", "weather", 0.25, None, "baseline: majority training class",
           kind="majority", flagfile="weather_rnn"),
)}

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_list("models", ["cnn", "mlp", "keras_cnn", "fonts_linear", "fonts_dnn",
                               "fonts_cnn", "deep_cnn", "weather_rnn", "weather_better",
                               "weather_linear", "weather_majority"],
                    f"Flagfiles to run, from: {', '.join(TARGETS)}.")
  flags.DEFINE_string("out_dir", "/tmp/mnist_estimator/reproduce", "Model dirs, logs, table.")
  for info in datasets.DATASETS.values():  # one --<name>_dir per data set with files
    if info.dir_flag:
      flags.DEFINE_string(info.dir_flag, None, f"--data_dir of the {info.name} runs ({info.about}; "
                          "none: the flagfile's, else its default).")
  flags.DEFINE_bool("quick", False, "Smoke check: each run stops at --quick_steps.")
  flags.DEFINE_integer("quick_steps", 300, "Steps per run with --quick.", lower_bound=1)
  flags.DEFINE_integer("evals", 10, "Evaluations per run, for the curves.", lower_bound=1)
  cli.define_verbose()
  flags.DEFINE_bool("table_only", False, "Only rewrite the table and curves from "
                    "<out_dir>/reproduction.json (no training).")


def majority_row(target, data_dirs):
  """The majority-class baseline: the commonest training label scored on the test set."""
  row = {"name": target.name, "dataset": target.dataset, "steps": 0,
         "reported": target.reported, "target": target.target, "source": target.source}
  try:
    settings = flagdefs.spec_from_flagfile(paths.flagfile(target.flagfile))
    # A flagfile's relative --data_dir is relative to the checkout, where main runs it.
    data_dir = data_dirs.get(target.dataset) or (
        settings.data_dir and os.path.join(paths.REPO_ROOT, settings.data_dir))
    data = datasets.load(target.dataset, data_dir, window=settings.window)
  except Exception as e:  # pylint: disable=broad-except  # a UsageError: report it in the row
    return dict(row, error=f"error: {e}")
  majority, row["measured"] = datasets.majority_accuracy(data)
  row["source"] += f" ({data.class_names[majority]})"
  return row


def command(target, model_dir, steps, evals, data_dirs):
  """The main command line for one run: train_and_evaluate with `evals` evaluations."""
  argv = [sys.executable, "-m", "mnist_estimator.main",
          f"--flagfile={paths.flagfile(target.name)}",
          f"--model_dir={model_dir}", f"--steps={steps}", "--mode=train_and_evaluate",
          f"--save_checkpoints_steps={max(1, steps // evals)}", "--keep_checkpoint_max=2",
          f"--log_every_n_iter={min(500, max(1, steps // 5))}",  # short runs log a rate too
          # The seeds trained on every training image and published test-set curves: no
          # validation cut, so the periodic evaluations are of the test set, as theirs were.
          "--validation_split=0"]
  if data_dirs.get(target.dataset):
    argv.append(f"--data_dir={data_dirs[target.dataset]}")
  return argv


def run_one(target, out_dir, steps, evals, data_dirs):
  """Runs one flagfile; returns its table row as a dict."""
  model_dir = os.path.join(out_dir, target.name)
  log_path = os.path.join(out_dir, f"{target.name}.log")
  start = time.time()
  with open(log_path, "w") as log:
    proc = subprocess.run(command(target, model_dir, steps, evals, data_dirs),
                          cwd=paths.REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                          check=False)
  row = {"name": target.name, "dataset": target.dataset, "steps": steps,
         "reported": target.reported, "target": target.target, "source": target.source,
         "wall_seconds": round(time.time() - start, 1), "log": log_path}
  if proc.returncode != 0:
    row["error"] = _last_error(log_path)
    return row
  with open(os.path.join(model_dir, "eval_report", "eval_report.json")) as f:
    row["measured"] = json.load(f)["accuracy"]
  stats_path = os.path.join(model_dir, "train_stats.json")
  if os.path.exists(stats_path):
    with open(stats_path) as f:
      row.update(json.load(f))
  row["curve"] = eval_curve(model_dir)
  return row


def _last_error(log_path):
  with open(log_path) as f:
    lines = [line.strip() for line in f if line.startswith(("error:", "FATAL"))]
  return lines[-1] if lines else f"failed; see {log_path}"


def eval_curve(model_dir):
  """[(step, accuracy)] of the run's evaluations, read from its eval event files."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  acc = event_accumulator.EventAccumulator(os.path.join(model_dir, "eval"))
  acc.Reload()
  if "accuracy" not in acc.Tags()["scalars"]:
    return []
  return [(e.step, e.value) for e in acc.Scalars("accuracy")]


def markdown_table(rows):
  """The reproduction table, one row per run; ✓ when the run reaches its target."""
  target_of = lambda r: r.get("target", r["reported"])
  lines = ["| run | data set | steps | seed reported | target | measured | train s | steps/s | |",
           "|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    head = (f"| {r['name']} | {r['dataset']} | {r['steps']} | {r['reported']:.2%} | "
            f"{'—' if target_of(r) is None else format(target_of(r), '.2%')} | ")
    if "error" in r:
      # The error line without its parenthesised detail (the log has it all).
      lines.append(head + f"not run: {re.sub(r' *[(][^)]*[)]', '', r['error'])} | | | ✗ |")
      continue
    verdict = ("baseline" if target_of(r) is None else
               "✓" if r["measured"] >= target_of(r) - 1e-9 else "✗ below")
    lines.append(head + f"{r['measured']:.2%} | {r.get('seconds', '')} | "
                 f"{r.get('steps_per_sec', '')} | {verdict} |")
  return "\n".join(lines)


def plot_curves(rows, path):
  """One accuracy-vs-step line per run, the seed's figure as a dotted line."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  panels = list(dict.fromkeys(info.panel for info in datasets.DATASETS.values() if info.panel))
  fig, axes = plt.subplots(1, len(panels), figsize=(6.3 * len(panels), 5), squeeze=False)
  axes = axes[0]
  for r in rows:
    if not r.get("curve"):
      continue
    ax = axes[panels.index(datasets.info(r["dataset"]).panel)]
    steps, values = zip(*r["curve"])
    line, = ax.plot(steps, values, marker="o", markersize=3, label=r["name"])
    ax.axhline(r["reported"], color=line.get_color(), linestyle=":", linewidth=1)
  for ax, title in zip(axes, panels):
    ax.set_title(title + " (dotted: seed's figure)")
    ax.set_xlabel("global step")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def run_all(names, data_dirs):
  """Runs each named flagfile in turn, printing its row as it finishes."""
  rows = []
  for name in names:
    if TARGETS[name].kind == "majority":
      rows.append(majority_row(TARGETS[name], data_dirs))
      print(markdown_table(rows[-1:]).splitlines()[-1], flush=True)
      continue
    steps = flagdefs.spec_from_flagfile(paths.flagfile(name)).steps
    steps = min(steps, FLAGS.quick_steps) if FLAGS.quick else steps
    logging.info("running %s for %d steps", name, steps)
    rows.append(run_one(TARGETS[name], FLAGS.out_dir, steps, FLAGS.evals, data_dirs))
    print(markdown_table(rows[-1:]).splitlines()[-1], flush=True)
  return rows


def _rows():
  """Runs the flagfiles (or reads the last run's rows with --table_only)."""
  unknown = [name for name in FLAGS.models if name not in TARGETS]
  if unknown:
    raise UsageError(f"unknown --models {', '.join(unknown)}; choose from: "
                     f"{', '.join(TARGETS)}")
  if not FLAGS.table_only:
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    data_dirs = {name: FLAGS[info.dir_flag].value
                 for name, info in datasets.DATASETS.items() if info.dir_flag}
    return run_all(FLAGS.models, data_dirs)
  path = os.path.join(FLAGS.out_dir, "reproduction.json")
  try:
    with open(path) as f:
      rows = json.load(f)
  except (OSError, ValueError) as e:
    raise UsageError(f"--table_only needs {path} from an earlier run ({e}); run without "
                     "--table_only first") from None
  return [dict(r, target=TARGETS[r["name"]].target, reported=TARGETS[r["name"]].reported)
          for r in rows]


def main(argv):
  with cli.one_line_errors(FLAGS.verbose):
    if len(argv) > 1:
      raise UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    rows = _rows()
    table = markdown_table(rows)
    with open(os.path.join(FLAGS.out_dir, "reproduction.md"), "w") as f:
      f.write(table + "\n")
    with open(os.path.join(FLAGS.out_dir, "reproduction.json"), "w") as f:
      json.dump(rows, f, indent=2)
    png = plot_curves(rows, os.path.join(FLAGS.out_dir, "accuracy_curves.png"))
  print(table)
  print(f"table: {os.path.join(FLAGS.out_dir, 'reproduction.md')}; curves: {png}")


def run():
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
