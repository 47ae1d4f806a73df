"""One line for the errors a user's machine causes: TF op errors, full disks, memory, paths."""

import errno
import re
import sys
from typing import Any, Optional

_FIXES = {
    errno.ENOSPC: "free space there or write to another disk (checkpoints written before "
                  "are kept)",
    errno.EDQUOT: "free space there or write to another disk",
    errno.EACCES: "make it writable or pass another path",
    errno.EPERM: "make it writable or pass another path",
    errno.EROFS: "the file system is read-only; pass another path",
    errno.ENOENT: "check the path or create the folder first",
    errno.ENOTDIR: "a part of the path is a file; pass another path",
    errno.EISDIR: "it is a folder; pass a file path",
    errno.EEXIST: "a file is in the way; remove it or pass another path",
}
_MEMORY = "out of memory; lower --batch_size or --eval_batch_size, or free memory"
_SHAPE = re.compile(r"Shape of variable (\S+) \((.*?)\) doesn't match with shape of "
                    r"tensor (\S+) \((.*?)\) from")


def tf_error_line(message: object) -> str:
  """The line of a TensorFlow error message that says what went wrong (not its headline).

  TF 2.15 messages start "Graph execution error:", then the node's stack; the cause is
  the line before the "[[{{node ...}}]]" marker.
  """
  lines = [line.strip() for line in str(message).splitlines()]
  skip = ("Graph execution error", "Detected at node", "File ", "Node:", "[[",
          "Original stack trace", "defined at", "Traceback")
  for i, line in enumerate(lines):
    if line.startswith("[[") and i:
      before = [x for x in lines[:i] if x and not x.startswith(skip)]
      if before:
        return before[-1]
  first = [x for x in lines if x and not x.startswith(skip)]
  return (first or lines or ["unknown error"])[0].split("\t [[")[0].strip()


def _os_message(error: OSError) -> str:
  name = getattr(error, "filename", None)
  what = error.strerror or str(error)
  fix = _FIXES.get(error.errno or 0, "check the path")
  return f"{what}: {name}; {fix}" if name else f"{what}; {fix}"


def _op_message(error: Any) -> str:
  """`error`: a tf.errors.OpError (TensorFlow has no type hints: Any)."""
  cause = tf_error_line(error.message)
  if "No space left on device" in cause:
    return f"{cause}; {_FIXES[errno.ENOSPC]}"
  if type(error).__name__ == "ResourceExhaustedError" or "OOM when allocating" in cause:
    return f"{_MEMORY} ({cause})"
  if "not found in checkpoint" in cause:
    return (f"{cause}; the checkpoint is of another model or shape: use another --model_dir, "
            "or the model it was trained with")
  return cause


def message(error: BaseException) -> Optional[str]:
  """A one-line message for an error outside UsageError that the user can act on, or None.

  Args:
    error: an exception.

  Returns:
    The cause and the fix on one line, or None for a programming error (shown in full).
  """
  tf = sys.modules.get("tensorflow")
  if tf is not None and isinstance(error, tf.errors.OpError):
    return _op_message(error)
  if isinstance(error, MemoryError):
    return _MEMORY
  if isinstance(error, OSError) and error.errno in _FIXES:
    return _os_message(error)
  match = _SHAPE.search(str(error)) if isinstance(error, ValueError) else None
  if match:
    return (f"--warm_start_from holds {match.group(3)} of shape {match.group(4)} but this "
            f"model's {match.group(1)} is {match.group(2)}; exclude it with "
            "--warm_start_vars or warm-start from a model of this shape")
  return None
