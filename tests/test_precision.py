"""--precision: what auto picks, and bf16 compute giving fp32's predictions within tolerance."""

import json
import subprocess
import sys

import helpers
import pytest

from mnist_estimator import precision
from mnist_estimator import runner


@pytest.mark.parametrize("requested, flags, expected", [
    ("auto", {"avx2", "fma"}, "fp32"),
    ("auto", {"avx2", "avx512f", "avx512_bf16"}, "bf16"),
    ("auto", {"amx_bf16", "amx_tile"}, "bf16"),
    ("fp32", {"avx512_bf16"}, "fp32"),
    ("bf16", {"avx2"}, "bf16"),
])
def test_auto_picks_bf16_only_where_the_cpu_has_it(requested, flags, expected):
  chosen, reason = precision.resolve(requested, flags)
  assert chosen == expected and reason.startswith(expected)
  if requested == "auto":
    assert "auto: this CPU has" in reason
  if requested == "bf16" and "avx512_bf16" not in flags:
    assert "emulated" in reason


def test_this_machine_resolves_from_its_cpu_flags():
  flags = precision.cpu_flags()
  native = bool({"avx512_bf16", "amx_bf16"} & flags)
  assert precision.resolve("auto")[0] == ("bf16" if native else "fp32")


def test_bf16_session_option_is_the_onednn_rewrite():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  config = precision.configure(tf.compat.v1.ConfigProto(), "bf16")
  assert config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == 1
  plain = precision.configure(tf.compat.v1.ConfigProto(), "fp32")
  assert plain.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == 0


# Predicts the same checkpoint under both precisions in one process; oneDNN on, so that the
# bf16 rewrite really converts the graph (on a CPU without native bf16 it runs emulated).
_BOTH = """
import json, sys, numpy as np
from mnist_estimator import datasets, inputs, runner
from mnist_estimator.spec import RunSpec
data = datasets.load("mnist_sample")
out = {}
for p in ("fp32", "bf16"):
  spec = RunSpec.for_model("cnn", model_dir=sys.argv[1], optimizer="adam", precision=p)
  est = runner.build(spec, data, write_record=False)
  fn = inputs.make_input_fn("tfdata", data.x_test[:300], None, 100, train=False)
  out[p] = np.stack([r["probabilities"] for r in est.predict(fn)])
diff = np.abs(out["fp32"] - out["bf16"])
print(json.dumps({"max": float(diff.max()), "agree": float(np.mean(
    out["fp32"].argmax(1) == out["bf16"].argmax(1)))}))
"""


def test_bf16_predictions_match_fp32_within_tolerance(small, tmp_path):
  spec = helpers.small_spec("cnn", tmp_path, steps=40, optimizer="adam", learning_rate=0.001,
                            report=False, precision="fp32")
  runner.run(spec, small)
  proc = subprocess.run([sys.executable, "-c", _BOTH, str(tmp_path)], cwd=helpers.ROOT,
                        env=helpers.cli_env(TF_ENABLE_ONEDNN_OPTS="1"), capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  figures = json.loads(proc.stdout.strip().splitlines()[-1])
  assert 0.0 < figures["max"] < 0.05, figures  # bf16 really ran, and stayed close
  assert figures["agree"] >= 0.97, figures
