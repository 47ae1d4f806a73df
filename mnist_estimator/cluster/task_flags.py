"""A Ray job's options, and main's flags as many machines need them (shared paths absolute)."""

import dataclasses
import json
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mnist_estimator.common.errors import UsageError

MAIN = ("-m", "mnist_estimator.main", "--mode=train_and_evaluate")
SHARED = ("model_dir", "data_dir")  # the paths every node must see alike
KINDS = ("chief", "worker", "ps", "evaluator")


def _expanded(argv: Sequence[str], depth: int = 0) -> List[str]:
  """argv with each --flagfile=FILE replaced by its flags (as absl reads them)."""
  result: List[str] = []
  for arg in argv:
    name, _, value = arg.partition("=")
    if name in ("--flagfile", "-flagfile") and value and depth < 10:
      try:
        with open(value) as f:
          lines = [line.strip() for line in f]
      except OSError as e:
        raise UsageError(f"--flagfile={value}: {e.strerror}") from None
      result += _expanded([line for line in lines if line and not line.startswith("#")],
                          depth + 1)
    else:
      result.append(arg)
  return result


def value(argv: Sequence[str], name: str) -> Optional[str]:
  """The last value of --name in argv (flagfiles read), or None.

  Raises:
    UsageError: `--name VALUE` with a space (absl takes it, but a cluster needs one form).
  """
  found = None
  for arg in _expanded(argv):
    if arg in (f"--{name}", f"-{name}"):
      raise UsageError(f"write --{name}=VALUE (with =) in a cluster's training flags")
    for prefix in (f"--{name}=", f"-{name}="):
      if arg.startswith(prefix):
        found = arg[len(prefix):]
  return found


def for_ray(training_flags: Sequence[str],
            task_cpus: float) -> Tuple[List[str], Dict[str, str]]:
  """The task command after the interpreter, and the shared paths it uses.

  Args:
    training_flags: main's flags as given after `--`.
    task_cpus: the CPUs each task reserves: its --intra_op_threads unless given (Ray sets
      OMP_NUM_THREADS=1 in actors, and TF would size its pools by the whole machine).

  Returns:
    (argv, {"model_dir": abs path, "data_dir": abs path or absent}).

  Raises:
    UsageError: no --model_dir.
  """
  given = {name: value(training_flags, name) for name in SHARED}
  if not given["model_dir"]:
    raise UsageError("--engine=ray needs --model_dir=DIR (after --) on a filesystem every "
                     "node of the Ray cluster sees (NFS or the like)")
  shared = {name: os.path.abspath(os.path.expanduser(path))
            for name, path in given.items() if path}
  argv = [*MAIN, *training_flags] + [f"--{name}={path}" for name, path in shared.items()]
  if value(training_flags, "intra_op_threads") is None:
    argv.append(f"--intra_op_threads={max(1, round(task_cpus))}")
  return argv, shared


@dataclasses.dataclass(frozen=True)
class RayOptions:
  """How the job uses Ray.

  Attributes:
    address: "auto", "HOST:PORT" or None (a private Ray on 127.0.0.1 for this job).
    task_cpus: CPUs each task reserves.
    resources: {kind or "": {resource: amount}}; "" applies to every task.
    runtime_envs: {kind or "": a Ray runtime_env dict}; a kind's own merged over "".
    max_restarts: how many times the whole job may be relaunched after a task dies.
    placement_timeout_secs: how long the tasks may wait for a node.
    grace_secs: how long the others may run after the chief ends (cluster/watch.py).
  """
  address: Optional[str] = None
  task_cpus: float = 1.0
  resources: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
  runtime_envs: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
  max_restarts: int = 0
  placement_timeout_secs: float = 120
  grace_secs: int = 120

  def task_resources(self, kind: str) -> Tuple[float, Dict[str, float]]:
    """(CPUs, custom resources) a task of `kind` asks for ("CPU" among them overrides task_cpus)."""
    asked = {**self.resources.get("", {}), **self.resources.get(kind, {})}
    return asked.pop("CPU", self.task_cpus), asked

  def runtime_env(self, kind: str) -> Optional[Dict[str, Any]]:
    """The Ray runtime_env of a task of `kind`, or None."""
    return {**self.runtime_envs.get("", {}), **self.runtime_envs.get(kind, {})} or None


def parse_resources(items: Sequence[str]) -> Dict[str, Dict[str, float]]:
  """{kind or "": {name: amount}} from ["[KIND:]NAME=AMOUNT", ...].

  Raises:
    UsageError: an item of another form, an unknown kind or a bad amount.
  """
  result: Dict[str, Dict[str, float]] = {}
  for item in items:
    match = re.fullmatch(r"(?:(\w+):)?([\w.\-/]+)=([0-9.]+)", item.strip())
    if not match or match.group(1) not in (None, *KINDS):
      raise UsageError(f"--task_resources={item}: expected [KIND:]NAME=AMOUNT with KIND one "
                       f"of {', '.join(KINDS)}, e.g. ps:big_memory=1")
    try:
      amount = float(match.group(3))
    except ValueError:
      raise UsageError(f"--task_resources={item}: {match.group(3)} is not a number") from None
    result.setdefault(match.group(1) or "", {})[match.group(2)] = amount
  return result


def parse_runtime_envs(items: Sequence[str]) -> Dict[str, Dict[str, Any]]:
  """{kind or "": runtime_env dict} from ["[KIND:]JSON", ...].

  Raises:
    UsageError: an unknown kind, or JSON that is not an object.
  """
  result: Dict[str, Dict[str, Any]] = {}
  for item in items:
    kind, sep, text = item.partition(":")
    if not sep or kind.strip().startswith("{"):
      kind, text = "", item
    if kind and kind not in KINDS:
      raise UsageError(f"--runtime_env={item}: {kind} is no task kind; use one of "
                       f"{', '.join(KINDS)}, or none for every task")
    try:
      env = json.loads(text)
    except json.JSONDecodeError as e:
      raise UsageError(f"--runtime_env={item}: not JSON ({e.msg} at character {e.pos})") from None
    if not isinstance(env, dict):
      raise UsageError(f"--runtime_env={item}: expected a JSON object such as "
                       '{"env_vars": {"NAME": "value"}}')
    result.setdefault(kind, {}).update(env)
  return result
