"""Read a trained model's variables by name: list them, save the chosen ones to .npz."""

import re
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mnist_estimator.common.errors import UsageError

# Optimizer state, not part of the network: Adam/Momentum/... slots and their scalars.
_SLOT = re.compile(r"/(Adam(_1)?|Momentum|Adagrad|RMSProp(_1)?|Ftrl(_1)?)$|"
                   r"(^|/)(beta1_power|beta2_power)$")
# The shadow weights of an ExponentialMovingAverage (seed 002): a second copy of the layers.
_AVERAGE = re.compile(r"/ExponentialMovingAverage$")

KIND_TITLES = (("layer", "layer weights"),
               ("average", "moving averages of the layer weights (what evaluate, predict "
                           "and export use)"),
               ("optimizer", "optimizer slots"),
               ("bookkeeping", "bookkeeping"))


# A variable as list_variables gives it: (name, shape, kind).
Row = Tuple[str, Tuple[int, ...], str]


def kind_of(name: str) -> str:
  """Classifies a variable name as "layer", "average", "optimizer" or "bookkeeping"."""
  if name == "global_step":
    return "bookkeeping"
  if _AVERAGE.search(name):
    return "average"
  if _SLOT.search(name):
    return "optimizer"
  return "layer"


def list_variables(estimator: tf.estimator.Estimator) -> List[Row]:
  """Returns [(name, shape, kind)] for every variable in the latest checkpoint, sorted.

  Args:
    estimator: a tf.estimator.Estimator whose model_dir holds a checkpoint.
  """
  # Names and shapes from the checkpoint's index: no tensor is read.
  checkpoint = tf.train.latest_checkpoint(estimator.model_dir)
  return sorted((name, tuple(shape), kind_of(name))
                for name, shape in tf.train.list_variables(checkpoint))


def format_table(rows: Sequence[Row]) -> str:
  """Formats list_variables() rows as text, layer weights first, then the rest by kind."""
  lines: List[str] = []
  for kind, title in KIND_TITLES:
    chosen = [row for row in rows if row[2] == kind]
    if not chosen:
      continue
    lines.append(f"{title} ({len(chosen)}, {sum(_size(r[1]) for r in chosen):,} values):")
    width = max(len(r[0]) for r in chosen)
    lines += [f"  {name:<{width}}  {list(shape)}" for name, shape, _ in chosen]
  return "\n".join(lines)


def _size(shape: Sequence[int]) -> int:
  return int(np.prod(shape)) if shape else 1


def save(estimator: tf.estimator.Estimator, path: str, pattern: Optional[str] = None,
         kinds: Sequence[str] = ("layer",)) -> List[str]:
  """Writes chosen variables to an .npz keyed by variable name.

  Args:
    estimator: a trained tf.estimator.Estimator.
    path: output .npz path.
    pattern: regular expression; only names it matches (re.search) are saved.
    kinds: which kinds of variables to consider (default: layer weights only).

  Returns:
    The saved names.

  Raises:
    UsageError: for a bad pattern, or if nothing matches.
  """
  try:
    regex = re.compile(pattern or "")
  except re.error as e:
    raise UsageError(f"--weights_names {pattern!r} is not a regular expression ({e})") from None
  names = [name for name, _, kind in list_variables(estimator)
           if kind in kinds and regex.search(name)]
  if not names:
    raise UsageError(f"no {'/'.join(kinds)} variable matches --weights_names {pattern!r}; "
                     "run --mode=weights without it to list the names")
  np.savez(path, **{name: estimator.get_variable_value(name) for name in names})
  return names
