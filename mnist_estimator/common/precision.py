"""--precision: the training step's compute dtype (bf16 or fp32); evaluation is always fp32."""

import dataclasses
import os
from typing import AbstractSet, Any, Optional, Set

PRECISIONS = ("auto", "fp32", "bf16")
# CPU flags of native bfloat16 arithmetic (AVX512_BF16 dot products, AMX tiles).
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
# What every phase but the training step runs in, whatever --precision says: the accuracy
# printed after training is then the accuracy of the exported (float32) SavedModel.
EVAL_LINE = "evaluate, predict and export fp32"


@dataclasses.dataclass(frozen=True)
class Precision:
  """A resolved --precision.

  Attributes:
    train: "fp32" or "bf16": what the training step's matmuls and convolutions use.
    reason: why (the flag, or what auto found on this CPU).
    native: the CPU has bf16 arithmetic (AVX512_BF16 or AMX-BF16).
  """
  train: str
  reason: str
  native: bool = False

  @property
  def bf16(self) -> bool:
    return self.train == "bf16"

  def header(self) -> str:
    """The header's precision line: each phase and why."""
    what = ("train step bf16 (float32 master weights, loss and updates)" if self.bf16
            else "train step fp32")
    return f"{what}; {EVAL_LINE} ({self.reason})"


def cpu_flags(path: str = "/proc/cpuinfo") -> Set[str]:
  """The CPU's feature flags (empty where /proc/cpuinfo is not there)."""
  return set(_cpuinfo_field("flags", path).split())


def cpu_model(path: str = "/proc/cpuinfo") -> str:
  """The CPU's model name, e.g. "AMD EPYC 9B45" ("unknown CPU" if not readable)."""
  return _cpuinfo_field("model name", path) or "unknown CPU"


def _cpuinfo_field(name: str, path: str) -> str:
  try:
    with open(path) as f:
      for line in f:
        if line.split(":", 1)[0].strip() == name:
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return ""


def resolve(requested: str, flags: Optional[AbstractSet[str]] = None) -> Precision:
  """Which precision the training step uses, and why.

  Args:
    requested: "auto", "fp32" or "bf16".
    flags: the CPU's flags (default: read from /proc/cpuinfo).

  Returns:
    A Precision.
  """
  flags = cpu_flags() if flags is None else flags
  native = sorted(set(_BF16_FLAGS) & flags)
  has = ", ".join(native)
  if requested == "fp32":
    return Precision("fp32", "--precision=fp32", bool(native))
  if requested == "bf16":
    how = (f"native: {has}" if native else
           "emulated: this CPU has no AVX512_BF16 or AMX-BF16, so it is slower than fp32")
    return Precision("bf16", f"--precision=bf16, {how}", bool(native))
  if native:
    return Precision("bf16", f"auto: this CPU has {has}", True)
  return Precision("fp32", "auto: this CPU has no AVX512_BF16 or AMX-BF16 for bf16")


def onednn_on() -> bool:
  """Whether TensorFlow runs oneDNN's kernels (set by TF_ENABLE_ONEDNN_OPTS at its import)."""
  from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
  return bool(_pywrap_util_port.IsMklEnabled())


def enable_onednn() -> None:
  """Asks for oneDNN's kernels before TensorFlow is imported, unless the user chose.

  TensorFlow 2.15 turns them on by itself only on CPUs with AVX512-VNNI, AVX512_BF16
  or AMX. On an AVX2-only EPYC they trained the cnn 1.75x faster than Eigen's (bench
  bound, 5.5 -> 9.9 steps/s, two interleaved rounds), so every CPU gets them, and the
  two kinds of machine run the same kernels and graph rewrites.
  """
  os.environ.setdefault(ONEDNN_ENV, "1")


def configure(session_config: Any, precision: Precision, distributed: bool) -> Any:
  """Session options for a resolved precision.

  Args:
    session_config: a tf.compat.v1.ConfigProto, changed in place.
    precision: a Precision.
    distributed: the session runs through a cluster's master (chief or worker with a ps).

  Returns:
    session_config.
  """
  if precision.bf16 and distributed:
    # Grappler's remapper fuses a bf16 Conv2D+BiasAdd+Relu into `_FusedConv2D`, an op
    # whose definition allows bf16 only once oneDNN's layout pass has renamed it to
    # `_MklNativeFusedConv2D`. A local session runs that pass before anything checks the
    # op; a cluster worker validates each graph it is sent against the op registry first
    # (GraphMgr::InitItem), and refuses "bfloat16 not in the list of allowed values". So
    # a cluster task does not fuse; the convolutions themselves still run in bf16.
    from tensorflow.core.protobuf import rewriter_config_pb2  # pylint: disable=g-import-not-at-top
    session_config.graph_options.rewrite_options.remapping = (
        rewriter_config_pb2.RewriterConfig.OFF)
  return session_config
