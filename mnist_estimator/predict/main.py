"""Predicts image/data files and folders: predict --saved_model=DIR (or --model_file=F) PATH..."""

import json
import os
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple

from mnist_estimator.common import cli  # pylint: disable=g-import-not-at-top

cli.import_tensorflow()  # first: its start-up lines go to the run log, not the console

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import numpy as np

from mnist_estimator.common import saved_model as saved_model_lib
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import images as images_lib
from mnist_estimator.predict import checks as predict_checks
from mnist_estimator.predict import folders
from mnist_estimator.predict import image_files
from mnist_estimator.predict import model as model_lib
from mnist_estimator.predict import sequences
from mnist_estimator.predict import summary as summary_lib

FLAGS = flags.FLAGS
# A predicted image: (its file, its index in the file, the file is a data file).
Row = Tuple[str, int, bool]


def _shown(cls: int, names: Sequence[str]) -> str:
  """A class as the user knows it: its id, and its name where that says more (a folder's)."""
  return str(cls) if names[cls] == str(cls) else f"{cls} ({names[cls]})"


def _text_lines(rows: Sequence[Row], classes: np.ndarray, probs: np.ndarray,
                labels: Optional[np.ndarray], max_lines: int,
                names: Sequence[str]) -> Iterator[str]:
  """`file[index]  class 7  probability 0.9981` per image (up to max_lines)."""
  for n, (path, index, is_data) in enumerate(rows[:max_lines]):
    label = "" if labels is None else f"  label {_shown(labels[n], names)}"
    name = f"{path}[{index}]" if is_data else path
    yield (f"{name}  class {_shown(classes[n], names)}  probability "
           f"{probs[n, classes[n]]:.4f}{label}")
  if len(rows) > max_lines:
    yield f"... {len(rows) - max_lines} more"


def _json_lines(rows: Sequence[Row], classes: np.ndarray, probs: np.ndarray,
                labels: Optional[np.ndarray], names: Sequence[str]) -> Iterator[str]:
  """One JSON object per image, every image: the machine-readable form."""
  for n, (path, index, _) in enumerate(rows):
    row: Dict[str, Any] = {"file": path, "index": index, "class": int(classes[n]),
           "class_name": names[classes[n]],
           "probability": float(probs[n, classes[n]]),
           "probabilities": [float(p) for p in probs[n]]}
    if labels is not None:
      row.update(label=int(labels[n]), label_name=names[labels[n]])
    yield json.dumps(row)


def _read_inputs(
    model: model_lib.Model, paths: Sequence[str], labels: Optional[str], folder_labels: str,
    invert: str, resize: bool, notes: image_files.Notes,
) -> Tuple[List[image_files.File], Optional[np.ndarray], Optional[str]]:
  """(files, labels or None, where the labels came from): folders walked, files read."""
  if model.input_key == saved_model_lib.SEQUENCES_KEY:  # a weather model: windows of raw rows
    folder = next((path for path in paths if os.path.isdir(path)), None)
    if folder:
      raise UsageError(f"{folder} is a folder; a sequence model predicts JSON, .npy or .npz "
                       "files: pass those")
    files = [image_files.File(path, x, is_data)
             for path, x, is_data in sequences.load_files(paths, model.image_shape)]
    found = None
  else:
    found = folders.expand(paths, model.class_names, folder_labels)
    if found.labelled_by and labels:
      raise UsageError(f"--labels={labels} and the class folders of {found.labelled_by[0]} "
                       "both give labels; drop --labels, or pass --folder_labels=no")
    if found.ignored:
      notes.add(f"ignored {{n}} file{{s}} in the folders that are no images "
                f"({found.ignored_text()})", sum(found.ignored.values()))
    # A colour model's photos are scaled to its size; a digit's size matters, so gray ones
    # of another size are refused unless --resize (or training resized them too).
    files = image_files.load_files(found.paths, model.image_shape, invert,
                                   resize or model.image_shape[2] == 3, model.decoding,
                                   model.border_mean, notes,
                                   images_lib.progress(len(found.paths)))
  if found is not None and found.labels is not None:
    return files, found.labels, f"the class folders of {', '.join(found.labelled_by)}"
  return files, image_files.load_labels(labels) if labels else None, labels


def _show(out: TextIO, rows: Sequence[Row], classes: np.ndarray, probs: np.ndarray,
          truth: Optional[np.ndarray], model: model_lib.Model, as_json: bool,
          max_lines: int) -> Optional[Dict[str, Any]]:
  """Prints a line per image, then (labels known) accuracy, recall and the confusion table.

  Returns:
    The summary (summary.build), or None without labels.
  """
  names = model.class_names
  lines = (_json_lines(rows, classes, probs, truth, names) if as_json
           else _text_lines(rows, classes, probs, truth, max_lines, names))
  for line in lines:
    print(line, file=out)
  if truth is None:
    return None
  report = summary_lib.build(truth, classes, probs, names)
  for line in ([json.dumps(report)] if as_json else summary_lib.text_lines(report)):
    print(line, file=out)
  return report


def predict_files(saved_model: str, paths: Sequence[str], labels: Optional[str] = None,
                  invert: str = "auto", resize: bool = False, batch_size: int = 1000,
                  as_json: bool = False, max_lines: int = 100, out: Optional[TextIO] = None,
                  folder_labels: str = "auto") -> Dict[str, Any]:
  """What the command line does: predicts the files' images and prints the results.

  Args:
    saved_model: as for `load_model`: a SavedModel or export dir, or a .tflite or .onnx file.
    paths: files, as for `load_images` (as are invert and resize), and folders, walked for
      image files (folders.expand); for a sequence model (weather) JSON lists of rows or
      .npy/.npz arrays, as for `sequences.load_files`.
    labels: an optional `load_labels` file with the labels of all the images, in order.
    batch_size: images per model call.
    as_json: print every image as a JSON line instead of at most max_lines text lines.
    out: the stream to print to (default sys.stdout).
    folder_labels: whether a folder's subfolders are classes (labels): auto, yes or no.

  Returns:
    {"classes", "probabilities", "accuracy" (None without labels), "count", "labels",
    "report" (summary.build: per-class recall, confusion matrix; None without labels)}.

  Raises:
    UsageError: no files, a bad SavedModel, file, folder or labels file.
  """
  out = out or sys.stdout
  if not paths:
    raise UsageError("no files to predict; pass image or data files or folders after the "
                     "flags, e.g. --saved_model=DIR a.png t10k-images-idx3-ubyte.gz digits/")
  model = model_lib.load_model(saved_model)
  notes = image_files.Notes()
  files, truth, source = _read_inputs(model, paths, labels, folder_labels, invert, resize,
                                      notes)
  count = sum(len(f.images) for f in files)
  if truth is not None and len(truth) != count:
    raise UsageError(f"{labels} holds {len(truth)} labels but the files hold {count} images; "
                     "pass the labels of exactly these files")
  predict_checks.check_labels(truth, model.n_classes, source)
  predict_checks.check_blank(files)
  for line in notes.lines():
    print(line, file=sys.stderr)
  classes, probs = _predict(model, files, batch_size)
  rows = [(f.path, i, f.is_data) for f in files for i in range(len(f.images))]
  report = _show(out, rows, classes, probs, truth, model, as_json, max_lines)
  return {"classes": classes, "probabilities": probs, "count": count, "labels": truth,
          "accuracy": report and report["accuracy"], "report": report}


def _predict(model: model_lib.Model, files: Sequence[image_files.File],
             batch_size: int) -> Tuple[np.ndarray, np.ndarray]:
  """(classes, probabilities) of every file's images, in order.

  An image file whose pixels are what decoding it gives goes to the model's image_bytes
  signature as its bytes, which the graph decodes with training's ops (what TF Serving's
  users get); the rest (data files, inverted images, models without it) as pixels.
  """
  by_bytes = [model.takes_bytes and f.encoded is not None for f in files]
  classes = np.zeros([sum(len(f.images) for f in files)], np.int32)
  probs = np.zeros([len(classes), model.n_classes], np.float32)
  starts = np.cumsum([0] + [len(f.images) for f in files])
  for wanted in (True, False):
    chosen = [i for i, b in enumerate(by_bytes) if b == wanted]
    if not chosen:
      continue
    if wanted:
      got = model_lib.predict_encoded(model, [files[i].encoded for i in chosen], batch_size)
    else:
      got = model_lib.predict(model, np.concatenate([files[i].images for i in chosen]),
                              batch_size)
    rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in chosen])
    classes[rows], probs[rows] = got
  return classes, probs


def define_flags() -> None:
  """Defines this entry point's flags; only `run` calls it, so importing defines none."""
  flags.DEFINE_string("saved_model", None, "SavedModel dir, or the --export_dir holding "
                      "timestamped exports (the newest is used). This or --model_file.")
  flags.DEFINE_string("model_file", None, "A .tflite or .onnx file of --export_format "
                      "(run by TFLite or onnxruntime, not TF's SavedModel loader).")
  flags.DEFINE_bool("json", False, "Print one JSON object per image (file, index, class, "
                    "probability, probabilities[, label]) and, with labels, a final "
                    '{"accuracy", "count", "per_class", "confusion_matrix", ...} line.')
  flags.DEFINE_enum("invert", "auto", image_files.INVERT_CHOICES,
                    "auto: invert an image file whose border is clearly the other way than "
                    "the training images' (MNIST is a white digit on black: dark ink on paper "
                    "is inverted), announced; not where the training images' border is not "
                    "known or mixed, never a data file (IDX, .npz, .npy). yes/no: invert "
                    "every / no image.")
  flags.DEFINE_bool("resize", False, "Scale images of another size to the model's instead of "
                    "refusing them (MNIST digits fill the middle 20x20 of 28x28: pad yours); "
                    "a model trained with --image_size resizes without it.")
  flags.DEFINE_string("labels", None, "IDX labels file, .npy, or .npz (y_test) with the labels "
                      "of all the images; then also print the accuracy, each class's recall "
                      "and the confusion matrix. A folder's class folders give them too.")
  flags.DEFINE_enum("folder_labels", "auto", folders.LABELS_CHOICES,
                    "A FOLDER argument is walked for images (hidden files skipped, other "
                    "files ignored). auto: if a subfolder is named as a class of the model, "
                    "every subfolder must be one and gives its images' labels (another is "
                    "refused); else no labels. yes: the subfolders must be classes. no: "
                    "folder names are no labels.")
  flags.DEFINE_integer("batch_size", 1000, "Images per model call.", lower_bound=1)
  flags.DEFINE_integer("max_lines", 100, "At most this many per-image text lines.",
                       lower_bound=0)
  cli.define_verbose()


def main(argv: Sequence[str]) -> None:
  if not FLAGS.verbose:
    logging.set_verbosity(logging.WARNING)  # TF's INFO notes on loading a SavedModel are noise
  with cli.one_line_errors(FLAGS.verbose):
    if bool(FLAGS.saved_model) == bool(FLAGS.model_file):
      raise UsageError("pass one of --saved_model=DIR (a SavedModel or an --export_dir) and "
                       "--model_file=FILE (a .tflite or .onnx)")
    if FLAGS.model_file and not os.path.isfile(FLAGS.model_file):
      raise UsageError(f"--model_file={FLAGS.model_file} is not a file; pass a .tflite or "
                       ".onnx from --export_format (a SavedModel folder goes to --saved_model)")
    predict_files(FLAGS.saved_model or FLAGS.model_file, argv[1:], FLAGS.labels, FLAGS.invert,
                  FLAGS.resize, FLAGS.batch_size, FLAGS.json, FLAGS.max_lines,
                  folder_labels=FLAGS.folder_labels)


def run() -> None:
  """Entry point: `python -m mnist_estimator.predict --saved_model=DIR FILE...`."""
  define_flags()
  app.run(main, flags_parser=cli.flags_parser(
      lambda: cli.module_help(__doc__ or "", sys.modules[__name__], cli)))


if __name__ == "__main__":
  run()
