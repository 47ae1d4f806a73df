"""The cluster launcher: its flags, the local engine (subprocesses), main."""

import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any, Dict, List, Mapping, Sequence

from absl import app
from absl import flags

from mnist_estimator.common import cli
from mnist_estimator.common import cluster_rules
from mnist_estimator.common.errors import UsageError
from mnist_estimator.cluster import task_flags as cluster_flags
from mnist_estimator.cluster import tf_config
from mnist_estimator.cluster import watch as cluster_watch

FLAGS = flags.FLAGS
ENGINES = ("local", "ray")
# Where this package is imported from (a checkout or site-packages): each task imports the same.
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def define_flags() -> None:
  flags.DEFINE_integer("workers", 1, "Workers besides the chief.", lower_bound=0)
  flags.DEFINE_integer("ps", 1, "Parameter servers.", lower_bound=1)
  flags.DEFINE_bool("evaluator", False, "Also run an evaluator task.")
  flags.DEFINE_integer("grace_secs", 120, "After the chief ends: how long workers and the "
                       "evaluator may take to finish before they are stopped.", lower_bound=1)
  flags.DEFINE_enum("engine", "local", ENGINES, "local: subprocesses on this machine; ray: one "
                    "Ray actor per task, on the machines of a Ray cluster.")
  flags.DEFINE_string("address", None, "--engine=ray: the Ray cluster, `auto` (the one started "
                      "on this machine with `ray start`) or HOST:PORT of its head. None: a "
                      "private Ray on 127.0.0.1 for this job, stopped after it.")
  flags.DEFINE_float("task_cpus", 1.0, "--engine=ray: CPUs each task reserves (also its "
                     "--intra_op_threads unless given).", lower_bound=0.01)
  flags.DEFINE_list("task_resources", [], "--engine=ray: custom Ray resources each task asks "
                    "for, [KIND:]NAME=AMOUNT (KIND chief, worker, ps or evaluator; none: every "
                    "task), e.g. ps:big_memory=1; KIND:CPU=N sets that kind's CPUs.")
  flags.DEFINE_multi_string("runtime_env", [], "--engine=ray: a Ray runtime_env for the tasks' "
                            "actors, [KIND:]JSON, e.g. '{\"env_vars\": {\"A\": \"1\"}}' "
                            "(repeatable; a KIND's own is merged over the one for all).")
  flags.DEFINE_integer("max_restarts", 0, "--engine=ray: relaunch the whole job from the last "
                       "checkpoint up to N times when a task dies.", lower_bound=0)
  flags.DEFINE_integer("placement_timeout_secs", 120, "--engine=ray: how long tasks may wait "
                       "for a node with the CPUs and resources they ask for.", lower_bound=1)
  cli.define_verbose()


def launch(training_flags: Sequence[str], workers: int, ps: int, evaluator: bool,
           grace_secs: float) -> int:
  """Starts every task, streams their output with task prefixes, stops them all at the end.

  Returns:
    The exit code: 0, or that of the first task that failed (see watch.watch).
  """
  spec = tf_config.cluster_spec(workers, ps)
  watched = cluster_watch.Tasks()
  # The tasks' processes, by label: watched.procs holds the same, as anything with poll().
  procs: Dict[str, "subprocess.Popen[str]"] = {}
  with cluster_watch.sigterm_exits():  # from before the first task starts
    try:
      for label, task_config in tf_config.tasks(spec, evaluator):
        procs[label] = watched.procs[label] = _start(label, task_config, spec, training_flags)
        threading.Thread(target=watched.stream, args=(label, procs[label]), daemon=True).start()
      code = cluster_watch.watch(watched, grace_secs)  # names a task that dies, stops the rest
    except KeyboardInterrupt:
      code = 130
    finally:
      _stop_all(procs)  # parameter servers never exit by themselves
  return code


def _start(label: str, task_config: Mapping[str, Any], spec: Mapping[str, List[str]],
           training_flags: Sequence[str]) -> "subprocess.Popen[str]":
  """Starts one task's main under its TF_CONFIG, and says where it runs."""
  python_path = filter(None, [_PACKAGE_PARENT, os.environ.get("PYTHONPATH")])
  env = dict(os.environ, TF_CONFIG=json.dumps(task_config),
             PYTHONPATH=os.pathsep.join(python_path))
  proc = subprocess.Popen(
      [sys.executable, "-u", "-m", "mnist_estimator.main", "--mode=train_and_evaluate",
       *training_flags], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  task = task_config["task"]
  where = f" on {spec[task['type']][task['index']]}" if task["type"] in spec else ""
  print(f"[cluster] {label}{where}, pid {proc.pid}", flush=True)  # as the Ray engine
  return proc


def _stop_all(procs: Mapping[str, "subprocess.Popen[str]"]) -> None:
  """SIGTERM, then SIGKILL after 10 s; the ps last (a stopping chief saves from its variables)."""
  for servers in (False, True):
    group = [proc for label, proc in procs.items() if label.startswith("ps") == servers]
    for proc in group:
      if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    for proc in group:
      try:
        proc.wait(timeout=10)
      except subprocess.TimeoutExpired:
        proc.kill()


def _ray_only_flags() -> List[str]:
  """The --engine=ray flags given on the command line (an error with --engine=local)."""
  names = ("address", "task_cpus", "task_resources", "runtime_env", "max_restarts",
           "placement_timeout_secs")
  return [f"--{name}" for name in names if FLAGS[name].present]


def _refuse(training_flags: Sequence[str]) -> None:
  """Refuses main's flags no cluster task can run with, before any task starts."""
  cluster_rules.check(cluster_flags.value(training_flags, "distribute"),
                      cluster_flags.value(training_flags, "mode"), task_type=None)


def main(argv: Sequence[str]) -> None:
  with cli.one_line_errors(FLAGS.verbose):
    _refuse(argv[1:])
    if FLAGS.engine == "ray":
      from mnist_estimator.cluster import ray_engine  # pylint: disable=g-import-not-at-top
      options = cluster_flags.RayOptions(
          address=FLAGS.address, task_cpus=FLAGS.task_cpus,
          resources=cluster_flags.parse_resources(FLAGS.task_resources),
          runtime_envs=cluster_flags.parse_runtime_envs(FLAGS.runtime_env),
          max_restarts=FLAGS.max_restarts, placement_timeout_secs=FLAGS.placement_timeout_secs,
          grace_secs=FLAGS.grace_secs)
      code = ray_engine.launch(argv[1:], FLAGS.workers, FLAGS.ps, FLAGS.evaluator, options)
    elif _ray_only_flags():
      raise UsageError(f"{', '.join(_ray_only_flags())} only work with --engine=ray; add "
                       "--engine=ray or drop them")
    else:
      code = launch(argv[1:], FLAGS.workers, FLAGS.ps, FLAGS.evaluator, FLAGS.grace_secs)
  sys.exit(code)


def run() -> None:
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
