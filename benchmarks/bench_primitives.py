"""Where a training step's time goes: oneDNN's own timing of each primitive (ONEDNN_VERBOSE)."""

import collections
import subprocess
import sys

from benchmarks import paths

_MARK = "=== timed steps ==="


def primitive_times(model, batch_size, precision, steps=5, warmup=3, timeout=600):
  """Runs `steps` training steps of `model` in a child with ONEDNN_VERBOSE=1.

  oneDNN reads the variable when it starts, so it cannot be turned on in this process.

  Args:
    model: a registered model name.
    batch_size: images per step.
    precision: "fp32" or "bf16", the training step's.
    steps: timed steps; each primitive's time is their mean.
    warmup: untimed steps first (primitive creation, caches).
    timeout: seconds before the child is given up.

  Returns:
    dict with ms_per_step (the sum over primitives) and rows, largest first: primitive,
    impl, kind, shape, ms (per step).
  """
  argv = [sys.executable, "-m", "benchmarks.bench_primitives", model,
          str(batch_size), precision, str(steps), str(warmup)]
  env = paths.child_env(ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                       check=True).stdout
  return dict(parse(out.split(_MARK, 1)[-1], steps), precision=precision)


def parse(text, steps):
  """The per-step time of each (primitive, impl, kind, shape) in ONEDNN_VERBOSE exec lines."""
  totals = collections.Counter()
  for line in text.splitlines():
    fields = line.strip().split(",")
    if not fields[0].startswith("onednn_verbose") or "exec" not in fields:
      continue
    at = fields.index("exec")  # exec,engine,primitive,impl,kind,...,shape,ms
    try:
      ms = float(fields[-1])
    except ValueError:
      continue
    totals[(fields[at + 2], fields[at + 3], fields[at + 4], fields[-2])] += ms / steps
  rows = [{"primitive": p, "impl": impl, "kind": kind, "shape": shape, "ms": ms}
          for (p, impl, kind, shape), ms in totals.most_common()]
  return {"ms_per_step": sum(totals.values()), "rows": rows}


def short_shape(shape):
  """mb100_ic32oc64_ih14oh14kh5... -> 'ic32 oc64 14x14 k5'; other shapes as they are."""
  import re  # pylint: disable=g-import-not-at-top
  conv = re.match(r"mb\d+_ic(\d+)oc(\d+)_ih(\d+)oh\d+kh(\d+).*_iw(\d+)", shape)
  if conv:
    ic, oc, ih, kh, iw = conv.groups()
    return f"ic{ic} oc{oc} {ih}x{iw} k{kh}"
  return shape


def summary_line(figures, top=5):
  """One line: the step's total primitive time and its largest primitives with their share."""
  total = figures["ms_per_step"]
  parts = [f"{r['primitive']} {r['kind'].replace('_training', '')} {short_shape(r['shape'])} "
           f"[{r['impl'].split(':')[0]}] {r['ms']:.1f} ms ({100 * r['ms'] / total:.0f}%)"
           for r in figures["rows"][:top]]
  return (f"oneDNN primitives of one {figures['precision']} train step: {total:.1f} ms; "
          + "; ".join(parts))


def _child(model, batch_size, precision, steps, warmup):
  """The child: one training graph of random images, warmed up, then the timed steps."""
  from mnist_estimator.common import cli  # pylint: disable=g-import-not-at-top
  cli.import_tensorflow()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from mnist_estimator.head import model_fn as model_fn_lib  # pylint: disable=g-import-not-at-top
  from mnist_estimator.run import plan  # pylint: disable=g-import-not-at-top
  from mnist_estimator.run.spec import RunSpec  # pylint: disable=g-import-not-at-top
  spec = RunSpec.for_model(model, model_dir=None, precision=precision, batch_size=batch_size)
  params = dict(plan.model_params(spec, (28, 28, 1), 10, 60000), train_precision=precision)
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.train.get_or_create_global_step()
    images = tf.random.uniform([batch_size, 28, 28, 1])
    labels = tf.random.uniform([batch_size], 0, 10, tf.int32)
    train_op = model_fn_lib.model_fn({"x": images}, labels, tf.estimator.ModeKeys.TRAIN,
                                     params).train_op
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      for _ in range(warmup):
        session.run(train_op)
      print(_MARK, flush=True)
      for _ in range(steps):
        session.run(train_op)
  sys.stdout.flush()


if __name__ == "__main__":
  _child(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
