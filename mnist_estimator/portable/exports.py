"""--export_format: convert a SavedModel version, check every file against it, announce them."""

import shutil
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from mnist_estimator import runtime
from mnist_estimator.portable import SAVED_MODEL
from mnist_estimator.portable import convert
from mnist_estimator.portable import parse_formats
from mnist_estimator.portable import verify


def check_files(saved_model: str, files: Mapping[str, str], inputs: np.ndarray, labels: Any,
                rounds: int = 3, threads: int = 1) -> List[verify.Row]:
  """Runs the SavedModel and each file on the test inputs; returns the table's Rows.

  Args:
    saved_model: the SavedModel version (the reference).
    files: {format name: path} of the converted files.
    inputs: float32 test inputs of the signature's shape; labels: int [N].
    rounds: interleaved timing rounds (0: no timing).
    threads: threads of every runtime, the SavedModel's too (one: a fair, steady figure on a
      shared machine; a phone's or a browser's usual setting).
  """
  reference = runtime.load_classifier(saved_model, threads)
  runners = [reference] + [runtime.load_classifier(path, threads) for path in files.values()]
  try:
    ref_out = verify.predict_all(reference, inputs)
    rows = [verify.compare(reference, r, inputs, labels, ref_out) for r in runners]
    if rounds and len(inputs):
      speeds = verify.time_runners({r.format.name: r for r in runners}, inputs, rounds)
      for row in rows:
        row.ms_per_image, row.images_per_sec = speeds[row.format]
  finally:
    for runner in runners:
      runner.close()
  return rows


def export_formats(saved_model: str, names: Union[str, Sequence[str]],
                   representative: Optional[np.ndarray] = None,
                   test: Optional[Tuple[np.ndarray, Any]] = None, verify_files: bool = True,
                   out: Callable[[str], Any] = print) -> Dict[str, str]:
  """Writes the formats `names` of a SavedModel version beside it, checked, then announced.

  Args:
    saved_model: a freshly exported SavedModel version folder (<export_dir>/<timestamp>).
    names: --export_format's names (a comma list or sequence); without saved_model the
      folder is removed once the files are written and checked.
    representative: float32 signature inputs calibrating tflite_int8.
    test: (float32 inputs, int labels), the test set the files are checked on.
    verify_files: check them (and print the table); False is --noverify_export.
    out: prints a line.

  Returns:
    {format name: path}, in the order asked.

  Raises:
    UsageError: an unknown format or a missing converter; ExportCheckFailed (a UsageError)
      names the format and the figure that failed, after the whole table is printed.
  """
  formats = parse_formats(names)
  files = {f.name: convert.convert(saved_model, f.name, representative)
           for f in formats if f.name != SAVED_MODEL}
  if verify_files and files and test is not None:
    rows = check_files(saved_model, files, *test)
    out(f"checked against the SavedModel on {len(test[1])} test images:")
    out(verify.format_table(rows))
    for row in rows[1:]:
      verify.check(row, rows[0], next(f for f in formats if f.name == row.format).quantized)
  found: Dict[str, str] = {}
  for fmt in formats:
    path = saved_model if fmt.name == SAVED_MODEL else files[fmt.name]
    found[fmt.name] = path
    kinds = f"; {tensor_kinds(path)}" if fmt.quantized else ""
    out(f"exported {fmt.name}: {path} ({verify.size_text(runtime.file_size(path))}{kinds})")
  if SAVED_MODEL not in found:
    shutil.rmtree(saved_model, ignore_errors=True)  # only the source of the files asked for
  return found


def tensor_kinds(path: str) -> str:
  """What a quantized file takes and returns: "uint8 images (scale 1/255, zero point 0), ..."."""
  def kind(t: runtime.FileTensor) -> str:
    if t.scale is None:
      return f"{t.dtype} {t.name}"
    return f"{t.dtype} {t.name} (scale 1/{1 / t.scale:.0f}, zero point {t.zero_point})"
  with runtime.load(path) as model:
    return ", ".join(kind(t) for t in [*model.file_inputs, *model.file_outputs])
