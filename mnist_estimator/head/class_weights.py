"""--class_weight: each class's weight in the training loss, `balanced` or from a file."""

import json
import math
import os
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from mnist_estimator.common.errors import UsageError

BALANCED = "balanced"
_FORMULA = "n/(k*count)"
_SHOWN = 10  # classes named in the header line; the rest are counted
_HOW = (f"pass --class_weight={BALANCED} or a FILE of name:weight lines (or a JSON object "
        "{name: weight})")


def resolve(value: Optional[str], labels: npt.ArrayLike,
            class_names: Sequence[str]) -> Optional[List[float]]:
  """The per-class loss weights --class_weight asks for, or None (every class 1).

  Args:
    value: None (or ""), "balanced", or the path of a file of `name:weight` (or
      `name weight`) lines, `#` comments and blank lines allowed, or of a JSON object.
    labels: the training labels, int class ids [N] (for "balanced").
    class_names: the data's n_classes names, in class-id order ("0".."9" for MNIST).

  Returns:
    n_classes floats (classes a file does not list get 1.0), or None.

  Raises:
    UsageError: a value that is neither, a missing or unreadable file, an unknown class
      name, a weight that is not a positive number.
  """
  if not value:
    return None
  names = [str(name) for name in class_names]
  if value == BALANCED:
    return balanced(labels, len(names))
  if os.path.isfile(value):
    return _from_file(value, names)
  if os.path.exists(value):
    raise UsageError(f"--class_weight={value} is a folder, not a file; {_HOW}")
  if os.sep in value or os.path.splitext(value)[1]:
    raise UsageError(f"--class_weight={value}: no such file; {_HOW}")
  raise UsageError(f"--class_weight={value} is neither {BALANCED} nor an existing file; {_HOW}")


def balanced(labels: npt.ArrayLike, n_classes: int) -> List[float]:
  """sklearn's and Keras' "balanced" weights: n_samples / (n_classes * count of the class).

  Over the training set the weights average 1, so the loss keeps its scale. A class with
  no training image (the data checks refuse that) gets 1.0: its weight is never used.

  Raises:
    ValueError: a label outside [0, n_classes) (a caller's bug, not the user's).
  """
  labels = np.asarray(labels).astype(np.int64).reshape(-1)
  if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
    raise ValueError(f"labels from {labels.min()} to {labels.max()} for {n_classes} classes")
  counts = np.bincount(labels, minlength=n_classes)
  return [len(labels) / (n_classes * int(count)) if count else 1.0 for count in counts]


def describe(weights: Optional[Sequence[float]], class_names: Sequence[str],
             source: Optional[str] = None) -> str:
  """One short header line: "balanced: 0=0.52, 1=4.9, ... (n/(k*count))".

  Args:
    weights: what `resolve` returned.
    class_names: the data's class names.
    source: the --class_weight value (balanced or the file), or None.

  Returns:
    The line; "none" for no weights.
  """
  if weights is None:
    return "none"
  pairs = [f"{name}={weight:.2g}" for name, weight in zip(class_names, weights)]
  if len(pairs) > _SHOWN:
    pairs = pairs[:_SHOWN] + [f"... {len(pairs) - _SHOWN} more"]
  formula = f" ({_FORMULA})" if source == BALANCED else ""
  return f"{source + ': ' if source else ''}{', '.join(pairs)}{formula}"


def _from_file(path: str, names: List[str]) -> List[float]:
  """The weights a file lists (JSON object or lines); unlisted classes 1.0."""
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except (OSError, UnicodeDecodeError) as e:
    raise UsageError(f"cannot read --class_weight={path} "
                     f"({getattr(e, 'strerror', None) or e}); {_HOW}") from None
  is_json = text.lstrip()[:1] in ("{", "[")
  entries = _json_entries(path, text) if is_json else _line_entries(path, text)
  if not entries:
    raise UsageError(f"--class_weight={path} lists no class; add name:weight lines "
                     f"(classes: {', '.join(names)})")
  weights = dict.fromkeys(names, 1.0)
  for where, name, weight in entries:
    if name not in weights:
      raise UsageError(f"{where}: {name!r} is not a class of this data; use one of: "
                       f"{', '.join(names)}")
    weights[name] = _positive(where, weight)
  return [weights[name] for name in names]


def _line_entries(path: str, text: str) -> List[Tuple[str, str, Any]]:
  """[(where, name, weight text)] of `name:weight` / `name weight` lines."""
  entries: List[Tuple[str, str, Any]] = []
  seen = set()
  for number, line in enumerate(text.splitlines(), 1):
    body = line.split("#", 1)[0].strip()
    if not body:
      continue
    where = f"--class_weight={path} line {number} ({line.strip()!r})"
    # rpartition/rsplit: the weight is the last field, so a name may hold ":" or spaces.
    name, colon, weight = body.rpartition(":")
    if not colon:
      parts = body.rsplit(None, 1)
      name, weight = parts if len(parts) == 2 else (body, "")
    name, weight = name.strip(), weight.strip()
    if not name or not weight:
      raise UsageError(f"{where} is not name:weight; write one class a line, e.g. 3:2.5")
    if name in seen:
      raise UsageError(f"{where} lists the class {name} again; list each class once")
    seen.add(name)
    entries.append((where, name, weight))
  return entries


def _json_entries(path: str, text: str) -> List[Tuple[str, str, Any]]:
  """[(where, name, weight)] of a JSON object {name: weight}."""
  try:
    found = json.loads(text)
  except ValueError as e:
    raise UsageError(f"--class_weight={path} is not valid JSON ({e}); {_HOW}") from None
  if not isinstance(found, dict):
    raise UsageError(f"--class_weight={path} holds a JSON {type(found).__name__}, not an "
                     f"object; {_HOW}")
  return [(f"--class_weight={path} entry {name!r}", str(name), weight)
          for name, weight in found.items()]


def _positive(where: str, weight: Any) -> float:
  """A weight as a float, refused unless a finite number > 0."""
  try:
    # bool is an int to Python, but `true` is no weight.
    value = float(weight) if not isinstance(weight, bool) else math.nan
  except (TypeError, ValueError):
    value = math.nan
  if not math.isfinite(value) or value <= 0:
    raise UsageError(f"{where}: the weight {weight!r} is not a positive number; give each "
                     "class a weight > 0, e.g. 2.5 (1 = as without weights)")
  return value
