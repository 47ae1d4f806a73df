"""What the cluster tests share: a launcher read line by line as it runs, process trees."""

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import helpers


def process_tree(pid):
  """pid and every descendant of it now."""
  children = {}
  for entry in os.listdir("/proc"):
    if entry.isdigit():
      try:
        with open(f"/proc/{entry}/stat") as f:
          ppid = int(f.read().rsplit(")", 1)[1].split()[1])
      except (OSError, IndexError, ValueError):
        continue
      children.setdefault(ppid, []).append(int(entry))
  found, todo = set(), [pid]
  while todo:
    found.add(todo[-1])
    todo += [c for c in children.get(todo.pop(), []) if c not in found]
  return found


def alive(pid):
  """The process runs (a zombie does not)."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


class Launched:
  """`python -m mnist_estimator.cluster ARGV`, its output read line by line as it runs.

  Every wait has a deadline that holds even when the job prints nothing (a hung job fails its
  test instead of hanging the suite); kill() ends whatever is left of it.
  """
  started = []  # every launch since the last kill_all()

  def __init__(self, *argv, env=None):
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "mnist_estimator.cluster", *argv], cwd=helpers.ROOT,
        env=env or helpers.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    self.lines = []
    self.seen = set()  # pids of the job's processes seen so far (kill() ends those left)
    self._queue = queue.Queue()  # its lines as they come; None at the end
    Launched.started.append(self)
    threading.Thread(target=self._read, daemon=True).start()

  def _read(self):
    for line in self.proc.stdout:
      self._queue.put(line)
    self._queue.put(None)

  def _next(self, deadline):
    """The next line (None at the end); fails the test at the deadline, silence or not."""
    try:
      line = self._queue.get(timeout=max(0.0, deadline - time.time()))
    except queue.Empty:
      raise AssertionError("no line in time:\n" + "".join(self.lines)[-4000:]) from None
    if line is not None:
      self.lines.append(line)
      self.note(line)
    return line

  def note(self, line):
    """Called with each line read."""
    match = re.match(r"\[cluster\] \w+ on .*, pid (\d+)", line)
    if match:
      self.seen.add(int(match.group(1)))

  def read_until(self, pattern, timeout=120):
    """Reads lines until one matches; returns the match."""
    deadline = time.time() + timeout
    while (line := self._next(deadline)) is not None:
      match = re.search(pattern, line)
      if match:
        return match
    raise AssertionError(f"no line matched {pattern}:\n" + "".join(self.lines)[-4000:])

  def finish(self, timeout=240):
    """Reads to the end; returns (exit code, every line)."""
    deadline = time.time() + timeout
    while self._next(deadline) is not None:
      pass
    return self.proc.wait(timeout=10), "".join(self.lines)

  def pid(self, label):
    """The pid of task `label` (its newest launch), from the launcher's own line."""
    return next(int(m.group(1)) for line in reversed(self.lines)
                for m in [re.match(rf"\[cluster\] {label}\b.*, pid (\d+)", line)] if m)

  def kill(self):
    """SIGKILLs what is left of the job: the launcher's tree and every task seen."""
    for pid in (self.seen | process_tree(self.proc.pid)) - {os.getpid()}:
      with contextlib.suppress(OSError):  # gone, or by now another program's pid
        with open(f"/proc/{pid}/cmdline", "rb") as f:
          if re.search(rb"ray|mnist_estimator", f.read()):
            os.kill(pid, signal.SIGKILL)
    self.proc.wait()

  @classmethod
  def kill_all(cls):
    """kill() on every launch since the last call (a fixture's teardown: a failed test's)."""
    for launched in cls.started:
      launched.kill()
    cls.started = []


def worker_trains_alone(launched, lines):
  """Holds the chief (SIGSTOP) from its first step until worker0 printed `lines` progress lines.

  tf.estimator starts worker i 5 (i + 1) s after the chief, so a chief on a fast core (or a
  busy machine's lucky one) could finish the job before the worker trains a step, whatever
  --steps says. Held, it cannot: the worker trains alone on the ps (a cluster task's session
  talks to the ps only). Returns the step its first progress line shows (the one it just did).
  """
  start = int(launched.read_until(r"^\[chief\] step ([\d,]+)/").group(1).replace(",", ""))
  chief = launched.pid("chief")
  os.kill(chief, signal.SIGSTOP)
  try:
    for _ in range(lines):
      launched.read_until(r"^\[worker0\] step ")
  finally:
    os.kill(chief, signal.SIGCONT)
  return start
