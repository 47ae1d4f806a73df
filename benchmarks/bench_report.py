"""The benchmark's result as text: machine, variants table, graph, startup, serving, TTA."""

import json
import os


def _num(value, spec):
  return "-" if value is None else format(value, spec)


def _machine_lines(result):
  machine, config = result["machine"], result["config"]
  native = machine["bf16_flags"]
  flags = ", ".join(machine["simd_flags"]) or "none"
  return [
      f"bench {result['model']} on {result['dataset']}: batch {result['batch_size']}, "
      f"{config['steps']} timed steps after {config['warmup_steps']} warmup (bf16 variants "
      f"{result['bf16_steps']}); TF {machine['tensorflow']}, load "
      f"{_num(machine['loadavg'][0], '.2f')}",
      f"CPU: {machine['cpu_model']}, {machine['nproc']} cores; SIMD {flags}; bf16 "
      + (f"native ({', '.join(native)})" if native else "emulated (no AVX512_BF16/AMX-BF16)")
      + f"; oneDNN {'on' if machine['onednn'] else 'off'}",
  ]


def _peak_lines(result):
  flops, peaks = result["flops"], result["matmul_peak"]
  parts = [f"{name} {peak['gflops']:.1f} GFLOP/s" for name, peak in peaks.items()]
  n = next(iter(peaks.values()))["n"]
  return [f"FLOPs per step {flops['per_step'] / 1e9:.3f} G (3 x forward; "
          f"{flops['method'].split(' on ')[0]}); matmul peak ({n}x{n}): {', '.join(parts)}"]


def variant_table(result):
  """One row per variant: rate, ratios to the bound and the faster Keras, % of its peak."""
  lines = [f"{'variant':<14} {'prec':>4} {'steps/s':>8} {'images/s':>9} {'x bound':>8} "
           f"{'x keras':>8} {'GFLOP/s':>8} {'% peak':>7}  rounds"]
  for name, v in result["variants"].items():
    lines.append(f"{name:<14} {v['precision']:>4} {v['steps_per_sec']:>8.2f} "
                 f"{v['images_per_sec']:>9.0f} {_num(v['x_bound'], '.2f'):>8} "
                 f"{_num(v['x_keras'], '.2f'):>8} {v['gflops']:>8.2f} "
                 f"{v['pct_of_peak']:>7.1f}  {'/'.join(f'{r:.2f}' for r in v['rounds'])}")
  lines += [f"{name:<14} skipped: {why}" for name, why in result["skipped"].items()]
  if result.get("keras_best"):
    lines.append(f"x keras: against the faster Keras fit ({result['keras_best']}); "
                 "% peak: of the matmul peak in the variant's precision")
  best = result.get("pytorch_best")
  if best:
    rate = result["variants"][best]["steps_per_sec"]
    ours = [f"{name} {v['steps_per_sec'] / rate:.2f}x" for name, v in result["variants"].items()
            if not name.startswith("pytorch")]
    lines.append(f"x pytorch: {', '.join(ours)} the faster PyTorch ({best})")
  return lines


def _graph_lines(result):
  graph = result.get("graph")
  if not graph:
    return []
  return [f"bf16 train step graph (as run): {graph['bf16_contractions']} bf16 "
          f"conv/matmul ops, {graph['casts']} Cast ops ({graph['casts_to_bf16']} to bf16) "
          f"for {graph['variables']} variables"]


def _primitive_lines(result):
  from benchmarks import bench_primitives  # pylint: disable=g-import-not-at-top
  return [bench_primitives.summary_line(f) for f in result.get("primitives") or []]


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


def format_report(result):
  """The whole result as readable text."""
  lines = (_machine_lines(result) + _peak_lines(result) + variant_table(result)
           + _graph_lines(result) + _primitive_lines(result) + _extra_lines(result))
  lines += [f"note: {note}" for note in result["notes"]]
  return "\n".join(lines)


def write_json(result, path):
  """Writes the result as indented JSON, creating the folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(result, f, indent=2)
