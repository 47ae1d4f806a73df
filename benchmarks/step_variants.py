"""The tutorial cnn's train step written other ways: `python -m benchmarks.step_variants`.

Candidates for a faster steady state (issue #31, item 3), each in a fresh process on one
constant batch of 100 (no input work: the compute bound), interleaved, medians of rounds:
  base  - Conv2D with TensorFlow's gradients (oneDNN: jit backward_weights, brg backward_data)
  fdx   - conv2's input gradient as a forward Conv2D of dy with the flipped kernel
  fdw   - also its kernel gradient as a forward Conv2D (the batch as channels)
  pw    - conv2's kernel gradient as image patches x matmul
  chunksK - the same in K slices of the batch, each slice's patches small enough to stay in cache
  nchw  - the network in channels-first layout (NCHW) instead of TensorFlow's NHWC
  winoM - conv2 by Winograd's F(MxM, 5x5) in matmuls (mnist_estimator/models/winograd.py), M in 2..4
  loopK - K train steps per session.run (a tf.while_loop, as Keras' steps_per_execution)
  xla   - the session's global XLA JIT
  t1    - one inter-op thread (TensorFlow picks the intra-op threads)
Add +bf16 to a name for bf16 compute on float32 weights (native bf16 CPUs only).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from mnist_estimator.models import winograd

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_BATCH = 100


def _conv_custom(x, w, dx_forward, dw_forward):
  """SAME stride-1 Conv2D whose gradients are computed as asked (see the module doc)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  kh, kw, ci, co = w.shape.as_list()

  @tf.custom_gradient
  def conv(x, w):
    def grad(dy):
      if dx_forward:  # the input gradient is the forward conv of dy with the flipped kernel
        dx = tf.nn.conv2d(dy, tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]), 1, "SAME")
      else:
        dx = tf.compat.v1.nn.conv2d_backprop_input(tf.shape(x), w, dy, [1, 1, 1, 1], "SAME")
      if dw_forward == "conv":  # correlate x with dy: a conv over the batch as channels
        xp = tf.pad(x, [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [0, 0]])
        dw = tf.nn.conv2d(tf.transpose(xp, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1,
                          "VALID")
        dw = tf.transpose(dw, [1, 2, 0, 3])
      elif dw_forward and dw_forward.startswith("chunks"):  # patches x matmul, a slice at a time
        parts, slices = [], int(dw_forward[len("chunks"):])
        for xs, dys in zip(tf.split(x, slices), tf.split(dy, slices)):
          p = tf.image.extract_patches(xs, [1, kh, kw, 1], [1] * 4, [1] * 4, "SAME")
          parts.append(tf.matmul(tf.reshape(p, [-1, kh * kw * ci]), tf.reshape(dys, [-1, co]),
                                 transpose_a=True))
        dw = tf.reshape(tf.add_n(parts), [kh, kw, ci, co])
      elif dw_forward == "patches":
        p = tf.image.extract_patches(x, [1, kh, kw, 1], [1] * 4, [1] * 4, "SAME")
        dw = tf.matmul(tf.reshape(p, [-1, kh * kw * ci]), tf.reshape(dy, [-1, co]),
                       transpose_a=True)
        dw = tf.reshape(dw, [kh, kw, ci, co])
      else:
        dw = tf.compat.v1.nn.conv2d_backprop_filter(x, tf.shape(w), dy, [1, 1, 1, 1], "SAME")
      return dx, dw
    return tf.nn.conv2d(x, w, 1, "SAME"), grad
  return conv(x, w)


def _loss(x, y, opts):
  """The tutorial cnn (conv 32 5x5, pool, conv 64 5x5, pool, dense 1024, dropout 0.4)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  v1 = tf.compat.v1
  dtype = tf.bfloat16 if "bf16" in opts else tf.float32
  var = lambda name, shape: tf.cast(v1.get_variable(
      name, shape, tf.float32, v1.glorot_uniform_initializer()), dtype)
  if "nchw" in opts:
    return _loss_nchw(tf.cast(x, dtype), y, var)
  h = tf.nn.relu(tf.nn.conv2d(tf.cast(x, dtype), var("w1", [5, 5, 1, 32]), 1, "SAME")
                 + var("b1", [32]))
  h = tf.nn.max_pool2d(h, 2, 2, "VALID")
  w2 = var("w2", [5, 5, 32, 64])
  chunks = next((o for o in opts if o.startswith("chunks")), "")
  dw = "conv" if "fdw" in opts else "patches" if "pw" in opts else chunks
  wino = next((int(o[4:]) for o in opts if o.startswith("wino")), 0)
  if wino:
    h = winograd.conv5x5(h, w2, wino)
  elif opts & {"fdx", "fdw"} or dw:
    h = _conv_custom(h, w2, dx_forward=bool(opts & {"fdx", "fdw"}), dw_forward=dw)
  else:
    h = tf.nn.conv2d(h, w2, 1, "SAME")
  h = tf.nn.max_pool2d(tf.nn.relu(h + var("b2", [64])), 2, 2, "VALID")
  return _dense_loss(h, y, var)


def _loss_nchw(x, y, var):
  """The same network in channels-first layout."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  f = "NCHW"
  h = tf.transpose(x, [0, 3, 1, 2])
  for i, (ci, co) in enumerate(((1, 32), (32, 64)), 1):
    h = tf.nn.conv2d(h, var(f"w{i}", [5, 5, ci, co]), 1, "SAME", data_format=f)
    h = tf.nn.relu(tf.nn.bias_add(h, var(f"b{i}", [co]), data_format=f))
    h = tf.nn.max_pool2d(h, 2, 2, "VALID", data_format=f)
  return _dense_loss(h, y, var)


def _dense_loss(h, y, var):
  """Dense 1024, dropout 0.4, logits and the mean cross-entropy."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  h = tf.nn.relu(tf.matmul(tf.reshape(h, [-1, 3136]), var("w3", [3136, 1024]))
                 + var("b3", [1024]))
  logits = tf.matmul(tf.nn.dropout(h, rate=0.4), var("w4", [1024, 10])) + var("b4", [10])
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=y, logits=tf.cast(logits, tf.float32)))


def child(variant, steps):
  """Builds and times one variant; prints its steps/s."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  v1 = tf.compat.v1
  v1.disable_eager_execution()
  opts = set(variant.split("+"))
  per_run = max([int(o[4:]) for o in opts if o.startswith("loop")] or [1])
  rng = np.random.RandomState(0)
  x = tf.constant(rng.rand(_BATCH, 28, 28, 1).astype(np.float32))
  y = tf.constant(rng.randint(0, 10, _BATCH).astype(np.int32))
  step = v1.train.get_or_create_global_step()
  optimizer = v1.train.AdamOptimizer(1e-3)
  with v1.variable_scope("cnn", reuse=v1.AUTO_REUSE):
    train = optimizer.minimize(_loss(x, y, opts), global_step=step)  # makes the slots
    if per_run > 1:
      def body(i):
        with tf.control_dependencies([optimizer.minimize(_loss(x, y, opts), global_step=step)]):
          return i + 1
      train = tf.while_loop(lambda i: i < per_run, body, [tf.constant(0)])
  config = v1.ConfigProto()
  if "xla" in opts:
    config.graph_options.optimizer_options.global_jit_level = v1.OptimizerOptions.ON_1
  if "t1" in opts:
    config.inter_op_parallelism_threads = 1
  with v1.Session(config=config) as session:
    session.run(v1.global_variables_initializer())
    for _ in range(max(3, 30 // per_run)):
      session.run(train)
    runs = max(1, steps // per_run)
    start = time.perf_counter()
    for _ in range(runs):
      session.run(train)
    print(f"{runs * per_run / (time.perf_counter() - start):.3f}")


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--variants", default="base,fdx,fdw,pw,chunks10,nchw,loop10,xla,t1")
  p.add_argument("--steps", type=int, default=100)
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--child", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.child:
    child(args.child, args.steps)
    return
  variants = args.variants.split(",")
  rates = {v: [] for v in variants}
  for n in range(args.rounds):
    for v in variants[n % len(variants):] + variants[:n % len(variants)]:  # rotated
      out = subprocess.run([sys.executable, "-m", "benchmarks.step_variants", f"--child={v}",
                            f"--steps={args.steps}"], capture_output=True, text=True, check=True)
      rates[v].append(float(out.stdout.split()[-1]))
  base = statistics.median(rates[variants[0]])
  print(f"{'variant':<12} steps/s  x {variants[0]:<6} rounds")
  for v in variants:
    med = statistics.median(rates[v])
    print(f"{v:<12} {med:7.2f}  {med / base:7.2f}  " + "/".join(f"{r:.2f}" for r in rates[v]))


if __name__ == "__main__":
  main()
