"""One writer per model_dir: an flock on model_dir/.lock that names its holder."""

import contextlib
import fcntl
import json
import os
import socket
import time
from typing import IO, Iterator

from mnist_estimator.common.errors import UsageError

LOCK_FILE = ".lock"


def _holder(path: str) -> str:
  """The pid, host and start time written in a lock file, as text."""
  try:
    with open(path) as f:
      info = json.load(f)
    return (f"pid {info['pid']} on {info['host']}, running since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info['start']))}")
  except (OSError, ValueError, KeyError, TypeError):
    return "another process"


def acquire(model_dir: str) -> IO[str]:
  """Takes the model_dir's writer lock, or refuses at once.

  A lock left by a killed process is free again (the kernel drops an flock with
  its process), so it is simply taken over.

  Args:
    model_dir: an existing directory.

  Returns:
    The open lock file; closing it releases the lock.

  Raises:
    UsageError: another live process holds the lock, or it cannot be created.
  """
  path = os.path.join(model_dir, LOCK_FILE)
  try:
    f = open(path, "a+")  # pylint: disable=consider-using-with  # held until release
  except OSError as e:
    raise UsageError(f"cannot create the lock file {path} ({e.strerror}); pass a "
                     "--model_dir you can write to") from None
  try:
    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    f.close()
    raise UsageError(f"--model_dir {model_dir} is in use by {_holder(path)} "
                     f"(lock {path}); wait for it to finish, stop it, or use another "
                     "--model_dir") from None
  f.seek(0)
  f.truncate()
  json.dump({"pid": os.getpid(), "host": socket.gethostname(), "start": time.time()}, f)
  f.flush()
  return f


@contextlib.contextmanager
def held(model_dir: str, enabled: bool = True) -> Iterator[None]:
  """Holds the model_dir's writer lock for the block (nothing when not enabled)."""
  if not enabled:
    yield
    return
  try:
    os.makedirs(model_dir, exist_ok=True)
  except OSError as e:
    raise UsageError(f"cannot create --model_dir {model_dir} ({e.strerror}); pass a "
                     "directory you can write to") from None
  f = acquire(model_dir)
  try:
    yield
  finally:
    f.close()
