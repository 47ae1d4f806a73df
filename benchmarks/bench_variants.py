"""The benchmark's timed variants: our training paths and Keras fit, in fp32 and bf16."""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from typing import Optional, Tuple

import numpy as np

from benchmarks import bench_lib
from benchmarks import keras_models
from benchmarks import paths
from mnist_estimator.common import precision as precision_lib
from mnist_estimator.inputs import input_fns
from mnist_estimator.run import plan as plan_lib
from mnist_estimator.run import runner
from mnist_estimator.run.spec import RunSpec

# The product's progress hook formats its lines as a run does, but shows none of them.
_DEVNULL = open(os.devnull, "w")  # pylint: disable=consider-using-with


@dataclasses.dataclass(frozen=True)
class Variant:
  """One timed way of training the model.

  Attributes:
    name: as --variants names it.
    help: what it is, for the report.
    precision: "fp32", "bf16" or "auto" (the CLI's default, resolved on this CPU).
    kind: "bound" (one constant batch: no input work), "tfdata", "numpy", "keras",
      "keras_default" (Keras in a process with TensorFlow's own oneDNN default) or "pytorch"
      (benchmarks/bench_torch.py under --torch_python).
    summaries: the product's summaries every 100 steps.
    hooks: the product's training hooks (progress, signals, record): the CLI's.
    conv_algorithm: --conv_algorithm (winograd, the default, or direct: oneDNN's Conv2D).
  """
  name: str
  help: str
  precision: str = "fp32"
  kind: str = "tfdata"
  summaries: bool = True
  hooks: bool = False
  conv_algorithm: str = "winograd"
  torch_args: Tuple[str, ...] = ()


VARIANTS = {v.name: v for v in (
    Variant("bound", "one constant batch, fp32: the compute bound", kind="bound"),
    Variant("bound_bf16", "one constant batch, bf16 train step", "bf16", kind="bound"),
    Variant("cli", "what `main` runs: tf.data, summaries, hooks, --precision=auto", "auto",
            hooks=True),
    Variant("cli_direct", "the same, --conv_algorithm=direct (oneDNN's Conv2D throughout)",
            "auto", hooks=True, conv_algorithm="direct"),
    Variant("bound_direct", "one constant batch, fp32, --conv_algorithm=direct", kind="bound",
            conv_algorithm="direct"),
    Variant("tfdata", "tf.data and summaries, no hooks, fp32"),
    Variant("nosummary", "tf.data, no summaries, fp32", summaries=False),
    Variant("numpy", "the tutorial's numpy_input_fn, fp32", kind="numpy"),
    Variant("keras", "Keras Model.fit of the same network and data, float32", kind="keras"),
    Variant("keras_bf16", "Keras Model.fit, mixed_bfloat16 policy", "bf16", kind="keras"),
    Variant("keras_default", "Keras Model.fit, float32, TensorFlow's own oneDNN default "
            "(what a Keras user runs)", kind="keras_default"),
    Variant("pytorch", "PyTorch (CPU) of the same network, optimizer and data, float32",
            kind="pytorch"),
    Variant("pytorch_cl", "the same in channels_last memory format (oneDNN's layout)",
            kind="pytorch", torch_args=("--channels_last",)),
    Variant("pytorch_bf16", "the same, channels_last, in bf16 autocast (PyTorch's mixed "
            "precision)", "bf16", kind="pytorch", torch_args=("--channels_last", "--bf16")),
)}
# Why a variant's kind can give no figures.
SKIP_REASONS = {
    "pytorch": "no torch under --torch_python, or an optimizer bench_torch.py does not write",
}
DEFAULT_VARIANTS = ("bound", "bound_bf16", "cli", "cli_direct", "keras", "keras_bf16",
                    "keras_default", "pytorch", "pytorch_cl", "pytorch_bf16")


def resolved(variant):
  """The variant's Precision on this CPU."""
  return precision_lib.resolve(variant.precision)


def steps_for(variant, steps):
  """Timed steps: a tenth (at least 20) where bf16 is emulated, 10x slower than fp32."""
  chosen = resolved(variant)
  emulated = chosen.bf16 and not chosen.native
  return max(min(steps, 20), steps // 10) if emulated else steps


def spec_for(config, variant, model_dir, steps):
  """The RunSpec of one timed variant: the model's defaults, this benchmark's settings."""
  return RunSpec.for_model(
      config.model, model_dir=model_dir, dataset=config.dataset, data_dir=config.data_dir,
      steps=config.warmup_steps + steps, batch_size=config.batch_size,
      intra_op_threads=config.intra_op_threads, inter_op_threads=config.inter_op_threads,
      report=False, precision=variant.precision, conv_algorithm=variant.conv_algorithm,
      save_summary_steps=100 if variant.summaries else 10**9)


def run(variant, config, data, work_dir):
  """Times one variant; returns (figures or None if it has no Keras twin, Estimator or None)."""
  steps = steps_for(variant, config.steps)
  spec = spec_for(config, variant, os.path.join(work_dir, variant.name), steps)
  warmup, batch = config.warmup_steps, spec.batch_size
  if variant.kind == "keras":
    params = plan_lib.params(spec, data)
    return keras_models.time_keras(params, data, batch, warmup, steps,
                                   bf16=resolved(variant).bf16), None
  if variant.kind == "keras_default":
    return _keras_default(config, steps), None
  if variant.kind == "pytorch":
    return _pytorch(variant, config, spec, data, work_dir, steps), None
  if variant.kind == "bound":
    input_fn = bench_lib.bound_input_fn(data, batch)
  else:
    input_fn = input_fns.make_input_fn(variant.kind, data.x_train, data.y_train, batch,
                                       train=True)
  plan = plan_lib.make(spec, data)
  # The CLI's hooks as `main` builds them: progress (shown nowhere), signals, the record.
  hooks = list(runner.train_hooks(plan, stream=_DEVNULL).values()) if variant.hooks else []
  return bench_lib.time_estimator(plan, input_fn, warmup, steps, hooks)


def _keras_default(config, steps) -> Optional[dict]:
  """Keras fp32 in a new process where TensorFlow decides oneDNN itself (an empty variable).

  TensorFlow 2.15 turns oneDNN on only on CPUs with AVX512-VNNI, AVX512_BF16 or AMX;
  this package turns it on everywhere, so in-process Keras would run our kernels.
  """
  with tempfile.TemporaryDirectory() as folder:
    out = os.path.join(folder, "keras.json")
    argv = [sys.executable, "-m", "benchmarks.bench", "--variants=keras",
            "--repeats=1", "--nostartup", "--noserving", "--nograph", "--noprimitives",
            f"--out={out}",
            f"--model={config.model}", f"--dataset={config.dataset}",
            f"--steps={steps}", f"--warmup_steps={config.warmup_steps}",
            f"--matmul_n={min(config.matmul_n, 256)}"]
    argv += [f"--{name}={getattr(config, name)}" for name in
             ("data_dir", "batch_size", "intra_op_threads", "inter_op_threads")
             if getattr(config, name)]
    env = paths.child_env(**{precision_lib.ONEDNN_ENV: ""})
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
      raise RuntimeError(f"keras_default failed ({done.returncode}): {done.stderr[-800:]}")
    with open(out) as f:
      result = json.load(f)
  figures = result["variants"].get("keras")
  if figures is not None:
    figures = dict(figures, onednn=result["machine"]["onednn"])
  return figures


def _pytorch(variant, config, spec, data, work_dir, steps) -> Optional[dict]:
  """PyTorch's step in its own Python (--torch_python); None where it cannot run."""
  if spec.optimizer not in ("sgd", "adam") or not config.torch_python:
    return None
  if not paths.has_torch(config.torch_python):
    return None
  arrays = os.path.join(os.path.dirname(work_dir), "torch_data.npz")
  if not os.path.exists(arrays):  # once per benchmark: its rounds share it
    np.savez(arrays, x_train=data.x_train, y_train=data.y_train)
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_torch.py")
  argv = [config.torch_python, script, f"--data={arrays}", f"--batch_size={spec.batch_size}",
          f"--warmup={config.warmup_steps}", f"--steps={steps}", f"--optimizer={spec.optimizer}",
          f"--learning_rate={spec.learning_rate}", f"--hidden={spec.hidden_units[0]}",
          f"--dropout={spec.dropout or 0}", *variant.torch_args]
  if config.intra_op_threads:
    argv.append(f"--threads={config.intra_op_threads}")
  done = subprocess.run(argv, capture_output=True, text=True, check=False)
  if done.returncode:
    raise RuntimeError(f"{variant.name} failed ({done.returncode}): {done.stderr[-800:]}")
  figures = json.loads(done.stdout.strip().splitlines()[-1])
  return dict(figures, precision=resolved(variant).train)
