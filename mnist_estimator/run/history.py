"""Every training run on record: model_dir/flags.txt (a flagfile) and TensorBoard HParams."""

import datetime
import os
import shlex
import sys
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mnist_estimator.run import spec as spec_lib

FLAGS_FILE = "flags.txt"


def flag_lines(spec: spec_lib.RunSpec) -> List[str]:
  """The spec as absl flag lines that reproduce it (`--name=value`, `--[no]name`)."""
  lines: List[str] = []
  for name in spec_lib.field_names():
    value = getattr(spec, name)
    if value is None:
      continue
    if isinstance(value, bool):
      lines.append(f"--{name}" if value else f"--no{name}")
    elif isinstance(value, (tuple, list)):
      lines.append(f"--{name}={','.join(map(str, value))}")
    else:
      lines.append(f"--{name}={value}")
  return lines


def _last_record(path: str) -> List[str]:
  """The flag lines of the file's last record ([] if there is none)."""
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except OSError:
    return []
  last = text.rsplit("\n# ", 1)[-1]
  return [line for line in last.splitlines() if line.startswith("--")]


def write_flags(spec: spec_lib.RunSpec, argv: Optional[Sequence[str]] = None,
                now: Optional[datetime.datetime] = None) -> Tuple[str, bool]:
  """Appends the run's effective flags to model_dir/flags.txt unless they are the last record's.

  `python -m mnist_estimator.main --flagfile=<model_dir>/flags.txt` re-runs the newest
  record (absl reads every record; the last value of each flag wins).

  Returns:
    The path, and whether a record was added.
  """
  assert spec.model_dir is not None, "a run's spec has its model_dir (plan.make)"
  path = os.path.join(spec.model_dir, FLAGS_FILE)
  lines = flag_lines(spec)
  if _last_record(path) == lines:
    return path, False
  now = now or datetime.datetime.now(datetime.timezone.utc)
  command = shlex.join(argv if argv is not None else sys.argv)
  with open(path, "a", encoding="utf-8") as f:
    f.write(f"# {now:%Y-%m-%d %H:%M:%S} UTC: {command}\n")
    f.write("\n".join(lines) + "\n")
  return path, True


def hparams(spec: spec_lib.RunSpec) -> Dict[str, Union[bool, int, float, str]]:
  """The run's hyper-parameters as HParams values (bool, int, float or str).

  The fields marked `hparam` in RunSpec; the rest are plumbing (paths, logging).
  """
  values: Dict[str, Union[bool, int, float, str]] = {}
  for name in spec_lib.names_with("hparam"):
    value = getattr(spec, name)
    if isinstance(value, (tuple, list)):
      value = ",".join(map(str, value)) or "none"
    values[name] = "none" if value is None else value
  return values


def write_hparams(spec: spec_lib.RunSpec) -> None:
  """Writes this run's HParams session into model_dir (TensorBoard's HParams dashboard).

  No experiment config is written: TensorBoard then infers it from all runs under
  --logdir, marks the hyper-parameters that differ between them (shown first), and
  takes the metrics from the scalars every run writes (eval and train accuracy, loss).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins.hparams import api as hp  # pylint: disable=g-import-not-at-top
  assert spec.model_dir is not None, "a run's spec has its model_dir (plan.make)"
  session = hp.hparams_pb(hparams(spec),
                          trial_id=os.path.basename(os.path.normpath(spec.model_dir)))
  # An eager writer of its own: the Estimator's cached v1 writer belongs to its graphs.
  writer = tf.summary.create_file_writer(spec.model_dir)
  with writer.as_default():
    tf.summary.experimental.write_raw_pb(session.SerializeToString(), step=0)
  writer.close()
