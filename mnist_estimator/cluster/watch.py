"""Watches a cluster's tasks (local or Ray): names one that died, stops the rest, obeys SIGTERM."""

import contextlib
import signal
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Dict, Iterator, Optional, Protocol

if TYPE_CHECKING:  # for the hints only
  import subprocess

_POLL_SECS = 0.5


class Proc(Protocol):
  """What a watched task is: Popen's poll() (None while it runs, else its exit code)."""

  def poll(self) -> Optional[int]:
    ...


class Tasks:
  """The launched tasks by label, with each one's last line of output.

  `procs` maps a label to anything with Popen's poll(): a local subprocess, or a Ray
  task's handle (cluster/ray_engine.py) whose poll() brings its new lines through emit().
  """

  def __init__(self) -> None:
    self.procs: Dict[str, Proc] = {}
    self.last_line: Dict[str, str] = {}
    self._lock = threading.Lock()

  def stream(self, label: str, proc: "subprocess.Popen[str]") -> None:
    """Copies a task's output with a `[label]` prefix (run in a thread per task)."""
    assert proc.stdout is not None, "started with stdout=PIPE"
    for line in proc.stdout:
      self.emit(label, line)

  def emit(self, label: str, line: str) -> None:
    """Prints one line of a task's output with its `[label]` prefix."""
    with self._lock:
      if line.strip():
        self.last_line[label] = line.strip()
      text = line.rstrip("\n")
      sys.stdout.write(f"[{label}] {text}\n")
      sys.stdout.flush()

  def died(self, label: str, code: int) -> str:
    """The one-line message for a task that ended badly."""
    last = self.last_line.get(label, "(no output)")
    how = f"exit code {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
    return f"error: task {label} died ({how}); its last line: {last}; stopping the others"


def _terminated(signum: int, frame: Optional[FrameType]) -> None:
  del frame
  raise SystemExit(128 + signum)


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
  """Within it, SIGTERM raises SystemExit(143) in the main thread, so `finally` stops tasks.

  A launcher enters it before it starts the first task: a SIGTERM's default action would end
  it at once and leave its tasks running (a parameter server forever).
  """
  main = threading.current_thread() is threading.main_thread()
  previous = signal.signal(signal.SIGTERM, _terminated) if main else None
  try:
    yield
  finally:
    if main:
      signal.signal(signal.SIGTERM, previous)


def watch(tasks: Tasks, grace_secs: float) -> int:
  """Waits for the chief; stops everything as soon as any task fails.

  A parameter server never ends by itself, so a ps that exits is a failure too.
  After the chief succeeds, the workers and evaluator get grace_secs to finish.

  Args:
    tasks: a Tasks with the started processes ("chief" among them).
    grace_secs: how long the others may run on after the chief ends well.

  Returns:
    0 if every task ended well, else the failed task's exit code (or 1).
  """
  with sigterm_exits():  # SIGTERM -> SystemExit: the caller's finally stops every task
    return _wait(tasks, grace_secs)


def _wait(tasks: Tasks, grace_secs: float) -> int:
  """watch() without the signal handling."""
  deadline: Optional[float] = None
  while True:
    for label, proc in tasks.procs.items():
      code = proc.poll()
      if code is not None and (code != 0 or label.startswith("ps")):
        time.sleep(_POLL_SECS)  # let the streaming thread print the task's last lines
        print(tasks.died(label, code), file=sys.stderr, flush=True)
        return code if code > 0 else 1
    if tasks.procs["chief"].poll() == 0:
      deadline = deadline or time.time() + grace_secs
      running = [label for label, proc in tasks.procs.items()
                 if proc.poll() is None and not label.startswith("ps")]
      if not running:
        return 0
      if time.time() > deadline:
        print(f"error: {', '.join(running)} still running {grace_secs} s after the chief "
              "finished (--grace_secs); stopping them", file=sys.stderr, flush=True)
        return 1
    time.sleep(_POLL_SECS)
