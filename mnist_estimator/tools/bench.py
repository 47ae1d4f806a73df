"""Training-speed benchmark: `python -m mnist_estimator.tools.bench --model=cnn`."""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Optional, Sequence

from mnist_estimator.common import cli  # pylint: disable=g-import-not-at-top

cli.import_tensorflow()  # first: its start-up lines go to the run log, not the console

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import tensorflow as tf

from mnist_estimator.data import datasets
from mnist_estimator import flagdefs
from mnist_estimator.estimator import hooks as hooks_lib
from mnist_estimator.inputs import input_fns as inputs
from mnist_estimator import models
from mnist_estimator.run import runner
from mnist_estimator.common.errors import UsageError
from mnist_estimator.run.spec import RunSpec
from mnist_estimator.tools import bench_lib
from mnist_estimator.tools import keras_models
from mnist_estimator.tools import paths

# tfdata is the product's training step with its default summaries (every 100 steps);
# nosummary turns those off and hooks adds the product's progress and step-counter hooks,
# so the two differences are what summaries and hooks cost.
VARIANTS = ("bound", "tfdata", "nosummary", "hooks", "numpy", "keras")
FLAGS = flags.FLAGS
# The hooks variant formats the progress lines as a run does, but shows none of them.
_DEVNULL = open(os.devnull, "w")  # pylint: disable=consider-using-with


@dataclasses.dataclass
class BenchConfig:
  """What to measure, as plain values (the flags fill it; tests build it directly)."""
  model: str = "cnn"
  dataset: str = "mnist"
  data_dir: Optional[str] = None
  batch_size: Optional[int] = None  # None: the model's default
  steps: int = 300
  warmup_steps: int = 50
  variants: Sequence[str] = VARIANTS
  startup: bool = True
  serving: bool = True
  intra_op_threads: int = 0
  inter_op_threads: int = 0
  time_to_accuracy: bool = False
  target_accuracy: float = 0.99
  tta_flagfile: str = paths.flagfile("tuned_mnist")
  tta_eval_every: int = 500
  matmul_n: int = 2048  # the matmul peak's matrix size
  repeats: int = 1  # interleaved rounds per variant; the median is reported
  serving_calls: Sequence[int] = (200, 1000, 10)  # batch-1 calls, large batch, its calls


def variant_spec(config, model_dir):
  """The RunSpec of one timed variant: the model's defaults, this benchmark's settings."""
  return RunSpec.for_model(
      config.model, model_dir=model_dir, dataset=config.dataset, data_dir=config.data_dir,
      steps=config.warmup_steps + config.steps, batch_size=config.batch_size,
      intra_op_threads=config.intra_op_threads, inter_op_threads=config.inter_op_threads,
      report=False)


def _run_variant(name, config, data, work_dir):
  """Times one variant; returns (figures or None if skipped, Estimator or None)."""
  spec = variant_spec(config, os.path.join(work_dir, name))
  warmup, steps, batch = config.warmup_steps, config.steps, spec.batch_size
  if name == "keras":
    params = runner.params_for(spec, data)
    return keras_models.time_keras(params, data, batch, warmup, steps), None
  if name == "bound":
    input_fn = bench_lib.bound_input_fn(data, batch)
  else:
    kind = "numpy" if name == "numpy" else "tfdata"
    input_fn = inputs.make_input_fn(kind, data.x_train, data.y_train, batch, train=True)
  if name == "nosummary":
    spec = spec.replace(save_summary_steps=10**9)  # never within the run
  hooks = (hooks_lib.train_hooks(spec.log_every_n_iter, batch, (), spec.model_dir,
                                 total_steps=spec.steps, stream=_DEVNULL)
           if name == "hooks" else [])
  return bench_lib.time_estimator(spec, data, input_fn, warmup, steps, hooks)


def add_ratios(variants, flops_per_step, peak_gflops):
  """Adds x_bound, x_keras (steps/s over theirs), gflops and pct_of_peak to each variant."""
  bound, keras = variants.get("bound"), variants.get("keras")
  for figures in variants.values():
    rate = figures["steps_per_sec"]
    figures["x_bound"] = rate / bound["steps_per_sec"] if bound else None
    figures["x_keras"] = rate / keras["steps_per_sec"] if keras else None
    figures["gflops"] = rate * flops_per_step / 1e9
    figures["pct_of_peak"] = 100.0 * figures["gflops"] / peak_gflops


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
  """The result's start: what needs no training (machine, FLOPs, parameters, matmul peak)."""
  spec = variant_spec(config, None)
  params = runner.params_for(spec, data)
  forward = bench_lib.forward_flops(params, spec.batch_size)
  return {"config": dataclasses.asdict(config), "machine": bench_lib.machine_info(),
          "model": config.model, "dataset": data.name, "batch_size": spec.batch_size,
          "trainable_params": bench_lib.trainable_params(params),
          "flops": {"forward_per_batch": forward, "per_step": 3 * forward,
                    "method": bench_lib.FLOPS_METHOD},
          "timing": bench_lib.TIMING_METHOD,
          "matmul_peak": bench_lib.matmul_peak(config.matmul_n),
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
    when requested, serving, startup and time_to_accuracy.

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
    add_ratios(result["variants"], result["flops"]["per_step"],
               result["matmul_peak"]["gflops"])
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


def _time_variants(config, data, work_dir, result):
  """Runs the variants, config.repeats rounds interleaved; keeps each one's median round.

  A shared 2-core VM drifts by 10-15% over minutes, so one sequential pass per variant
  can rank them wrongly; interleaved rounds see the same drift.

  Returns:
    The first Estimator trained (bound's, by default).
  """
  first = None
  rounds = {}
  for round_index in range(config.repeats):
    for name in config.variants:
      logging.info("bench: timing %s (round %d)", name, round_index + 1)
      figures, estimator = _run_variant(name, config, data,
                                        os.path.join(work_dir, f"r{round_index}"))
      rounds.setdefault(name, []).append(figures)
      first = first or estimator
  for name in config.variants:
    runs = [r for r in rounds[name] if r is not None]
    figures = (sorted(runs, key=lambda r: r["steps_per_sec"])[len(runs) // 2] if runs
               else None)
    if figures is not None:
      figures = dict(figures, rounds=[round(r["steps_per_sec"], 2) for r in runs])
    if figures is None:
      result["skipped"][name] = (f"no Keras twin of {config.model} or of its optimizer "
                                 f"(keras_models.KERAS_MODELS: "
                                 f"{', '.join(keras_models.KERAS_MODELS)})")
      continue
    if "params" in figures and figures["params"] != result["trainable_params"]:
      result["notes"].append(f"keras model has {figures['params']} parameters, the "
                             f"Estimator model {result['trainable_params']}")
    result["variants"][name] = figures
  return first


def _num(value, spec):
  return "-" if value is None else format(value, spec)


def format_report(result):
  """The result as readable text: the variant table, then startup, serving and TTA lines."""
  flops, peak, machine = result["flops"], result["matmul_peak"], result["machine"]
  config = result["config"]
  lines = [f"bench {result['model']} on {result['dataset']}: batch {result['batch_size']}, "
           f"{config['steps']} timed steps after {config['warmup_steps']} warmup; "
           f"{machine['nproc']} CPUs ({machine['cpu_model'] or 'unknown CPU'}), "
           f"TF {machine['tensorflow']}, load {_num(machine['loadavg'][0], '.2f')}",
           f"FLOPs per step {flops['per_step'] / 1e9:.3f} G (3 x forward; "
           f"{flops['method'].split(' on ')[0]}); matmul peak {peak['gflops']:.1f} GFLOP/s "
           f"({peak['n']}x{peak['n']} float32)",
           f"{'variant':<8} {'steps/s':>9} {'images/s':>10} {'x bound':>8} {'x keras':>8} "
           f"{'GFLOP/s':>8} {'% peak':>7}"]
  for name, v in result["variants"].items():
    lines.append(f"{name:<8} {v['steps_per_sec']:>9.2f} {v['images_per_sec']:>10.0f} "
                 f"{_num(v['x_bound'], '.2f'):>8} {_num(v['x_keras'], '.2f'):>8} "
                 f"{v['gflops']:>8.2f} {v['pct_of_peak']:>7.1f}")
  lines += [f"{name:<8} skipped: {why}" for name, why in result["skipped"].items()]
  lines += _extra_lines(result)
  lines += [f"note: {note}" for note in result["notes"]]
  return "\n".join(lines)


def _extra_lines(result):
  """Startup, serving and time-to-accuracy lines, for the figures that were measured."""
  lines = []
  if result.get("startup"):
    added = result["startup"]["added"]
    lines.append("startup: " + ", ".join(f"{name} +{s:.2f} s" for name, s in added.items())
                 + f" = {sum(added.values()):.2f} s (main_1_step: graph build, session, "
                 "1 step, checkpoint, evaluation)")
  if result.get("serving"):
    parts = [f"{key.replace('_', ' ')}: {v['ms_per_call']:.2f} ms/call "
             f"({v['images_per_sec']:.0f} images/s)"
             for key, v in result["serving"].items() if key.startswith("batch_")]
    lines.append("serving (SavedModel serving_default): " + "; ".join(parts))
  tta = result.get("time_to_accuracy")
  if tta:
    outcome = (f"reached at step {tta['steps']}" if tta["reached"] else
               f"NOT reached by step {tta['max_steps']}")
    lines.append(f"time to accuracy {tta['target']:.4f} ({tta['flagfile']}, {tta['dataset']}): "
                 f"{outcome}, {tta['train_seconds']:.1f} s training, "
                 f"eval accuracy {tta['accuracy']:.4f}")
  return lines


def write_json(result, path):
  """Writes the result as indented JSON, creating the folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(result, f, indent=2)


def define_flags():
  """Defines the benchmark's flags; only `run` calls it, so importing defines none."""
  flags.DEFINE_enum("model", "cnn", models.model_names(), "Network to benchmark.")
  flagdefs.define_data()
  flagdefs.define_threads()
  cli.define_verbose()
  flags.DEFINE_integer("batch_size", None, "Batch size (default: the model's).", lower_bound=1)
  flags.DEFINE_integer("steps", 300, "Timed steps per variant.", lower_bound=1)
  flags.DEFINE_integer("warmup_steps", 50, "Untimed steps before them.", lower_bound=0)
  flags.DEFINE_integer("repeats", 3, "Interleaved rounds of all variants; each variant's "
                       "median round is reported.", lower_bound=1)
  flags.DEFINE_string("out", None, "JSON results (default <tmp>/mnist_estimator/bench/"
                      "<model>.json).")
  flags.DEFINE_list("variants", list(VARIANTS), f"Variants to time, from: {', '.join(VARIANTS)}.")
  flags.DEFINE_bool("startup", True, "Time the start of `mnist_estimator.main` (subprocesses).")
  flags.DEFINE_bool("serving", True, "Time the exported SavedModel at batch 1 and 1000.")
  flags.DEFINE_bool("time_to_accuracy", False, "Also train --tta_flagfile's recipe until "
                    "--target_accuracy (long).")
  flags.DEFINE_float("target_accuracy", 0.99, "Test accuracy to reach.", lower_bound=0)
  flags.DEFINE_string("tta_flagfile", "flags/tuned_mnist.flags", "The recipe for "
                      "--time_to_accuracy (relative paths: cwd, else the repo root).")
  flags.DEFINE_integer("tta_eval_every", 500, "Evaluate every N steps.", lower_bound=1)
  flags.DEFINE_integer("matmul_n", 2048, "Matrix size of the matmul peak.", lower_bound=1)
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
    write_json(result, out)
  print(format_report(result))
  print(f"wrote {out}")


def run():
  """Entry point: `python -m mnist_estimator.tools.bench`."""
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
