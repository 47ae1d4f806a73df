"""Training-speed benchmark: `python -m benchmarks.bench --model=cnn`."""

import dataclasses
import os
import shutil
import tempfile
from typing import Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING: not for users

from mnist_estimator.common import runlog  # pylint: disable=g-import-not-at-top

runlog.import_tensorflow()  # its start-up lines (CUDA factories, ...) stay off the console

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import tensorflow as tf

from benchmarks import bench_lib
from benchmarks import bench_primitives
from benchmarks import bench_report
from benchmarks import bench_variants
from benchmarks import keras_models
from benchmarks import paths
from mnist_estimator import flagdefs
from mnist_estimator import models
from mnist_estimator.common import cli
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets
from mnist_estimator.run import plan as plan_lib

VARIANTS = tuple(bench_variants.VARIANTS)
FLAGS = flags.FLAGS
_KERAS = ("keras", "keras_bf16", "keras_default")
_PYTORCH = tuple(name for name, v in bench_variants.VARIANTS.items() if v.kind == "pytorch")


@dataclasses.dataclass
class BenchConfig:
  """What to measure, as plain values (the flags fill it; tests build it directly)."""
  model: str = "cnn"
  dataset: str = "mnist"
  data_dir: Optional[str] = None
  batch_size: Optional[int] = None  # None: the model's default
  steps: int = 300
  warmup_steps: int = 50
  variants: Sequence[str] = bench_variants.DEFAULT_VARIANTS
  startup: bool = True
  serving: bool = True
  graph: bool = True  # count the bf16 train step's ops
  primitives: bool = True  # oneDNN's time per primitive of one step (fp32; bf16 if native)
  intra_op_threads: int = 0
  inter_op_threads: int = 0
  time_to_accuracy: bool = False
  target_accuracy: float = 0.99
  tta_flagfile: str = paths.flagfile("tuned_mnist")
  tta_eval_every: int = 500
  matmul_n: int = 2048  # the matmul peak's matrix size
  repeats: int = 1  # interleaved rounds per variant; the median is reported
  serving_calls: Sequence[int] = (200, 1000, 10)  # batch-1 calls, large batch, its calls
  torch_python: str = dataclasses.field(default_factory=paths.torch_python)


def variant_spec(config, model_dir, variant="bound"):
  """The RunSpec of a timed variant (default: the fp32 bound)."""
  chosen = bench_variants.VARIANTS[variant]
  return bench_variants.spec_for(config, chosen, model_dir, config.steps)


def add_ratios(result):
  """Adds x_bound, x_keras (over the faster Keras fit), gflops and pct_of_peak to each variant.

  % of peak is of the matmul peak in the variant's own precision.
  """
  variants = result["variants"]
  bound = variants.get("bound")
  kerases = {name: variants[name] for name in _KERAS if name in variants}
  best = max(kerases, key=lambda name: kerases[name]["steps_per_sec"]) if kerases else None
  result["keras_best"] = best
  torches = {name: variants[name] for name in _PYTORCH if name in variants}
  result["pytorch_best"] = (max(torches, key=lambda name: torches[name]["steps_per_sec"])
                            if torches else None)
  peaks = {"fp32": result["matmul_peak"]["fp32"]["gflops"],
           "bf16": result["matmul_peak"].get("bf16", {}).get("gflops")}
  for figures in variants.values():
    rate = figures["steps_per_sec"]
    figures["x_bound"] = rate / bound["steps_per_sec"] if bound else None
    figures["x_keras"] = rate / variants[best]["steps_per_sec"] if best else None
    figures["gflops"] = rate * result["flops"]["per_step"] / 1e9
    peak = peaks.get(figures["precision"]) or peaks["fp32"]
    figures["pct_of_peak"] = 100.0 * figures["gflops"] / peak


def _set_eager_threads(config, notes):
  """Keras runs in the eager context, whose thread pools are fixed once it starts."""
  try:
    if config.intra_op_threads:
      tf.config.threading.set_intra_op_parallelism_threads(config.intra_op_threads)
    if config.inter_op_threads:
      tf.config.threading.set_inter_op_parallelism_threads(config.inter_op_threads)
  except RuntimeError:
    notes.append("keras and matmul peak: thread flags not applied (eager context had started)")


def _static_figures(config, data):
  """The result's start: what needs no training (machine, FLOPs, parameters, matmul peaks)."""
  spec = variant_spec(config, None)
  params = plan_lib.params(spec, data)
  forward = bench_lib.forward_flops(params, spec.batch_size)
  bf16 = any(bench_variants.resolved(bench_variants.VARIANTS[name]).bf16
             for name in config.variants)
  peaks = {"fp32": bench_lib.matmul_peak(config.matmul_n)}
  if bf16:
    peaks["bf16"] = bench_lib.matmul_peak(config.matmul_n, dtype="bfloat16")
  return {"config": dataclasses.asdict(config), "machine": bench_lib.machine_info(),
          "model": config.model, "dataset": data.name, "batch_size": spec.batch_size,
          "trainable_params": bench_lib.trainable_params(params),
          "flops": {"forward_per_batch": forward, "per_step": 3 * forward,
                    "method": bench_lib.FLOPS_METHOD},
          "timing": bench_lib.TIMING_METHOD, "matmul_peak": peaks,
          "bf16_steps": bench_variants.steps_for(bench_variants.VARIANTS["bound_bf16"],
                                                 config.steps),
          "variants": {}, "skipped": {}, "notes": []}


def run_benchmark(config, data):
  """Measures every requested figure on `data`; returns the result dict (see README/--help).

  Each timed variant trains in its own fresh model_dir under a temp dir that is
  removed at the end.

  Args:
    config: a BenchConfig.
    data: the datasets.Dataset to train on.

  Returns:
    dict with config, machine, flops, matmul_peak, variants, skipped, notes and,
    when requested, graph, serving, startup and time_to_accuracy.

  Raises:
    UsageError: an unknown variant, model or flagfile.
  """
  unknown = sorted(set(config.variants) - set(VARIANTS))
  if unknown:
    raise UsageError(f"unknown variants {unknown}; choose from: {', '.join(VARIANTS)}")
  notes = []
  _set_eager_threads(config, notes)  # before the matmul peak starts the eager context
  result = _static_figures(config, data)
  result["notes"] += notes
  work_dir = tempfile.mkdtemp(prefix="mnist_estimator_bench_")
  try:
    estimator = _time_variants(config, data, work_dir, result)
    add_ratios(result)
    if config.graph:
      result["graph"] = bench_lib.train_step_graph(
          plan_lib.params(variant_spec(config, None), data), 8)
    if config.primitives:
      result["primitives"] = _primitives(config, result)
    if config.serving and estimator is None:
      result["skipped"]["serving"] = "no Estimator variant ran, so there is no checkpoint"
    elif config.serving:
      result["serving"] = bench_lib.measure_serving(
          estimator, data, os.path.join(work_dir, "export"), *config.serving_calls)
    if config.startup:
      result["startup"] = bench_lib.measure_startup(
          bench_lib.startup_stages(config.model, os.path.join(work_dir, "startup")))
    if config.time_to_accuracy:
      result["time_to_accuracy"] = bench_lib.time_to_accuracy(config, data, work_dir)
  finally:
    shutil.rmtree(work_dir, ignore_errors=True)
  result["machine"]["loadavg_end"] = bench_lib.machine_info()["loadavg"]
  return result


def _primitives(config, result):
  """oneDNN's per-primitive times of one step: fp32, and bf16 where the CPU has it natively."""
  precisions = ["fp32"] + (["bf16"] if result["machine"]["bf16_flags"] else [])
  return [bench_primitives.primitive_times(config.model, result["batch_size"], p)
          for p in precisions]


def _time_variants(config, data, work_dir, result):
  """Runs the variants, config.repeats rounds interleaved; keeps each one's median round.

  A shared 2-core VM drifts by 10-35% over minutes, so one sequential pass per variant
  can rank them wrongly; interleaved rounds see the same drift.

  Returns:
    The first Estimator trained (bound's, by default).
  """
  first = None
  rounds = {}
  for round_index in range(config.repeats):
    for name in config.variants:
      logging.info("bench: timing %s (round %d)", name, round_index + 1)
      figures, estimator = bench_variants.run(bench_variants.VARIANTS[name], config, data,
                                              os.path.join(work_dir, f"r{round_index}"))
      rounds.setdefault(name, []).append(figures)
      first = first or estimator
  for name in config.variants:
    runs = [r for r in rounds[name] if r is not None]
    if not runs:
      kind = bench_variants.VARIANTS[name].kind
      result["skipped"][name] = bench_variants.SKIP_REASONS.get(kind, (
          f"no Keras twin of {config.model} or of its optimizer (keras_models.KERAS_MODELS: "
          f"{', '.join(keras_models.KERAS_MODELS)})"))
      continue
    figures = sorted(runs, key=lambda r: r["steps_per_sec"])[len(runs) // 2]
    figures = dict(figures, rounds=[round(r["steps_per_sec"], 2) for r in runs])
    if "params" in figures and figures["params"] != result["trainable_params"]:
      result["notes"].append(f"{name} model has {figures['params']} parameters, the "
                             f"Estimator model {result['trainable_params']}")
    result["variants"][name] = figures
  return first


def define_flags():
  """Defines the benchmark's flags; only `run` calls it, so importing defines none."""
  flags.DEFINE_enum("model", "cnn", models.model_names(), "Network to benchmark.")
  flagdefs.define_flags(names=("dataset", "data_dir", "intra_op_threads", "inter_op_threads"))
  flags.DEFINE_integer("batch_size", None, "Batch size (default: the model's).", lower_bound=1)
  flags.DEFINE_integer("steps", 300, "Timed steps per variant.", lower_bound=1)
  flags.DEFINE_integer("warmup_steps", 50, "Untimed steps before them.", lower_bound=0)
  flags.DEFINE_integer("repeats", 3, "Interleaved rounds of all variants; each variant's "
                       "median round is reported.", lower_bound=1)
  flags.DEFINE_bool("graph", True, "Count the ops one bf16 training step runs (casts).")
  flags.DEFINE_bool("primitives", True, "Time each oneDNN primitive of one training step "
                    "(ONEDNN_VERBOSE, in a child process): fp32, and bf16 if the CPU has it.")
  flags.DEFINE_string("out", None, "JSON results (default <tmp>/mnist_estimator/bench/"
                      "<model>.json).")
  flags.DEFINE_list("variants", list(bench_variants.DEFAULT_VARIANTS), "Variants to time, "
                    "from: " + "; ".join(f"{v.name} ({v.help})"
                                         for v in bench_variants.VARIANTS.values()) + ".")
  flags.DEFINE_bool("startup", True, "Time the start of `mnist_estimator.main` (subprocesses).")
  flags.DEFINE_bool("serving", True, "Time the exported SavedModel at batch 1 and 1000.")
  flags.DEFINE_bool("time_to_accuracy", False, "Also train --tta_flagfile's recipe until "
                    "--target_accuracy (long).")
  flags.DEFINE_float("target_accuracy", 0.99, "Test accuracy to reach.", lower_bound=0)
  flags.DEFINE_string("tta_flagfile", "flags/tuned_mnist.flags", "The recipe for "
                      "--time_to_accuracy (relative paths: cwd, else the repo root).")
  flags.DEFINE_integer("tta_eval_every", 500, "Evaluate every N steps.", lower_bound=1)
  flags.DEFINE_integer("matmul_n", 2048, "Matrix size of the matmul peak.", lower_bound=1)
  flags.DEFINE_string("torch_python", paths.torch_python(), "The Python of the pytorch "
                      "variants, with torch and numpy (`make torch`'s venv, else Debian's).")
  flags.register_validator("variants", lambda names: set(names) <= set(VARIANTS),
                           message=f"--variants takes names from: {', '.join(VARIANTS)}")


def config_from_flags():
  """A BenchConfig from the parsed flags."""
  names = [field.name for field in dataclasses.fields(BenchConfig) if field.name in FLAGS]
  values = {name: FLAGS[name].value for name in names}
  flagfile = values["tta_flagfile"]
  # A relative path is tried from the cwd, then from the repo root (where flags/ lives).
  values["tta_flagfile"] = os.path.abspath(
      flagfile if os.path.exists(flagfile) else os.path.join(paths.REPO_ROOT, flagfile))
  return BenchConfig(**values)


def main(argv):
  if not FLAGS.verbose:
    cli.quiet_tensorflow()
    logging.set_verbosity(logging.WARNING)  # only the table: no INFO notes per checkpoint
  with cli.one_line_errors(FLAGS.verbose):
    if len(argv) > 1:
      raise UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    config = config_from_flags()
    out = FLAGS.out or os.path.join(tempfile.gettempdir(), "mnist_estimator", "bench",
                                    f"{config.model}.json")
    data = datasets.load(config.dataset, config.data_dir)
    result = run_benchmark(config, data)
    bench_report.write_json(result, out)
  print(bench_report.format_report(result))
  print(f"wrote {out}")


def run():
  """Entry point: `python -m benchmarks.bench`."""
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
