"""Each export format against its SavedModel, for the cnn and the mlp: the README's table.

python -m benchmarks.bench_portable --data_dir=../shared/data/mnist  (trains both)
python -m benchmarks.bench_portable --data_dir=../shared/data/mnist --model_dirs=cnn=DIR,mlp=DIR
python -m benchmarks.bench_portable --quick  (a smoke run, the sample)

Trains each model (--steps of Adam at 0.001 on full MNIST; a --model_dirs entry trained by a run
of its own is exported as its flags.txt says, without training), exports it in every format
(saved_model, tflite, tflite_int8, onnx), then measures all of them, both models' files
interleaved round by round so that the machine's load falls on every format alike: size, test
accuracy, top-1 agreement and max abs probability difference against the SavedModel, median
ms/image at batch 1 and images/s at batch 256, every runtime on --threads threads. Prints one
Markdown table per model and what int8 buys (size, speed) and costs (accuracy).
"""

import argparse
import contextlib
import io
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from mnist_estimator.common import cli  # pylint: disable=g-import-not-at-top

cli.import_tensorflow()
cli.quiet_tensorflow()

from absl import logging  # pylint: disable=g-import-not-at-top

from mnist_estimator import flagdefs  # pylint: disable=g-import-not-at-top
from mnist_estimator import runtime  # pylint: disable=g-import-not-at-top
from mnist_estimator.data import datasets  # pylint: disable=g-import-not-at-top
from mnist_estimator.portable import FORMATS  # pylint: disable=g-import-not-at-top
from mnist_estimator.portable import verify  # pylint: disable=g-import-not-at-top
from mnist_estimator.run import runner  # pylint: disable=g-import-not-at-top
from mnist_estimator.run.spec import RunSpec  # pylint: disable=g-import-not-at-top


def export_model(model, model_dir, data, steps, seed=0):
  """Exports every format of model_dir: trained by a run of its own, else `steps` of Adam here."""
  export_dir = os.path.join(model_dir, "portable_export")
  flags_file = os.path.join(model_dir, "flags.txt")
  reused = os.path.isfile(flags_file)
  if reused:  # as it was trained (its optimizer and shape are recorded)
    spec = flagdefs.spec_from_flagfile(flags_file, [
        "--mode=export", f"--export_dir={export_dir}", f"--export_format={','.join(FORMATS)}",
        "--noverify_export", "--noreport"])
  else:
    spec = RunSpec.for_model(
        model, model_dir=model_dir, dataset=data.name, steps=steps, optimizer="adam",
        learning_rate=0.001, seed=seed, report=False, precision="fp32", export_dir=export_dir,
        export_format=tuple(FORMATS), verify_export=False)
  with contextlib.redirect_stdout(io.StringIO()):  # the run's own lines; the table is ours
    files = runner.run(spec, data)["exports"]
  how = (f"{model_dir}, as its flags.txt trained it" if reused else
         f"{steps} steps of Adam at 0.001 in {model_dir}")
  return files, how


def measure(files_by_model, data, rounds, threads):
  """{model: [Row]}: every file checked, all of them timed in one interleaved run."""
  inputs = verify.serving_inputs(data.x_test, data.image_shape, data.standardize)
  loaded = {(model, fmt): runtime.load_classifier(path, threads)
            for model, files in files_by_model.items() for fmt, path in files.items()}
  rows = {}
  for model, files in files_by_model.items():
    reference = loaded[model, "saved_model"]
    ref_out = verify.predict_all(reference, inputs)
    rows[model] = [verify.compare(reference, loaded[model, fmt], inputs, data.y_test, ref_out)
                   for fmt in files]
  speeds = verify.time_runners(loaded, inputs, rounds)
  for model, model_rows in rows.items():
    for row in model_rows:
      row.ms_per_image, row.images_per_sec = speeds[model, row.format]
  for runner_ in loaded.values():
    runner_.close()
  return rows


def summary(model, rows):
  """What int8 buys and costs, against the SavedModel and the float TFLite."""
  by = {row.format: row for row in rows}
  ref, flt, int8 = by["saved_model"], by["tflite"], by["tflite_int8"]
  return (f"{model}: int8 is {flt.bytes / int8.bytes:.1f}x smaller than float TFLite "
          f"({verify.size_text(flt.bytes)} -> {verify.size_text(int8.bytes)}); at batch 1 "
          f"{flt.ms_per_image:.3f} -> {int8.ms_per_image:.3f} ms/image "
          f"({flt.ms_per_image / int8.ms_per_image:.2f}x as fast), at batch {verify.BATCH} "
          f"{int8.images_per_sec / flt.images_per_sec:.2f}x the images/s; accuracy "
          f"{100 * (int8.accuracy - ref.accuracy):+.2f} points against the SavedModel "
          f"({int8.agreement:.2%} top-1 agreement)")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", help="MNIST's IDX files (e.g. ../shared/data/mnist)")
  parser.add_argument("--models", default="cnn,mlp")
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--model_dirs", default="", help="model=DIR,...: train/reuse there")
  parser.add_argument("--rounds", type=int, default=10)
  parser.add_argument("--threads", type=int, default=1, help="threads of every runtime")
  parser.add_argument("--quick", action="store_true",
                      help="smoke run: 20 steps on the bundled sample, 1 round")
  args = parser.parse_args()
  logging.set_verbosity(logging.WARNING)
  if args.quick:
    args.steps, args.rounds = 20, 1
    data = datasets.load("mnist_sample")
  elif not args.data_dir:
    parser.error("--data_dir=DIR (MNIST's IDX files) or --quick")
  else:
    data = datasets.load("mnist", args.data_dir)
  dirs = dict(item.split("=", 1) for item in args.model_dirs.split(",") if item)
  root = tempfile.mkdtemp(prefix="bench_portable_")
  exported = {model: export_model(model, dirs.get(model, os.path.join(root, model)), data,
                                  args.steps)
              for model in args.models.split(",")}
  rows = measure({model: files for model, (files, _) in exported.items()}, data, args.rounds,
                 args.threads)
  print(f"{data.name}: {len(data.y_test)} test images; {args.rounds} interleaved rounds; "
        f"{args.threads} thread(s) per runtime")
  for model, model_rows in rows.items():
    print(f"\n{model} ({exported[model][1]})\n{verify.format_table(model_rows)}")
  print()
  for model, model_rows in rows.items():
    print(summary(model, model_rows))


if __name__ == "__main__":
  main()
