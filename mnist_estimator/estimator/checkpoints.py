"""Checkpoint integrity: the state file rebuilt from the files on disk, the newest one verified."""

import glob
import os
import re
from typing import Callable, Dict, Optional, Tuple

import tensorflow as tf

from mnist_estimator.common import causes
from mnist_estimator.common.errors import UsageError

STATE_FILE = "checkpoint"
_STEP = re.compile(r"^model\.ckpt-(\d+)\.(index|data-\d+-of-(\d+))$")
_PREFIX = re.compile(r"^model\.ckpt-(\d+)$")
# A data file of any prefix (a state file may name one not called model.ckpt-N): its count.
_SHARD = re.compile(r"\.data-\d+-of-(\d+)$")


def on_disk(model_dir: str) -> Dict[int, str]:
  """{step: prefix} of every model.ckpt-N with an .index or a data file in model_dir."""
  found: Dict[int, str] = {}
  for name in os.listdir(model_dir) if os.path.isdir(model_dir) else ():
    match = _STEP.match(name)
    if match:
      found[int(match.group(1))] = os.path.join(model_dir, f"model.ckpt-{match.group(1)}")
  return found


def exist(model_dir: str) -> bool:
  """True when model_dir holds any model.ckpt-N file."""
  return bool(on_disk(model_dir))


def verify(prefix: str) -> Optional[str]:
  """Reads every tensor of checkpoint `prefix`; returns None if it is whole, else the reason."""
  index = prefix + ".index"
  if not os.path.isfile(index):
    return f"{os.path.basename(index)} is missing"
  shards = glob.glob(glob.escape(prefix) + ".data-*-of-*")
  if not shards:
    return f"{os.path.basename(prefix)}.data-00000-of-00001 is missing"
  shard = _SHARD.search(os.path.basename(shards[0]))
  if shard is None:  # the glob's stars matched something other than numbers
    return f"{os.path.basename(shards[0])} is not named {os.path.basename(prefix)}.data-N-of-M"
  wanted = int(shard.group(1))
  if len(shards) != wanted:
    return f"{os.path.basename(prefix)} has {len(shards)} of its {wanted} data files"
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)  # checks each tensor's size and checksum
  except (tf.errors.OpError, ValueError, OSError, IndexError, RuntimeError) as e:
    # IndexError: the reader's "Read less bytes than requested" of a truncated data file.
    return causes.tf_error_line(getattr(e, "message", None) or str(e))
  return None


def _state(model_dir: str) -> Tuple[Optional[str], Optional[str]]:
  """(newest prefix named by the state file or None, why it cannot be used or None)."""
  path = os.path.join(model_dir, STATE_FILE)
  if not os.path.exists(path):
    return None, f"the checkpoint state file {path} is missing"
  try:
    state = tf.train.get_checkpoint_state(model_dir)
  except Exception:  # pylint: disable=broad-except  # text_format.ParseError and friends
    state = None
  if state is None or not state.model_checkpoint_path:
    return None, f"the checkpoint state file {path} is garbled"
  # get_checkpoint_state already joins a relative entry to model_dir (itself maybe relative to
  # the working folder): joining again named rel/m/rel/m/model.ckpt-N for --model_dir=rel/m.
  prefix = state.model_checkpoint_path
  if not glob.glob(glob.escape(prefix) + ".*"):
    return None, f"the checkpoint state file {path} names {prefix}, which is not on disk"
  return prefix, None


def _write_state(model_dir: str, prefix: str, found: Dict[int, str]) -> None:
  """Points the state file at `prefix`, listing the older checkpoints on disk too."""
  step = _step(prefix)
  older = [found[s] for s in sorted(found) if s <= step]
  try:
    tf.compat.v1.train.update_checkpoint_state(model_dir, prefix, older)
  except (tf.errors.OpError, OSError) as e:
    raise UsageError(f"cannot write the checkpoint state file in {model_dir} "
                     f"({causes.tf_error_line(getattr(e, 'message', e))}); make it "
                     "writable") from None


def _step(prefix: str) -> int:
  return int(prefix.rsplit("-", 1)[1])


def latest_step(model_dir: str) -> Optional[int]:
  """The global step of the checkpoint a run restores (after ensure()); None without one."""
  prefix = tf.train.latest_checkpoint(model_dir)
  return _step(prefix) if prefix and _PREFIX.match(os.path.basename(prefix)) else None


def ensure(model_dir: str, fallback: bool = False,
           announce: Callable[[str], object] = print) -> Optional[str]:
  """The one check before the Estimator touches model_dir's checkpoints.

  A missing or garbled state file is rebuilt from the model.ckpt-N files on disk
  (so training never starts again from step 0 over them), and the newest
  checkpoint is read in full.

  Args:
    model_dir: the run's model_dir.
    fallback: if the newest checkpoint is unreadable, use the newest readable one.
    announce: prints a one-line notice of a repair.

  Returns:
    The checkpoint prefix the run will use, or None when there is none.

  Raises:
    UsageError: the newest checkpoint is unreadable (and no fallback is allowed or
      possible), or the state file cannot be written.
  """
  found = on_disk(model_dir)
  if not found:
    return None
  newest, problem = _state(model_dir)
  if newest is None:
    newest = found[max(found)]
  bad = verify(newest)
  if bad is None:
    if problem:
      _write_state(model_dir, newest, found)
      announce(f"{problem}; rebuilt it from the checkpoints on disk (newest: "
               f"{os.path.basename(newest)})")
    return newest
  # Older ones; for a prefix of another name (the state file's), any model.ckpt-N on disk.
  named = _PREFIX.match(os.path.basename(newest))
  below = int(named.group(1)) if named else max(found) + 1
  good = next((found[s] for s in sorted(found, reverse=True)
               if s < below and verify(found[s]) is None), None)
  if good is None:
    raise UsageError(f"the newest checkpoint {newest} is unreadable ({bad}) and no older one "
                     f"is whole; move {model_dir} away and train again")
  if not fallback:
    raise UsageError(f"the newest checkpoint {newest} is unreadable ({bad}); rerun with "
                     f"--fallback_checkpoint to use {os.path.basename(good)}, the newest "
                     "readable one")
  _write_state(model_dir, good, {s: p for s, p in found.items() if verify(p) is None})
  announce(f"the newest checkpoint {newest} is unreadable ({bad}); falling back to "
           f"{os.path.basename(good)} (--fallback_checkpoint)")
  return good


def require(model_dir: str) -> None:
  """Raises UsageError unless model_dir holds a checkpoint (for evaluate, predict, weights)."""
  if not tf.train.latest_checkpoint(model_dir):
    raise UsageError(f"no checkpoint in --model_dir {model_dir}; train first "
                     "(--mode=train) or point --model_dir at a trained model")
