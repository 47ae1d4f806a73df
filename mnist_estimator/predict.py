"""Predicts digits in image/data files with a SavedModel: predict --saved_model=DIR FILE..."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING: not for users

from mnist_estimator import runlog  # pylint: disable=g-import-not-at-top

runlog.import_tensorflow()  # its start-up lines (CUDA factories, ...) stay off the console

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from mnist_estimator import cli
from mnist_estimator import export as export_lib
from mnist_estimator import flagdefs
from mnist_estimator import image_files
from mnist_estimator import sequences
from mnist_estimator import predict_checks
from mnist_estimator.errors import UsageError

FLAGS = flags.FLAGS


class Model:
  """A loaded SavedModel's serving_default signature and the image shape it takes.

  The export is a TF1 graph, so it runs in a tf.compat.v1 Session through one
  callable: 3-5x less time per call at batch 1 than the TF2 signature function.
  """

  def __init__(self, path, session, call, input_key, input_shape, n_classes):
    self.path = path
    self.input_key = input_key  # "images", or export.SEQUENCES_KEY for a sequence model
    self._session = session  # holds the graph and its restored variables
    self._call = call
    self.input_shape = tuple(input_shape)  # e.g. (None, 28, 28)
    self.n_classes = n_classes
    h, w = input_shape[1:3]
    self.image_shape = (h, w, input_shape[3] if len(input_shape) == 4 else 1)

  def __call__(self, batch):
    """Runs the signature on float32 [n, *input_shape[1:]]; returns (classes, probabilities)."""
    classes, probabilities = self._call(np.asarray(batch, np.float32))
    return classes, probabilities


def _shape(tensor_info):
  return [None if d.size < 0 else d.size for d in tensor_info.tensor_shape.dim]


def load_model(saved_model_dir):
  """Loads the serving_default signature of a SavedModel into its own session.

  Args:
    saved_model_dir: a SavedModel dir, or an export base dir (its newest timestamped export).

  Returns:
    A `Model` for `predict(model, images)`; `model.image_shape` is its (H, W, C).

  Raises:
    UsageError: no SavedModel there, it does not load, or it lacks the expected signature.
  """
  path = export_lib.newest_export(saved_model_dir)
  session = tf.compat.v1.Session(graph=tf.Graph())
  try:
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
  except (OSError, ValueError, RuntimeError, tf.errors.OpError) as e:
    reason = (str(e).strip().splitlines() or [""])[0]
    raise UsageError(f"cannot load the SavedModel in {path} ({type(e).__name__}: {reason}); "
                     "re-export it with --export_dir") from e
  signature = meta.signature_def.get("serving_default")
  if signature is None or not {"classes", "probabilities"} <= set(signature.outputs):
    raise UsageError(f"{path} has no serving_default signature returning classes and "
                     "probabilities; export it with mnist_estimator (--export_dir)")
  inputs = signature.inputs
  key = "images" if "images" in inputs else next(iter(inputs)) if len(inputs) == 1 else None
  shape = _shape(inputs[key]) if key else []
  if len(shape) not in (3, 4) or None in shape[1:]:
    raise UsageError(f"{path}'s serving_default does not take fixed-size images [N, H, W(, C)] "
                     f"(inputs: {list(inputs)}); export it with mnist_estimator (--export_dir)")
  outputs = signature.outputs
  call = session.make_callable([outputs["classes"].name, outputs["probabilities"].name],
                               [inputs[key].name])
  return Model(path, session, call, key, shape, _shape(outputs["probabilities"])[-1])


def predict(model, images, batch_size=1000):
  """Predicts images with a loaded model, batch_size images per call.

  Args:
    model: from `load_model`.
    images: float32 0..1 (or uint8 0..255) [N, H, W, C], or [N, H, W] for one channel.
    batch_size: images per signature call, which bounds memory.

  Returns:
    (classes int [N], probabilities float32 [N, n_classes]).

  Raises:
    UsageError: the images are not of the model's shape.
  """
  images = np.asarray(images)
  if images.dtype == np.uint8:
    images = images.astype(np.float32) / 255.0  # as the training input pipeline scales
  if images.ndim == 3 and model.image_shape[2] == 1:
    images = images[..., np.newaxis]
  if images.ndim != 4 or tuple(images.shape[1:]) != model.image_shape:
    raise UsageError(f"images of shape {list(images.shape)} do not fit the model, which takes "
                     f"[N, {', '.join(map(str, model.image_shape))}]; use image_files.load_images")
  batch = images.reshape(-1, *model.input_shape[1:]).astype(np.float32, copy=False)
  if not len(batch):
    return np.zeros([0], np.int32), np.zeros([0, model.n_classes], np.float32)
  parts = [model(batch[i:i + batch_size]) for i in range(0, len(batch), batch_size)]
  return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _text_lines(rows, classes, probs, labels, max_lines):
  """`file[index]  class 7  probability 0.9981` per image (up to max_lines)."""
  for n, (path, index, is_data) in enumerate(rows[:max_lines]):
    label = "" if labels is None else f"  label {labels[n]}"
    name = f"{path}[{index}]" if is_data else path
    yield f"{name}  class {classes[n]}  probability {probs[n, classes[n]]:.4f}{label}"
  if len(rows) > max_lines:
    yield f"... {len(rows) - max_lines} more"


def _json_lines(rows, classes, probs, labels):
  """One JSON object per image, every image: the machine-readable form."""
  for n, (path, index, _) in enumerate(rows):
    row = {"file": path, "index": index, "class": int(classes[n]),
           "probability": float(probs[n, classes[n]]),
           "probabilities": [float(p) for p in probs[n]]}
    if labels is not None:
      row["label"] = int(labels[n])
    yield json.dumps(row)


def predict_files(saved_model, paths, labels=None, invert="auto", resize=False,
                  batch_size=1000, as_json=False, max_lines=100, out=None):
  """What the command line does: predicts the files' images and prints the results.

  Args:
    saved_model: as for `load_model`.
    paths: the files, as for `load_images` (as are invert and resize); for a sequence model
      (weather) JSON lists of rows or .npy/.npz arrays, as for `sequences.load_files`.
    labels: an optional `load_labels` file with the labels of all the images, in order.
    batch_size: images per model call.
    as_json: print every image as a JSON line instead of at most max_lines text lines.
    out: the stream to print to (default sys.stdout).

  Returns:
    {"classes", "probabilities", "accuracy" (None without labels), "count"}.

  Raises:
    UsageError: no files, or a bad SavedModel, file or labels file.
  """
  out = out or sys.stdout
  if not paths:
    raise UsageError("no files to predict; pass image or data files after the flags, e.g. "
                     "--saved_model=DIR a.png t10k-images-idx3-ubyte.gz")
  model = load_model(saved_model)
  if model.input_key == export_lib.SEQUENCES_KEY:  # a weather model: windows of raw rows
    files = sequences.load_files(paths, model.image_shape)
  else:
    files = image_files.load_files(paths, model.image_shape, invert, resize)
  truth = image_files.load_labels(labels) if labels else None
  count = sum(len(images) for _, images, _ in files)
  if truth is not None and len(truth) != count:
    raise UsageError(f"{labels} holds {len(truth)} labels but the files hold {count} images; "
                     "pass the labels of exactly these files")
  predict_checks.check_labels(truth, model.n_classes, labels)
  predict_checks.check_blank(files)
  classes, probs = predict(model, np.concatenate([x for _, x, _ in files]), batch_size)
  rows = [(path, i, is_data) for path, x, is_data in files for i in range(len(x))]
  lines = (_json_lines(rows, classes, probs, truth) if as_json
           else _text_lines(rows, classes, probs, truth, max_lines))
  for line in lines:
    print(line, file=out)
  accuracy = float(np.mean(classes == truth)) if truth is not None and count else None
  if accuracy is not None:
    print(json.dumps({"accuracy": accuracy, "count": count}) if as_json
          else f"accuracy {accuracy:.4f} on {count} images", file=out)
  return {"classes": classes, "probabilities": probs, "accuracy": accuracy, "count": count}


def define_flags():
  """Defines this entry point's flags; only `run` calls it, so importing defines none."""
  flags.DEFINE_string("saved_model", None, "SavedModel dir, or the --export_dir holding "
                      "timestamped exports (the newest is used). Required.")
  flags.DEFINE_bool("json", False, "Print one JSON object per image (file, index, class, "
                    "probability, probabilities[, label]) and, with --labels, a final "
                    '{"accuracy", "count"} line.')
  flags.DEFINE_enum("invert", "auto", image_files.INVERT_CHOICES,
                    "MNIST is a white digit on black. auto: "
                    "invert an image file whose mean brightness is above 0.5 (dark ink on "
                    "light paper); data files (IDX, .npz, .npy) are never inverted. yes/no: "
                    "invert every / no image.")
  flags.DEFINE_bool("resize", False, "Scale images of another size to the model's instead of "
                    "refusing them (MNIST digits fill the middle 20x20 of 28x28: pad yours).")
  flags.DEFINE_string("labels", None, "IDX labels file, .npy, or .npz (y_test) with the labels "
                      "of all the images; then also print the accuracy.")
  flags.DEFINE_integer("batch_size", 1000, "Images per model call.", lower_bound=1)
  flags.DEFINE_integer("max_lines", 100, "At most this many per-image text lines.",
                       lower_bound=0)
  flagdefs.define_verbosity()


def main(argv):
  if not FLAGS.verbose:
    logging.set_verbosity(logging.WARNING)  # TF's INFO notes on loading a SavedModel are noise
  with cli.one_line_errors(FLAGS.verbose):
    if not FLAGS.saved_model:
      raise UsageError("--saved_model is required; pass --saved_model=DIR (a SavedModel or "
                       "an --export_dir)")
    predict_files(FLAGS.saved_model, argv[1:], FLAGS.labels, FLAGS.invert, FLAGS.resize,
                  FLAGS.batch_size, FLAGS.json, FLAGS.max_lines)


def run():
  """Entry point: `python -m mnist_estimator.predict --saved_model=DIR FILE...`."""
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
