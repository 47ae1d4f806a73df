"""The benchmark machinery runs and reports well-formed figures (tiny runs; no speed asserted)."""

import json
import math
import sys

import pytest

from benchmarks import bench
from benchmarks import bench_lib
from benchmarks import bench_report
from benchmarks import bench_variants
from benchmarks import keras_models
from benchmarks import paths
from mnist_estimator.common import precision
from mnist_estimator.run import plan
from mnist_estimator.common.errors import UsageError

BATCH = 16
TINY = dict(dataset="mnist_sample", batch_size=BATCH, steps=4, warmup_steps=1, startup=False,
            matmul_n=128, serving_calls=(5, 50, 2), primitives=False)
_NOT_IN_RESULT = ("tfdata", "nosummary", "pytorch", "pytorch_cl", "pytorch_bf16")


@pytest.fixture(scope="module")
def result(small):
  """One benchmark of cnn with every variant (keras_default runs the command line in a
  process of its own), the graph figures and serving, on 600 sample images."""
  # tfdata and nosummary differ from cli only in their RunSpec (test_variant_specs); PyTorch
  # needs a Python with torch (test_pytorch_*).
  variants = [name for name in bench.VARIANTS if name not in _NOT_IN_RESULT]
  return bench.run_benchmark(bench.BenchConfig(model="cnn", variants=variants, **TINY), small)


def _params(model, data):
  return plan.params(bench.variant_spec(bench.BenchConfig(model=model, **TINY), None),
                           data)


def test_variant_specs():
  config = bench.BenchConfig(model="cnn", **TINY)
  spec = lambda name: bench_variants.spec_for(config, bench_variants.VARIANTS[name], "/m", 10)
  assert spec("nosummary").save_summary_steps > 10**6 and spec("tfdata").save_summary_steps == 100
  assert spec("bound_bf16").precision == "bf16" and spec("cli").precision == "auto"
  assert spec("tfdata").steps == TINY["warmup_steps"] + 10 and spec("tfdata").report is False
  assert spec("cli").conv_algorithm == "winograd" and spec("cli_direct").conv_algorithm == "direct"
  assert spec("bound_direct").conv_algorithm == "direct"


def test_every_variant_reports_positive_rates(result):
  assert list(result["variants"]) == [name for name in bench.VARIANTS
                                      if name not in _NOT_IN_RESULT]
  assert not result["skipped"]
  for name, figures in result["variants"].items():
    variant = bench_variants.VARIANTS[name]
    assert figures["precision"] == bench_variants.resolved(variant).train
    assert figures["steps"] == bench_variants.steps_for(variant, TINY["steps"])
    assert figures["seconds"] > 0
    assert figures["steps_per_sec"] > 0 and math.isfinite(figures["steps_per_sec"])
    assert figures["images_per_sec"] == pytest.approx(figures["steps_per_sec"] * BATCH)


def test_ratios_and_gflops_follow_from_the_rates(result):
  variants = result["variants"]
  bound = variants["bound"]["steps_per_sec"]
  keras = max(variants[name]["steps_per_sec"] for name in ("keras", "keras_bf16",
                                                           "keras_default"))
  assert variants[result["keras_best"]]["steps_per_sec"] == keras
  per_step, peaks = result["flops"]["per_step"], result["matmul_peak"]
  assert set(peaks) == {"fp32", "bf16"} and peaks["bf16"]["dtype"] == "bfloat16"
  assert all(peak["gflops"] > 0 and peak["n"] == 128 for peak in peaks.values())
  for figures in variants.values():
    rate = figures["steps_per_sec"]
    assert figures["x_bound"] == pytest.approx(rate / bound)
    assert figures["x_keras"] == pytest.approx(rate / keras)
    assert figures["gflops"] == pytest.approx(rate * per_step / 1e9)
    peak = peaks[figures["precision"]]["gflops"]  # each against its own precision's peak
    assert figures["pct_of_peak"] == pytest.approx(100 * figures["gflops"] / peak)
  assert variants["bound"]["x_bound"] == 1.0 and variants[result["keras_best"]]["x_keras"] == 1.0


def test_keras_default_runs_with_tensorflows_own_onednn_choice(result):
  # TF 2.15 turns oneDNN on by itself only where the CPU has VNNI, AVX512_BF16 or AMX.
  own = bool({"avx512_vnni", "avx512_bf16", "amx_tile"} & precision.cpu_flags())
  assert result["variants"]["keras_default"]["onednn"] == own
  assert result["machine"]["onednn"]  # the package's own processes: oneDNN on everywhere


def test_the_bf16_step_graph_casts_each_variable_once(result):
  graph = result["graph"]
  assert graph["variables"] == 8 and graph["bf16_contractions"] >= 4  # 2 conv + 2 dense
  # Each variable once, plus the input, the logits' gradient and the dropout mask.
  assert graph["variables"] < graph["casts_to_bf16"] <= graph["variables"] + 3


def test_cnn_flops_match_the_analytic_count(result):
  conv1 = 28 * 28 * 32 * 5 * 5 * 1 * 2
  conv2 = 14 * 14 * 64 * 5 * 5 * 32 * 2
  dense = 7 * 7 * 64 * 1024 * 2 + 1024 * 10 * 2
  flops = result["flops"]
  assert flops["forward_per_batch"] == pytest.approx(BATCH * (conv1 + conv2 + dense), rel=0.03)
  assert flops["per_step"] == 3 * flops["forward_per_batch"]
  assert "profiler" in flops["method"]


@pytest.mark.parametrize("model, count", [("cnn", 3274634), ("keras_cnn", 121930)])
def test_keras_twins_have_the_estimator_parameter_count(model, count, small):
  params = _params(model, small)
  keras_model = keras_models.KERAS_MODELS[model](params["image_shape"], params["n_classes"],
                                                 params)
  assert keras_model.count_params() == bench_lib.trainable_params(params) == count


def test_benchmark_checks_its_keras_twin(result):
  assert result["variants"]["keras"]["params"] == result["trainable_params"] == 3274634
  assert not result["notes"]


def test_serving_figures(result):
  serving = result["serving"]
  assert serving["batch_1"]["batch"] == 1 and serving["batch_1"]["calls"] == 5
  assert serving["batch_50"]["batch"] == 50
  for figures in (serving["batch_1"], serving["batch_50"]):
    assert figures["images_per_sec"] > 0 and figures["ms_per_call"] > 0


def test_json_and_table(result, tmp_path):
  path = tmp_path / "out" / "cnn.json"
  bench_report.write_json(result, str(path))
  loaded = json.loads(path.read_text())
  assert loaded["variants"].keys() == result["variants"].keys()
  assert loaded["machine"]["nproc"] >= 1 and loaded["machine"]["tensorflow"]
  table = bench_report.format_report(result)
  for name in result["variants"]:
    assert f"\n{name} " in table
  assert f"CPU: {precision.cpu_model()}" in table and "oneDNN on" in table
  assert "serving" in table and "matmul peak" in table and "Cast ops" in table


def test_keras_is_skipped_for_a_model_without_twin(small):
  config = bench.BenchConfig(model="linear", variants=("bound", "keras"),
                             **{**TINY, "steps": 2, "warmup_steps": 1, "serving": False,
                                "graph": False})
  out = bench.run_benchmark(config, small)
  assert "keras" in out["skipped"] and list(out["variants"]) == ["bound"]
  assert out["variants"]["bound"]["x_keras"] is None
  assert "skipped" in bench_report.format_report(out)


def test_pytorch_is_skipped_where_its_python_has_no_torch(small, tmp_path):
  config = bench.BenchConfig(model="cnn", variants=("bound", "pytorch"),
                             torch_python=str(tmp_path / "no-python"),
                             **{**TINY, "steps": 2, "serving": False, "graph": False})
  out = bench.run_benchmark(config, small)
  assert out["skipped"] == {"pytorch": bench_variants.SKIP_REASONS["pytorch"]}
  assert out["pytorch_best"] is None and "x pytorch" not in bench_report.format_report(out)


@pytest.mark.skipif(not paths.has_torch(paths.torch_python()),
                    reason="no Python with torch here (make torch)")
def test_pytorch_trains_the_same_network(small):
  torches = ("pytorch", "pytorch_cl", "pytorch_bf16")
  config = bench.BenchConfig(model="cnn", variants=("bound", *torches),
                             **{**TINY, "steps": 2, "serving": False, "graph": False})
  out = bench.run_benchmark(config, small)
  assert set(out["variants"]) == {"bound", *torches} and not out["skipped"]
  assert all(out["variants"][name]["steps_per_sec"] > 0 for name in out["variants"])
  assert [out["variants"][name]["precision"] for name in torches] == ["fp32", "fp32", "bf16"]
  assert out["pytorch_best"] in torches
  line = next(line for line in bench_report.format_report(out).splitlines()
              if line.startswith("x pytorch: "))
  assert line.startswith("x pytorch: bound ") and line.endswith(f"({out['pytorch_best']})")


def test_unknown_variant_is_refused(small):
  with pytest.raises(UsageError, match="unknown variants"):
    bench.run_benchmark(bench.BenchConfig(variants=("bound", "gpu"), **TINY), small)


def test_startup_stages_and_their_split(tmp_path):
  names = [name for name, _ in bench_lib.startup_stages("cnn", str(tmp_path))]
  assert names == ["python", "import_tensorflow", "import_package", "main_1_step"]
  main_argv = bench_lib.startup_stages("cnn", str(tmp_path))[-1][1]
  assert "--steps=1" in main_argv and "--noreport" in main_argv
  # Cheap stand-ins: the machinery, not TensorFlow's import time, is under test.
  stages = [("a", [sys.executable, "-c", "pass"]), ("b", [sys.executable, "-c", "import json"])]
  out = bench_lib.measure_startup(stages)
  assert sum(out["added"].values()) == pytest.approx(out["total"]["b"])
  with pytest.raises(RuntimeError, match="stage bad failed"):
    bench_lib.measure_startup([("bad", [sys.executable, "-c", "raise SystemExit(3)"])])


def test_tta_spec_is_the_flagfile_on_the_bench_data(tmp_path):
  config = bench.BenchConfig(dataset="mnist_sample", data_dir="/d", intra_op_threads=1)
  spec, flagfile_dataset = bench_lib.tta_spec(config, str(tmp_path))
  assert (spec.model, spec.optimizer, spec.steps) == ("cnn", "adam", 9000)
  assert spec.learning_rate == 0.001 and spec.moving_average_decay == 0.999
  assert flagfile_dataset == "mnist"
  assert (spec.dataset, spec.data_dir, spec.intra_op_threads, spec.report) == (
      "mnist_sample", "/d", 1, False)
  assert spec.model_dir == str(tmp_path) and spec.export_dir is None


def test_time_to_accuracy_stops_at_the_flagfile_steps(small, tmp_path):
  flagfile = tmp_path / "tiny.flags"
  flagfile.write_text("--model=keras_cnn\n--batch_size=16\n--steps=4\n")
  config = bench.BenchConfig(dataset="mnist_sample", tta_flagfile=str(flagfile),
                             tta_eval_every=2, target_accuracy=1.01)
  out = bench_lib.time_to_accuracy(config, small, str(tmp_path))
  assert not out["reached"] and out["steps"] == out["max_steps"] == 4
  assert [point["step"] for point in out["curve"]] == [2, 4]
  assert 0 < out["curve"][0]["train_seconds"] < out["train_seconds"]
  assert 0.0 <= out["accuracy"] <= 1.0 and out["model"] == "keras_cnn"


_VERBOSE = """onednn_verbose,info,cpu,runtime:OpenMP
onednn_verbose,exec,cpu,convolution,jit_bf16:avx512_core_bf16,backward_weights,src_bf16::blocked:acdb::f0,attr-scratchpad:user,alg:convolution_direct,mb100_ic32oc64_ih14oh14kh5sh1dh0ph2_iw14ow14kw5sw1dw0pw2,18.5
onednn_verbose,exec,cpu,convolution,jit_bf16:avx512_core_bf16,backward_weights,src_bf16::blocked:acdb::f0,attr-scratchpad:user,alg:convolution_direct,mb100_ic32oc64_ih14oh14kh5sh1dh0ph2_iw14ow14kw5sw1dw0pw2,17.5
onednn_verbose,exec,cpu,matmul,brg:avx512_core_bf16,undef,src_bf16::blocked:ab::f0,,,100x1024:1024x3136,8
onednn_verbose,create:cache_hit,cpu,matmul,brg:avx512_core_bf16,undef,src_bf16::blocked:ab::f0,,,100x1024:1024x3136,0.01
"""


def test_primitive_lines_are_summed_per_step_and_ranked():
  from benchmarks import bench_primitives  # pylint: disable=g-import-not-at-top
  figures = dict(bench_primitives.parse(_VERBOSE, steps=2), precision="bf16")
  assert figures["ms_per_step"] == pytest.approx(22.0)  # (18.5 + 17.5 + 8) / 2; no creation
  first = figures["rows"][0]
  assert (first["primitive"], first["kind"], first["ms"]) == ("convolution", "backward_weights",
                                                              18.0)
  line = bench_primitives.summary_line(figures)
  assert line.startswith("oneDNN primitives of one bf16 train step: 22.0 ms; convolution "
                         "backward_weights ic32 oc64 14x14 k5 [jit_bf16] 18.0 ms (82%)"), line


def test_primitive_times_of_a_real_step():
  """A child process with ONEDNN_VERBOSE=1: the mlp's matmuls are there, timed."""
  from benchmarks import bench_primitives  # pylint: disable=g-import-not-at-top
  figures = bench_primitives.primitive_times("mlp", 16, "fp32", steps=2, warmup=1)
  kinds = {row["primitive"] for row in figures["rows"]}
  assert kinds & {"matmul", "inner_product"}, figures["rows"]
  assert figures["ms_per_step"] > 0 and all(row["ms"] >= 0 for row in figures["rows"])


def test_the_benchmark_gives_ctrl_c_back(result):
  """The cli variant trains with main's hooks, SIGINT/SIGTERM handlers among them: they were
  left in, so a later in-process run (the SIGTERM test) saw a stale handler and lost its
  signal, and an API user's Ctrl-C set a flag nobody read."""
  import signal  # pylint: disable=g-import-not-at-top
  from mnist_estimator.estimator import interrupts  # pylint: disable=g-import-not-at-top
  assert "cli" in result["variants"]
  for signum in interrupts.SIGNALS:
    assert signal.getsignal(signum) is not interrupts._handler  # pylint: disable=protected-access
