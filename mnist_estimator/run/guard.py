"""Checks before a run touches model_dir: argv, output paths, sizes, the lock, checkpoints."""

import contextlib
import os
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from mnist_estimator.common import lock
from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import headers as headers_lib
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.estimator import checkpoints

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.run.plan import Plan
  from mnist_estimator.run.spec import RunSpec

# Floats held per input pixel by a training step (activations, gradients, optimizer work),
# a generous bound for the models here: cnn's 32-channel first layer dominates.
_FLOATS_PER_PIXEL = 40


def check_argv(argv: Sequence[str]) -> None:
  """Refuses arguments and flagfiles that are not UTF-8 (absl would end in a traceback)."""
  for arg in argv[1:]:
    try:
      arg.encode("utf-8")
    except UnicodeEncodeError:
      shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
      raise UsageError(f"argument {shown} is not valid UTF-8; rename the file or folder "
                       "(e.g. convmv -f latin1 -t utf8) or pass another path") from None
    if arg.startswith(("--flagfile=", "-flagfile=")):
      _check_flagfile(arg.split("=", 1)[1])


def _check_flagfile(path: str) -> None:
  try:
    with open(path, "rb") as f:
      f.read().decode("utf-8")
  except OSError:
    return  # absl names a missing flagfile itself
  except UnicodeDecodeError as e:
    raise UsageError(f"--flagfile {path} is not UTF-8 text (byte {e.object[e.start]:#x} at "
                     f"offset {e.start}); save it as UTF-8 (iconv -f latin1 -t utf8)") from None


def check_sizes(spec: "RunSpec", data: Dataset) -> None:
  """Refuses batch sizes whose tensors cannot fit in memory, before TF allocates them."""
  per_image = int(np.prod(data.image_shape)) * 4 * _FLOATS_PER_PIXEL
  free = headers_lib.memory_available()
  if not free:
    return
  for flag, value in (("batch_size", spec.batch_size), ("eval_batch_size",
                                                          spec.eval_batch_size)):
    if value * per_image > free:
      h, w, _ = data.image_shape
      smaller = (f", or smaller images: --image_size={max(8, h // 4)}x{max(8, w // 4)}"
                 if data.decoding is not None else "")
      raise UsageError(
          f"--{flag}={value} needs about {value * per_image / 2**30:.1f} GiB for images of "
          f"{h}x{w} but {free / 2**30:.1f} GiB of memory is free; pass at most "
          f"{max(1, free // per_image)} (the training set has {len(data.y_train)} images)"
          f"{smaller}")


def check_outputs(spec: "RunSpec") -> None:
  """Refuses --weights_out / --weights_png_dir paths that cannot be written as named."""
  if spec.weights_out:
    if not spec.weights_out.endswith(".npz"):
      raise UsageError(f"--weights_out={spec.weights_out} must end in .npz (numpy would "
                       f"append it); pass --weights_out={spec.weights_out}.npz")
    folder = os.path.dirname(os.path.abspath(spec.weights_out))
    if not os.path.isdir(folder):
      raise UsageError(f"--weights_out={spec.weights_out}: the folder {folder} does not "
                       "exist; create it or pass another path")
  if spec.weights_png_dir and os.path.exists(spec.weights_png_dir) and not os.path.isdir(
      spec.weights_png_dir):
    raise UsageError(f"--weights_png_dir={spec.weights_png_dir} is a file; pass a folder")


@contextlib.contextmanager
def model_dir(plan: "Plan") -> Iterator[bool]:
  """Everything checked before the Estimator touches the plan's model_dir; yields True if fresh.

  A training run holds the model_dir lock (in a cluster only the chief), then the
  checkpoints are verified (state file rebuilt, an unreadable newest refused, or skipped
  with --fallback_checkpoint). The plan has read and checked the record already.
  """
  spec = plan.spec
  assert spec.model_dir is not None, "plan.make fills model_dir in"
  check_outputs(spec)
  check_sizes(spec, plan.data)
  with lock.held(spec.model_dir, plan.training and plan.chief):
    checkpoints.ensure(spec.model_dir, spec.fallback_checkpoint)
    yield not checkpoints.exist(spec.model_dir)
