"""One cluster task on a Ray node: its address, the storage check, main in a session of its own."""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

# (the task's new output lines, its exit code or None while it runs)
Polled = Tuple[List[str], Optional[int]]

# Environment the driver hands on to every task (the record cache's folder, TF's switches);
# the rest of a task's environment is its node's own.
FORWARDED_PREFIXES = ("MNIST_ESTIMATOR_", "TF_")
_PR_SET_PDEATHSIG = 1
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _die_with_parent() -> None:
  """In the child before exec: SIGKILL it when the actor's process dies, however it dies.

  ray.kill and a lost node end the actor with SIGKILL, which runs no cleanup of ours;
  without this the task, in a session of its own, would outlive its actor.
  """
  ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port(host: str) -> int:
  """A TCP port free on `host` now (the task's server binds it a moment later)."""
  with socket.socket() as s:
    s.bind((host, 0))
    return s.getsockname()[1]


def storage_problem(path: str, name: str, token: str) -> Optional[str]:
  """None if `path`/`name` holds `token` here, else what this node sees instead.

  Args:
    path: a folder the driver wrote into (model_dir).
    name: the file it wrote.
    token: what it wrote.

  Returns:
    None, or "is missing" / "holds something else" / "cannot be read: ...".
  """
  if not os.path.isdir(path):
    return "is missing"
  try:
    with open(os.path.join(path, name)) as f:
      return None if f.read() == token else "holds another check file"
  except FileNotFoundError:
    return "is another folder (the driver's check file is not in it)"
  except OSError as e:
    return f"cannot be read: {e.strerror}"


def listing(folder: str, limit: int = 200) -> List[Tuple[str, int]]:
  """Sorted (relative path, size) of up to `limit` files under folder: its fingerprint."""
  found: List[Tuple[str, int]] = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(root, name)
      try:
        found.append((os.path.relpath(path, folder), os.path.getsize(path)))
      except OSError:
        continue
      if len(found) >= limit:
        return found
  return found


class TaskRunner:
  """Runs one task's `python -m mnist_estimator.main` in a session of its own on this node.

  Made a Ray actor by the driver (cluster/ray_engine.py); plain Python, so testable alone.
  """

  def __init__(self, label: str) -> None:
    self.label = label
    self._proc: Optional["subprocess.Popen[str]"] = None
    self._lines: List[str] = []
    self._reader: Optional[threading.Thread] = None
    self._lock = threading.Lock()

  def where(self, node_ip: Optional[str] = None) -> Tuple[str, int, str, int]:
    """(node ip, a free port there, hostname, this actor's pid) for this task's TF server.

    Args:
      node_ip: this node's address; None: the one Ray knows this node by.
    """
    if node_ip is None:
      import ray  # pylint: disable=g-import-not-at-top  # only in an actor
      node_ip = ray.util.get_node_ip_address()
    return node_ip, free_port(node_ip), socket.gethostname(), os.getpid()

  def check_storage(self, model_dir: str, name: str, token: str, data_dir: Optional[str] = None,
                    data_listing: Optional[Sequence[Sequence[Any]]] = None) -> Optional[str]:
    """None if this node sees the driver's model_dir and data_dir, else the problem."""
    problem = storage_problem(model_dir, name, token)
    if problem:
      return f"--model_dir={model_dir} {problem}"
    if data_dir is None:
      return None
    assert data_listing is not None, "the driver's listing of data_dir comes with it"
    if listing(data_dir) != [tuple(x) for x in data_listing]:
      return (f"--data_dir={data_dir} is missing" if not os.path.isdir(data_dir)
              else f"--data_dir={data_dir} holds other files than on the driver's machine")
    return None

  def start(self, argv: Sequence[str], env: Dict[str, str], cwd: Optional[str] = None) -> int:
    """Starts the task; returns its pid.

    Args:
      argv: the command after the interpreter (["-m", "mnist_estimator.main", ...]).
      env: variables set on top of this node's environment (TF_CONFIG among them).
      cwd: the working folder, if it exists on this node.
    """
    # The task runs the package this actor imported, wherever this node keeps it.
    python_path = filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH", os.environ.get("PYTHONPATH"))])
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **env,
                    PYTHONPATH=os.pathsep.join(python_path))
    cwd = cwd if cwd and os.path.isdir(cwd) else None
    self._proc = subprocess.Popen(  # its own session: a Ctrl-C reaches the driver alone
        [sys.executable, "-u", *argv], env=full_env, cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace",
        start_new_session=True, preexec_fn=_die_with_parent)
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()
    return self._proc.pid

  def _read(self) -> None:
    assert self._proc is not None and self._proc.stdout is not None, "start() runs it"
    for line in self._proc.stdout:
      with self._lock:
        self._lines.append(line)

  def poll(self) -> Polled:
    """(new output lines, exit code or None while it runs or its output is still coming)."""
    code = self._proc.poll() if self._proc else None
    if code is not None and self._reader is not None:  # start() made both
      self._reader.join(timeout=2)
      if self._reader.is_alive():
        code = None
    with self._lock:
      lines, self._lines = self._lines, []
    return lines, code

  def stop(self, timeout: float = 10) -> Polled:
    """SIGTERM to the task's process group, SIGKILL after `timeout` s; returns (lines, code)."""
    proc = self._proc
    if proc is None:
      return [], None
    if proc.poll() is None:
      _signal_group(proc.pid, signal.SIGTERM)
      try:
        proc.wait(timeout=timeout)
      except subprocess.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
    _signal_group(proc.pid, signal.SIGKILL)  # whatever the task itself started
    return self.poll()


def _signal_group(pid: int, signum: int) -> None:
  try:
    os.killpg(pid, signum)
  except (ProcessLookupError, PermissionError):
    pass
