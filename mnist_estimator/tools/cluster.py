"""Launches a local TF_CONFIG cluster: `cluster --workers=2 --ps=1 --evaluator -- <flags>`."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading

from absl import app
from absl import flags

from mnist_estimator.common import cli
from mnist_estimator.tools import cluster_watch
from mnist_estimator.tools import paths

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_integer("workers", 1, "Workers besides the chief.", lower_bound=0)
  flags.DEFINE_integer("ps", 1, "Parameter servers.", lower_bound=1)
  flags.DEFINE_bool("evaluator", False, "Also run an evaluator task.")
  flags.DEFINE_integer("grace_secs", 120, "After the chief ends: how long workers and the "
                       "evaluator may take to finish before they are stopped.", lower_bound=1)
  cli.define_verbose()


def free_ports(count):
  """Returns `count` distinct free TCP ports on 127.0.0.1."""
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def cluster_spec(workers, ps):
  """{"chief": [...], "worker": [...], "ps": [...]} on loopback ports."""
  ports = iter(free_ports(1 + workers + ps))
  address = lambda: f"127.0.0.1:{next(ports)}"
  spec = {"chief": [address()], "ps": [address() for _ in range(ps)]}
  if workers:
    spec["worker"] = [address() for _ in range(workers)]
  return spec


def tasks(spec, evaluator):
  """[(label, TF_CONFIG dict)] for every task, the chief first."""
  result = [(f"{kind}{i}" if kind != "chief" else "chief",
             {"cluster": spec, "task": {"type": kind, "index": i}})
            for kind in ("chief", "worker", "ps") for i in range(len(spec.get(kind, [])))]
  if evaluator:
    result.append(("evaluator", {"cluster": spec, "task": {"type": "evaluator", "index": 0}}))
  return result


def launch(training_flags, workers, ps, evaluator, grace_secs):
  """Starts every task, streams their output with task prefixes, stops them all at the end.

  Returns:
    The exit code: 0, or that of the first task that failed (see cluster_watch.watch).
  """
  spec = cluster_spec(workers, ps)
  watched = cluster_watch.Tasks()
  procs = watched.procs
  for label, tf_config in tasks(spec, evaluator):
    python_path = filter(None, [paths.REPO_ROOT, os.environ.get("PYTHONPATH")])
    env = dict(os.environ, TF_CONFIG=json.dumps(tf_config),
               PYTHONPATH=os.pathsep.join(python_path))
    procs[label] = subprocess.Popen(
        [sys.executable, "-u", "-m", "mnist_estimator.main", "--mode=train_and_evaluate",
         *training_flags], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    threading.Thread(target=watched.stream, args=(label, procs[label]), daemon=True).start()
  try:
    code = cluster_watch.watch(watched, grace_secs)  # names a task that dies, stops the rest
  except KeyboardInterrupt:
    code = 130
  finally:
    _stop_all(procs)  # parameter servers never exit by themselves
  return code


def _stop_all(procs):
  for proc in procs.values():
    if proc.poll() is None:
      proc.send_signal(signal.SIGTERM)
  for proc in procs.values():
    try:
      proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
      proc.kill()


def main(argv):
  with cli.one_line_errors(FLAGS.verbose):
    code = launch(argv[1:], FLAGS.workers, FLAGS.ps, FLAGS.evaluator, FLAGS.grace_secs)
  sys.exit(code)


def run():
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
