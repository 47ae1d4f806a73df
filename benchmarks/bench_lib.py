"""Benchmark measurements: timed Estimator training, FLOPs, matmul peak, serving, startup, TTA."""

import collections
import os
import platform
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from mnist_estimator import flagdefs
from mnist_estimator.common import precision as precision_lib
from mnist_estimator.estimator import checkpoint_shapes as record_lib
from mnist_estimator.estimator import export as export_lib
from mnist_estimator.estimator import interrupts
from mnist_estimator.head import model_fn as model_fn_lib
from mnist_estimator.predict import model as predict_model
from mnist_estimator.run import plan as plan_lib
from mnist_estimator.run import runner

FLOPS_METHOD = ("tf.compat.v1.profiler float_operation on the PREDICT graph of one batch "
                "(model_fn); FLOPs per training step = 3 x forward")
TIMING_METHOD = ("wall time of --steps steps after --warmup_steps, each variant in a fresh "
                 "model_dir. Estimator: a SessionRunHook (graph build, session start and the "
                 "final checkpoint fall outside; summaries every 100 steps, as the product "
                 "writes them). keras: a Model.fit callback, compiled (graph, no XLA).")


class StepTimer(tf.compat.v1.train.SessionRunHook):
  """Records the wall time at the end of step `warmup` and of step `warmup + steps`.

  The run counts its own session.run calls (one training step each in a fresh
  model_dir) rather than fetching global_step, so it adds no work to the timed
  steps; graph building, session start and the final checkpoint fall outside.
  """

  def __init__(self, warmup, steps):
    self._warmup = warmup
    self._last = warmup + steps
    self._done = 0
    self.started = None
    self.ended = None

  def before_run(self, run_context):
    del run_context
    if self._done == 0 and self._warmup == 0:
      self.started = time.perf_counter()

  def after_run(self, run_context, run_values):
    del run_context, run_values
    self._done += 1
    if self._done == self._warmup:
      self.started = time.perf_counter()
    if self._done == self._last:
      self.ended = time.perf_counter()


def float_images(images):
  """uint8 [N, H, W, C] -> float32 0..1, as both input pipelines scale them."""
  return images.astype(np.float32) / 255.0


def bound_input_fn(data, batch_size):
  """An input_fn returning one real batch as constant tensors: no input work per step."""
  count = min(batch_size, len(data.x_train))
  reps = -(-batch_size // count)  # a set smaller than the batch is tiled to fill it
  images = np.concatenate([float_images(data.x_train[:count])] * reps)[:batch_size]
  labels = np.concatenate([data.y_train[:count]] * reps)[:batch_size].astype(np.int32)

  def input_fn():
    return {"x": tf.constant(images)}, tf.constant(labels)

  return input_fn


def time_estimator(plan, input_fn, warmup, steps, hooks=()):
  """Trains a fresh Estimator for warmup + steps steps and times the last `steps`.

  Args:
    plan: a run.plan.Plan whose model_dir is new (the timer counts from step 0).
    input_fn: the training input_fn.
    warmup: untimed steps first (graph optimisation, pipeline fill, caches).
    steps: timed steps.
    hooks: more training hooks (the product's), timed with the steps.

  Returns:
    (dict with seconds, steps, steps_per_sec, images_per_sec, precision; the Estimator).
  """
  spec = plan.spec
  record_lib.write(spec.model_dir, plan.record)
  estimator = plan_lib.estimator(plan)
  timer = StepTimer(warmup, steps)
  try:
    estimator.train(input_fn, hooks=[timer, *hooks], max_steps=warmup + steps)
  finally:  # the product's hooks put in SIGINT/SIGTERM handlers: give Ctrl-C back
    interrupts.restore()
  # The timer counts session.run calls; they are steps only if training started at step 0.
  if timer.ended is None or estimator.get_variable_value("global_step") != warmup + steps:
    raise RuntimeError(f"training in {spec.model_dir} did not run steps 1..{warmup + steps}; "
                       "is the model_dir fresh?")
  seconds = timer.ended - timer.started
  return {"seconds": seconds, "steps": steps, "steps_per_sec": steps / seconds,
          "images_per_sec": steps * spec.batch_size / seconds,
          "precision": plan.precision.train}, estimator


def _predict_graph(params, batch_size):
  """A graph holding model_fn in PREDICT mode for a fixed batch of float images."""
  graph = tf.Graph()
  with graph.as_default():
    images = tf.compat.v1.placeholder(tf.float32, [batch_size, *params["image_shape"]])
    model_fn_lib.model_fn({"x": images}, None, tf.estimator.ModeKeys.PREDICT, params)
  return graph


def forward_flops(params, batch_size):
  """Floating-point operations of one forward pass of a batch, by TF's profiler."""
  builder = tf.compat.v1.profiler.ProfileOptionBuilder
  options = builder(builder.float_operation()).with_empty_output().build()
  profile = tf.compat.v1.profiler.profile(_predict_graph(params, batch_size), options=options)
  return int(profile.total_float_ops)


def trainable_params(params):
  """The Estimator model's trainable parameter count (what Keras' count_params reports)."""
  variables = _predict_graph(params, 1).get_collection(
      tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)
  return int(sum(np.prod(v.shape.as_list()) for v in variables))


def matmul_peak(n=2048, repeats=8, trials=3, dtype="float32"):
  """Measured matmul rate: `repeats` chained n x n matmuls in a tf.function.

  Chaining (x = x @ b) keeps grappler from merging identical matmuls; b is scaled
  by 1/sqrt(n) so values neither overflow nor sink into slow denormals.

  Args:
    n, repeats, trials: matrix size, matmuls per call, calls (the best is kept).
    dtype: "float32" or "bfloat16".

  Returns:
    dict with n, repeats, dtype, seconds (best of `trials`) and gflops (2 n^3 per matmul).
  """
  a = tf.cast(tf.random.normal([n, n], seed=1), dtype)
  b = tf.cast(tf.random.normal([n, n], seed=2) / np.sqrt(n), dtype)

  @tf.function
  def chain(x):
    for _ in range(repeats):
      x = tf.matmul(x, b)
    return tf.reduce_sum(x)

  chain(a).numpy()  # trace and warm up
  best = float("inf")
  for _ in range(trials):
    start = time.perf_counter()
    chain(a).numpy()
    best = min(best, time.perf_counter() - start)
  return {"n": n, "repeats": repeats, "dtype": dtype, "seconds": best,
          "gflops": 2.0 * n ** 3 * repeats / best / 1e9}


def partition_ops(graph, fetch, target="", config=None):
  """Runs `fetch` once on `target`; returns a Counter of (op type, its T) of the graphs run.

  These are the graphs after grappler and oneDNN's layout pass: what really executed.
  """
  with graph.as_default(), tf.compat.v1.Session(target, config=config) as session:
    session.run(tf.compat.v1.global_variables_initializer())
    metadata = tf.compat.v1.RunMetadata()
    session.run(fetch, options=tf.compat.v1.RunOptions(output_partition_graphs=True),
                run_metadata=metadata)
  found = collections.Counter()
  for partition in metadata.partition_graphs:
    for node in partition.node:
      found[(node.op, node.attr["T"].type if "T" in node.attr else None)] += 1
  return found


def train_step_graph(params, batch_size):
  """What one bf16 training step runs: bf16 convolutions and matmuls, and Cast ops.

  Returns:
    dict with bf16_contractions, casts, casts_to_bf16 and variables.
  """
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.train.get_or_create_global_step()
    images = tf.zeros([batch_size, *params["image_shape"]])
    spec = model_fn_lib.model_fn({"x": images}, tf.zeros([batch_size], tf.int32),
                            tf.estimator.ModeKeys.TRAIN, dict(params, train_precision="bf16"))
    variables = len(tf.compat.v1.trainable_variables())
    to_bf16 = sum(op.type == "Cast" and op.get_attr("DstT") == tf.bfloat16
                  for op in graph.get_operations())
  found = partition_ops(graph, spec.train_op)
  bf16 = tf.bfloat16.as_datatype_enum
  return {"bf16_contractions": sum(count for (op, t), count in found.items()
                                   if t == bf16 and ("Conv" in op or "MatMul" in op)),
          "casts": sum(count for (op, _), count in found.items() if op == "Cast"),
          "casts_to_bf16": int(to_bf16), "variables": variables}


def _time_calls(model, batch, calls):
  model(batch)  # warm-up: the first call of a signature traces and allocates
  start = time.perf_counter()
  for _ in range(calls):
    model(batch)
  seconds = time.perf_counter() - start
  return {"batch": len(batch), "calls": calls, "ms_per_call": 1000 * seconds / calls,
          "images_per_sec": len(batch) * calls / seconds}


def measure_serving(estimator, data, export_dir, calls_1=200, batch_big=1000, calls_big=10):
  """Exports the Estimator's checkpoint, loads it as predict.py does and times the signature.

  Returns:
    {"batch_1": ..., "batch_<batch_big>": ...}, each with batch, calls, ms_per_call
    and images_per_sec.
  """
  path = export_lib.export(estimator, export_dir, data.image_shape)
  model = predict_model.load_model(path)
  images = float_images(data.x_test).reshape(-1, *model.input_shape[1:])
  reps = -(-batch_big // len(images))
  big = np.concatenate([images] * reps)[:batch_big]
  return {"batch_1": _time_calls(model, images[:1], calls_1),
          f"batch_{batch_big}": _time_calls(model, big, calls_big)}


def startup_stages(model, model_dir):
  """(name, argv) of the startup subprocesses, each doing a little more than the last."""
  py = sys.executable
  return [
      ("python", [py, "-c", "pass"]),
      ("import_tensorflow", [py, "-c", "import tensorflow"]),
      ("import_package", [py, "-c", "import mnist_estimator.main"]),
      ("main_1_step", [py, "-m", "mnist_estimator.main", f"--model={model}",
                       "--dataset=mnist_sample", "--steps=1", f"--model_dir={model_dir}",
                       "--noreport"]),
  ]


def measure_startup(stages):
  """Wall time of each stage's subprocess, and what each adds to the one before.

  Returns:
    {"total": {name: s}, "added": {name: s - previous s}}; the last stage's
    addition is graph build + session start + 1 step + checkpoint + evaluation.

  Raises:
    RuntimeError: if a stage fails (its stderr tail says why).
  """
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  total, added, previous = {}, {}, 0.0
  for name, argv in stages:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    total[name] = time.perf_counter() - start
    if done.returncode:
      raise RuntimeError(f"startup stage {name} failed ({done.returncode}): "
                         f"{done.stderr.strip()[-500:]}")
    added[name] = total[name] - previous
    previous = total[name]
  return {"total": total, "added": added}


_SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def machine_info():
  """Cores, CPU model and SIMD flags, oneDNN, TF version and load: what the figures depend on."""
  flags = precision_lib.cpu_flags()
  affinity = getattr(os, "sched_getaffinity", None)
  return {"nproc": len(affinity(0)) if affinity else os.cpu_count(),
          "cpu_model": precision_lib.cpu_model(),
          "simd_flags": [flag for flag in _SIMD_FLAGS if flag in flags],
          "bf16_flags": sorted({"avx512_bf16", "amx_bf16"} & flags),
          "onednn": precision_lib.onednn_on(),
          "tensorflow": tf.__version__, "python": platform.python_version(),
          "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def tta_spec(config, model_dir):
  """The time-to-accuracy run: the flagfile's recipe on this benchmark's data and threads.

  Returns:
    (RunSpec, the data set the flagfile names).
  """
  recipe = flagdefs.spec_from_flagfile(config.tta_flagfile)
  spec = recipe.replace(model_dir=model_dir, dataset=config.dataset, data_dir=config.data_dir,
                        intra_op_threads=config.intra_op_threads,
                        inter_op_threads=config.inter_op_threads, report=False,
                        log_tensors=(), export_dir=None)
  return spec, recipe.dataset


def time_to_accuracy(config, data, work_dir):
  """Trains the flagfile's recipe in chunks until test accuracy reaches the target.

  The clock runs only inside estimator.train (each chunk's graph build and
  checkpoint included, evaluation excluded). The bench's data set is used.

  Returns:
    dict with reached, steps, train_seconds, accuracy, target, max_steps, curve.
  """
  spec, flag_dataset = tta_spec(config, os.path.join(work_dir, "tta"))
  estimator = plan_lib.estimator(plan_lib.make(spec, data))
  train_fn, eval_fn = runner.train_input_fn(spec, data), runner.eval_input_fn(spec, data)
  seconds, step, curve = 0.0, 0, []
  while step < spec.steps:
    step = min(step + config.tta_eval_every, spec.steps)
    start = time.perf_counter()
    estimator.train(train_fn, max_steps=step)
    seconds += time.perf_counter() - start
    accuracy = float(estimator.evaluate(eval_fn)["accuracy"])
    curve.append({"step": step, "train_seconds": seconds, "accuracy": accuracy})
    if accuracy >= config.target_accuracy:
      break
  return {"flagfile": config.tta_flagfile, "model": spec.model, "dataset": data.name,
          "flagfile_dataset": flag_dataset,
          "target": config.target_accuracy, "reached": curve[-1]["accuracy"] >=
          config.target_accuracy, "steps": step, "max_steps": spec.steps,
          "train_seconds": seconds, "accuracy": curve[-1]["accuracy"], "curve": curve}
