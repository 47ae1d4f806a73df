"""--precision: what auto picks from the CPU's flags, what the header says, the session options."""

import pytest
import tensorflow as tf

from mnist_estimator.common import precision

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B45
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 avx512_vnni
"""


@pytest.mark.parametrize("requested, flags, train, native", [
    ("auto", {"avx2", "fma"}, "fp32", False),
    ("auto", {"avx2", "avx512f", "avx512_bf16"}, "bf16", True),
    ("auto", {"amx_bf16", "amx_tile"}, "bf16", True),
    ("fp32", {"avx512_bf16"}, "fp32", True),
    ("bf16", {"avx2"}, "bf16", False),
])
def test_auto_picks_bf16_only_where_the_cpu_has_it(requested, flags, train, native):
  chosen = precision.resolve(requested, flags)
  assert (chosen.train, chosen.native) == (train, native)
  if requested == "auto":
    assert chosen.reason.startswith("auto: this CPU has")
  if requested == "bf16" and not native:
    assert "emulated" in chosen.reason


def test_the_header_names_every_phase():
  bf16 = precision.resolve("auto", {"avx512_bf16"}).header()
  assert bf16 == ("train step bf16 (float32 master weights, loss and updates); evaluate, "
                  "predict and export fp32 (auto: this CPU has avx512_bf16)")
  fp32 = precision.resolve("fp32", {"avx2"}).header()
  assert fp32 == "train step fp32; evaluate, predict and export fp32 (--precision=fp32)"


def test_cpu_flags_and_model_from_cpuinfo(tmp_path):
  path = tmp_path / "cpuinfo"
  path.write_text(CPUINFO)
  assert precision.cpu_model(str(path)) == "AMD EPYC 9B45"
  assert {"avx2", "avx512_bf16"} <= precision.cpu_flags(str(path))
  assert precision.resolve("auto", precision.cpu_flags(str(path))).bf16
  missing = str(tmp_path / "none")
  assert precision.cpu_flags(missing) == set() and precision.cpu_model(missing) == "unknown CPU"


def test_onednn_is_on_for_the_package():
  # mnist_estimator asks for it before TensorFlow's import (conftest imports the package).
  assert precision.onednn_on()


@pytest.mark.parametrize("train, distributed, remapping", [
    ("bf16", True, 2),    # OFF: a cluster worker refuses bf16 _FusedConv2D (test_bf16)
    ("bf16", False, 0),   # a local session keeps grappler's fusions
    ("fp32", True, 0),
])
def test_session_options(train, distributed, remapping):
  config = precision.configure(tf.compat.v1.ConfigProto(),
                               precision.Precision(train, "test"), distributed)
  assert config.graph_options.rewrite_options.remapping == remapping
  # No grappler precision rewrite: bf16 is in the training graph itself.
  assert config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == 0
