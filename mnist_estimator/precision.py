"""--precision: float32 or bfloat16 compute, and what `auto` picks on this CPU (and why)."""

PRECISIONS = ("auto", "fp32", "bf16")
# CPU flags of native bfloat16 arithmetic (AVX512_BF16 dot products, AMX tiles).
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path="/proc/cpuinfo"):
  """The CPU's feature flags (empty where /proc/cpuinfo is not there)."""
  try:
    with open(path) as f:
      for line in f:
        if line.startswith("flags"):
          return set(line.split(":", 1)[1].split())
  except OSError:
    pass
  return set()


def resolve(requested, flags=None):
  """Which precision runs, and a line saying why.

  Args:
    requested: "auto", "fp32" or "bf16".
    flags: the CPU's flags (default: read from /proc/cpuinfo).

  Returns:
    ("fp32" or "bf16", reason).
  """
  flags = cpu_flags() if flags is None else flags
  native = sorted(set(_BF16_FLAGS) & flags)
  if requested == "fp32":
    return "fp32", "fp32 (--precision=fp32)"
  if requested == "bf16":
    how = (f"native on this CPU ({', '.join(native)})" if native else
           "emulated: this CPU has no AVX512_BF16 or AMX-BF16, so it is slower than fp32")
    return "bf16", f"bf16 compute, float32 variables and loss (--precision=bf16; {how})"
  if native:
    return "bf16", (f"bf16 compute, float32 variables and loss (auto: this CPU has "
                    f"{', '.join(native)})")
  return "fp32", "fp32 (auto: this CPU has no AVX512_BF16 or AMX-BF16 for bf16)"


def configure(session_config, precision):
  """Turns on the bf16 rewrite in a tf.compat.v1.ConfigProto for precision "bf16".

  Grappler's oneDNN auto-mixed-precision pass runs matmuls, convolutions and their
  gradients in bfloat16; variables, optimizer updates, softmax and the loss stay
  float32, so checkpoints are the same under either precision. It is a session
  option: a SavedModel stays float32 for every TensorFlow consumer.
  """
  if precision == "bf16":
    from tensorflow.core.protobuf import rewriter_config_pb2  # pylint: disable=g-import-not-at-top
    session_config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
        rewriter_config_pb2.RewriterConfig.ON)
  return session_config

