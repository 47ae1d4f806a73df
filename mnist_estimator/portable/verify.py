"""Every export checked against its SavedModel on the test set: agreement, accuracy, speed."""

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mnist_estimator.common.errors import UsageError

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.runtime import Classifier

# The checks of the issue: a float file must agree on every top-1 within this probability...
FLOAT_MAX_ABS_DIFF = 1e-4
# ...and an int8 one stay within this many accuracy points of the SavedModel.
INT8_MAX_ACCURACY_POINTS = 0.5
BATCH = 256  # the throughput column's batch


class ExportCheckFailed(UsageError):
  """An exported file does not match its SavedModel (names the format and the figure)."""


@dataclasses.dataclass
class Row:
  """One format's line of the table (the SavedModel's own line agrees with itself)."""
  format: str
  path: str
  bytes: int
  accuracy: float
  agreement: float
  max_abs_diff: float
  ms_per_image: Optional[float] = None
  images_per_sec: Optional[float] = None


def serving_inputs(x: Any, image_shape: Sequence[int],
                   standardize: Optional[Tuple[Any, Any]] = None) -> np.ndarray:
  """Data-set arrays as the serving signature takes them.

  Args:
    x: a Dataset's x (uint8 images [N, H, W, C], or a series' standardised float windows).
    image_shape: (H, W, C).
    standardize: a series' (mean, std): the signature takes raw values, so they are undone.

  Returns:
    float32 [N, H, W] for one channel (MNIST's [N, 28, 28]), else [N, H, W, C].
  """
  x = np.asarray(x)
  values = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
  if standardize is not None:
    mean, std = standardize
    values = values[..., 0] * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
  return values.reshape(-1, *image_shape[:2]) if image_shape[2] == 1 else values


def representative(x_train: Any, count: int, seed: int = 0) -> Any:
  """A seeded sample of `count` training rows (all of them if there are fewer)."""
  rng = np.random.default_rng(seed)
  return x_train[np.sort(rng.choice(len(x_train), min(count, len(x_train)), replace=False))]


def predict_all(runner: "Classifier", inputs: np.ndarray,
                batch: int = BATCH) -> Tuple[np.ndarray, np.ndarray]:
  """(classes, probabilities) of a runner on every input, `batch` rows per call."""
  parts = [runner.run(inputs[i:i + batch]) for i in range(0, len(inputs), batch)]
  return (np.concatenate([p["classes"] for p in parts]).astype(np.int64),
          np.concatenate([p["probabilities"] for p in parts]).astype(np.float32))


def compare(reference: "Classifier", runner: "Classifier", inputs: np.ndarray, labels: Any,
            reference_out: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> Row:
  """A Row: the runner's accuracy and its agreement with `reference` on inputs.

  Args:
    reference, runner: runtime.Classifiers (the SavedModel, the exported file).
    inputs: float32 signature inputs; labels: int [N].
    reference_out: reference's predict_all output if already computed.
  """
  from mnist_estimator import runtime  # pylint: disable=g-import-not-at-top
  ref_classes, ref_probs = reference_out or predict_all(reference, inputs)
  classes, probs = predict_all(runner, inputs)
  return Row(runner.format.name, runner.path, runtime.file_size(runner.path),
             float(np.mean(classes == labels)), float(np.mean(classes == ref_classes)),
             float(np.max(np.abs(probs - ref_probs))) if len(probs) else 0.0)


def time_runners(runners: Mapping[str, "Classifier"], inputs: np.ndarray, rounds: int = 3,
                 singles: int = 50, batch: int = BATCH) -> Dict[str, Tuple[float, float]]:
  """Median latency at batch 1 and throughput at `batch`, the runners interleaved round by round.

  Each round times every runner in turn on the same images, so a change in the machine's
  load falls on all of them alike.

  Args:
    runners: {label: runtime.Classifier}; inputs: float32 signature inputs (all runners take them).
    rounds: rounds; singles: batch-1 calls per runner and round.

  Returns:
    {label: (ms per image at batch 1, images/s at `batch`)}.
  """
  singles = max(1, min(singles, len(inputs)))
  big = inputs[:batch] if len(inputs) >= batch else np.resize(inputs, (batch, *inputs.shape[1:]))
  single_ms: Dict[str, List[float]] = {label: [] for label in runners}
  batch_s: Dict[str, List[float]] = {label: [] for label in runners}
  for runner in runners.values():  # warm up: the first call of each allocates
    runner.run(inputs[:1])
    runner.run(big)
  for _ in range(rounds):
    for label, runner in runners.items():
      for i in range(singles):
        start = time.perf_counter()
        runner.run(inputs[i:i + 1])
        single_ms[label].append((time.perf_counter() - start) * 1e3)
      start = time.perf_counter()
      runner.run(big)
      batch_s[label].append(time.perf_counter() - start)
  return {label: (float(np.median(single_ms[label])), batch / float(np.median(batch_s[label])))
          for label in runners}


def check(row: Row, reference_row: Row, quantized: bool) -> None:
  """Raises ExportCheckFailed unless `row` passes its format's check against the SavedModel."""
  fix = (f"the file is left at {row.path} but is not to be trusted; --noverify_export "
         "skips the check")
  if quantized:
    points = 100 * abs(row.accuracy - reference_row.accuracy)
    if points > INT8_MAX_ACCURACY_POINTS:
      raise ExportCheckFailed(
          f"{row.format} failed its check: accuracy {row.accuracy:.4f} against the "
          f"SavedModel's {reference_row.accuracy:.4f}, {points:.2f} points apart (at most "
          f"{INT8_MAX_ACCURACY_POINTS}); {fix}")
    return
  if row.agreement < 1.0:
    raise ExportCheckFailed(
        f"{row.format} failed its check: top-1 agreement {row.agreement:.4f} with the "
        f"SavedModel (every class must agree); {fix}")
  if not row.max_abs_diff <= FLOAT_MAX_ABS_DIFF:  # NaN fails too
    raise ExportCheckFailed(
        f"{row.format} failed its check: max abs prob diff {row.max_abs_diff:.2e} from the "
        f"SavedModel (at most {FLOAT_MAX_ABS_DIFF:.0e}); {fix}")


def size_text(count: float) -> str:
  for unit, scale in (("MB", 1e6), ("kB", 1e3)):
    if count >= scale:
      return f"{count / scale:.1f} {unit}"
  return f"{count} B"


HEADER = ("| format | size | accuracy | top-1 agreement | max abs prob diff | ms/image at batch 1 "
          "| images/s at batch 256 |")


def format_table(rows: Sequence[Row]) -> str:
  """The issue's Markdown table, a line per Row (the SavedModel first); '-' where not timed."""
  lines = [HEADER, "|---|---|---|---|---|---|---|"]
  for r in rows:
    speed = ("- | -" if r.ms_per_image is None
             else f"{r.ms_per_image:.3f} | {r.images_per_sec:,.0f}")
    lines.append(f"| {r.format} | {size_text(r.bytes)} | {r.accuracy:.4f} | {r.agreement:.4f} "
                 f"| {r.max_abs_diff:.1e} | {speed} |")
  return "\n".join(lines)
