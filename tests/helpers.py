"""What the tests share: repo root, main in-process and in subprocesses, small runs, data files."""

import contextlib
import datetime
import gzip
import io
import os
import subprocess
import sys

import numpy as np

from mnist_estimator import flagdefs
from mnist_estimator.common import cli
from mnist_estimator.common import precision
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets, readers, weather
from mnist_estimator.run import guard, runner
from mnist_estimator.run.spec import RunSpec
from mnist_estimator.cluster.tf_config import free_ports  # noqa: F401  # for tests that need ports

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# This CPU has bf16 arithmetic (AVX512_BF16 or AMX-BF16); without it forced bf16 is emulated,
# ~10x slower than fp32, and oneDNN fuses no bf16 ops.
NATIVE_BF16 = precision.resolve("auto").native


def cli_env(**extra):
  """The environment of a subprocess that imports this checkout's package."""
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, **extra)


def run_main(*argv):
  """main's run in this process: argv checks, flags -> RunSpec, run, one-line errors.

  What `python -m mnist_estimator.main ARGV` does after absl (whose own flag-error line
  the subprocess tests in test_main check), without a TensorFlow import per case.

  Returns:
    (exit code, stdout, stderr) as text.
  """
  def main():
    guard.check_argv(["main", *argv])
    spec, extra = flagdefs.spec_and_arguments(list(argv))
    if extra:
      raise UsageError(f"unexpected arguments {extra}; every setting is a --flag (see "
                       "--helpshort)")
    runner.run(spec)

  return _captured(main)


def _captured(work):
  """(exit code, stdout, stderr) of `work()` under the commands' one-line errors."""
  out, err = io.StringIO(), io.StringIO()
  code = 0
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      with cli.one_line_errors():
        work()
    except SystemExit as e:
      code = e.code
  return code, out.getvalue(), err.getvalue()


def run_predict(saved_model, *paths, labels=None, **options):
  """The predict command's work in this process (predict_files), with its one-line errors.

  Args:
    saved_model, paths, labels: as --saved_model, the files and --labels.
    **options: predict_files' other arguments (as_json, max_lines, ...), the command's flags.

  Returns:
    (exit code, stdout, stderr) as text.
  """
  from mnist_estimator.predict import main as predict_main  # pylint: disable=g-import-not-at-top
  return _captured(lambda: predict_main.predict_files(saved_model, list(paths), labels,
                                                      **options))


def one_error_line(code, err, *words):
  """The run failed with exactly one `error:` line holding `words`; returns that line."""
  errors = [line for line in err.splitlines() if line.startswith("error:")]
  assert code != 0 and len(errors) == 1, (code, err[-2000:])
  assert all(word in errors[0] for word in words), (words, errors[0])
  return errors[0]


def run_module(module, *argv, cwd=ROOT, timeout=300):
  """Runs `python -m MODULE ARGV` to the end; returns the CompletedProcess (text)."""
  return subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd, env=cli_env(),
                        capture_output=True, text=True, timeout=timeout)


def start_module(module, *argv, merge_stderr=True):
  """Starts `python -m MODULE ARGV` with text pipes (stderr into stdout if merge_stderr)."""
  return subprocess.Popen([sys.executable, "-m", module, *argv], cwd=ROOT, env=cli_env(),
                          stdout=subprocess.PIPE, text=True,
                          stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE)


def load_whole(name, *args, **kwargs):
  """datasets.load without a validation cut (--validation_split=0): the loader's own arrays."""
  kwargs.setdefault("validation_split", 0)
  return datasets.load(name, *args, **kwargs)


def small_spec(model, model_dir, **overrides):
  """The model's defaults for a few-step run on the sample: 12 steps of 16, seeded, fp32.

  fp32 unless overridden: `auto` would train in bf16 on some CPUs and fp32 on others.
  """
  values = dict(model_dir=model_dir and str(model_dir), steps=12, batch_size=16,
                eval_batch_size=64, log_every_n_iter=5, seed=1, precision="fp32")
  values.update(overrides)
  return RunSpec.for_model(model, **values)


def model_fn_graph(model, mode, seed=None, **options):
  """The real model_fn's graph of `model` in `mode` on a batch of two 28x28 images.

  Args:
    model: a registered model name.
    mode: a tf.estimator.ModeKeys value.
    seed: the graph seed, if any.
    **options: RunSpec fields (conv_algorithm, precision, ...).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mnist_estimator.head import model_fn  # pylint: disable=g-import-not-at-top
  from mnist_estimator.run import plan  # pylint: disable=g-import-not-at-top
  params = plan.model_params(RunSpec.for_model(model, **options), (28, 28, 1), 10, 60000)
  graph = tf.Graph()
  with graph.as_default():
    if seed is not None:
      tf.compat.v1.set_random_seed(seed)
    tf.compat.v1.train.get_or_create_global_step()
    labels = None if mode == tf.estimator.ModeKeys.PREDICT else tf.zeros([2], tf.int32)
    model_fn.model_fn({"x": tf.zeros([2, 28, 28, 1])}, labels, mode, params)
  return graph


def conv_and_gradients(conv, x, w, dy):
  """(conv(x, w), its gradients for x and for w given dy): eager, for convolution rewrites."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.GradientTape() as tape:
    tape.watch([x, w])
    y = conv(x, w)
  return (y, *tape.gradient(y, [x, w], output_gradients=dy))


def read_png(path):
  """Asserts `path` is a plausible, non-blank PNG picture; returns its RGB pixels in [0, 1]."""
  import matplotlib.image  # pylint: disable=g-import-not-at-top
  with open(path, "rb") as f:
    assert f.read(8) == PNG_SIGNATURE, path
  pixels = matplotlib.image.imread(path)
  assert pixels.ndim == 3 and pixels.shape[2] in (3, 4), pixels.shape
  assert pixels.shape[0] > 100 and pixels.shape[1] > 100, pixels.shape
  assert pixels[..., :3].std() > 0
  return pixels[..., :3]


_IDX = readers.IDX_FILES


# Writers of small MNIST files in the real formats (IDX, gzip or raw).
def idx_bytes(array, magic=None):
  """Returns the IDX encoding of a uint8 array: magic, big-endian dims, then the bytes."""
  array = np.asarray(array, np.uint8)
  magic = 0x800 | array.ndim if magic is None else magic
  dims = np.array(array.shape, ">u4").tobytes()
  return magic.to_bytes(4, "big") + dims + array.tobytes()


def write_idx(path, array, gz=True, **kwargs):
  data = idx_bytes(array, **kwargs)
  with open(path, "wb") as f:
    f.write(gzip.compress(data) if gz else data)
  return str(path)


def fake_mnist(n_train=12, n_test=5, seed=1):
  rng = np.random.RandomState(seed)
  return (rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
          rng.randint(0, 10, n_train).astype(np.uint8),
          rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
          rng.randint(0, 10, n_test).astype(np.uint8))


def write_mnist_dir(folder, arrays=None, gz=True, skip=()):
  arrays = fake_mnist() if arrays is None else arrays
  for base, array in zip(_IDX, arrays):
    if base not in skip:
      write_idx(folder / (base + (".gz" if gz else "")), array, gz=gz)
  return arrays


# A generated weekly weather series in the real file's format (data/weather.py).
FIRST_YEAR, YEARS = 2000, 13  # 3 training years, then the 10 test years


def weekly_series(years=YEARS, gap_at=None, seed=0):
  """Weekly rows in the real file's format: float64 [weeks, 6], date YYYYMMDD then 5 features.

  Rain is the year minus 2000 (plus noise), so a window's raw rain tells its year; the
  temperatures follow the seasons. `gap_at` drops 5 weeks from that row on (the real file has
  such gaps).
  """
  rng = np.random.RandomState(seed)
  day = datetime.date(FIRST_YEAR, 1, 5)
  rows = []
  while day.year < FIRST_YEAR + years:
    phase = 2 * np.pi * (day.timetuple().tm_yday - 105) / 365.25
    high = 60 + 25 * np.sin(phase) + rng.randn() * 3
    snow = max(0.0, -np.sin(phase)) * rng.rand() * 3
    rows.append([int(day.strftime("%Y%m%d")), day.year - FIRST_YEAR + 0.1 * rng.rand(), snow,
                 snow * 0.5, high, high - 18])
    day += datetime.timedelta(days=7)
  rows = np.array(rows, np.float64)
  if gap_at is not None:
    rows = np.delete(rows, range(gap_at, gap_at + 5), axis=0)
  return rows


def write_weather(folder, weekly=None):
  """weather.npz with the real file's keys: `daily` and `weekly` float64 arrays of 6 columns."""
  weekly = weekly_series() if weekly is None else weekly
  np.savez(folder / weather.FILE, daily=np.zeros([7 * len(weekly), 6]), weekly=weekly)
  return str(folder)


def write_image_folder(root, per_class=12, size=(12, 10), classes=("cat", "dog", "eel"),
                       rgb=True, seed=0):
  """DIR/<class>/NNN.png of `size` (H, W): class k is brightest in channel k (learnable)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(seed)
  for k, name in enumerate(classes):
    os.makedirs(os.path.join(root, name), exist_ok=True)
    for i in range(per_class):
      pixels = rng.randint(0, 80, (*size, 3)).astype(np.uint8)
      pixels[..., k % 3] += 150
      image = Image.fromarray(pixels if rgb else pixels[..., k % 3])
      image.save(os.path.join(root, name, f"{i:03d}.png"))
  return str(root)


def write_tfrecord(path, images, labels):
  """A TFRecord of tf.Examples with image/encoded (PNG) and image/class/label."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.io.TFRecordWriter(str(path)) as writer:
    for image, label in zip(images, labels):
      feature = {
          "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[tf.io.encode_png(image).numpy()])),
          "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(
              value=[int(label)]))}
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature))
                   .SerializeToString())
  return str(path)


def write_picture(path, pixels, mode=None, **save):
  """One image file of uint8 (or uint16) `pixels` [H, W] or [H, W, C], its format by suffix.

  `mode` converts first (e.g. "P" for a palette image); `save` goes to PIL's save.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  pixels = np.asarray(pixels)
  image = Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1
                          else pixels)
  if mode:
    image = image.convert(mode)
  os.makedirs(os.path.dirname(str(path)), exist_ok=True)
  image.save(str(path), **save)
  return str(path)


def write_tfrecord_examples(path, encoded, labels, texts=None):
  """A TFRecord of tf.Examples with the given image/encoded bytes, labels and class texts."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  texts = [None] * len(labels) if texts is None else texts
  with tf.io.TFRecordWriter(str(path)) as writer:
    for data, label, text in zip(encoded, labels, texts):
      feature = {"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
                 "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(
                     value=[int(label)]))}
      if text is not None:
        feature["image/class/text"] = tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[text.encode()]))
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature))
                   .SerializeToString())
  return str(path)
