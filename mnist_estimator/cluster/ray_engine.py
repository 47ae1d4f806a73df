"""`cluster --engine=ray`: every task a Ray actor with its own TF_CONFIG, on one machine or many."""

import json
import os
import re
import secrets
import uuid
from types import ModuleType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import mnist_estimator
from mnist_estimator.cluster import ray_task
from mnist_estimator.cluster import task_flags as cluster_flags
from mnist_estimator.cluster import tf_config as cluster
from mnist_estimator.cluster import watch as cluster_watch
from mnist_estimator.common.errors import UsageError

# Ray's switch for clusters of one machine (documented for Windows and macOS): at 0 its node
# address is 127.0.0.1; on Linux it is otherwise the host's address, even for a private Ray.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
_STOP_SECS = 10  # as the local launcher: SIGTERM, then SIGKILL
_AUTH_MODE = "RAY_AUTH_MODE"
_POLL_TIMEOUT_SECS = 60
# Where an actor runs: (node ip, a free port there, hostname, the actor's pid).
Place = Tuple[str, int, str, int]


def _import_ray() -> ModuleType:
  try:
    import ray  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise UsageError("--engine=ray needs Ray: pip install 'mnist_estimator[ray]'") from None
  return ray


def connect(address: Optional[str], needed: Mapping[str, float]) -> ModuleType:
  """Joins the Ray cluster at `address`, or starts a private one on 127.0.0.1.

  Args:
    address: "auto", "HOST:PORT", or None.
    needed: {"CPU": n, resource: amount} that all tasks ask for together (a private Ray
      declares them, so that a command meant for many machines also runs on this one).

  Returns:
    The ray module, connected (ray.shutdown() also stops a private Ray).

  Raises:
    UsageError: no Ray cluster answers at `address`.
  """
  if not address:  # read when Ray is imported
    os.environ.update(LOOPBACK_ENV)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a private Ray reports to no one
    _private_token()
  elif _has_token():  # `ray start` uses the token it finds; a driver must be told to
    os.environ.setdefault(_AUTH_MODE, "token")
  ray = _import_ray()
  kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
  if address:
    try:
      ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
      raise UsageError(
          f"no Ray cluster answers at --address={address} ({str(e).splitlines()[0]}): start "
          "one with `ray start --head` (if it uses token authentication, its token must be "
          "here too: RAY_AUTH_TOKEN or ~/.ray/auth_token), or drop --address for a private "
          "Ray on this machine") from None
    return ray
  # The tasks share this machine's cores as the local launcher's do; Ray only counts them.
  custom = {name: amount for name, amount in needed.items() if name != "CPU"}
  ray.init(num_cpus=max(os.cpu_count() or 1, int(needed.get("CPU", 0) + 0.999)),
           resources=custom or None, **kwargs)
  return ray


def _needed(tasks: Sequence[Tuple[str, str, int]],
            options: cluster_flags.RayOptions) -> Dict[str, float]:
  """{"CPU": total, resource: total} over every task."""
  total: Dict[str, float] = {}
  for _, kind, _ in tasks:
    cpus, resources = options.task_resources(kind)
    for name, amount in {"CPU": cpus, **resources}.items():
      total[name] = total.get(name, 0) + amount
  return total


def _private_token() -> None:
  """Token authentication for a private Ray, with a token that lives as long as it does.

  ray.init() would otherwise write a token to ~/.ray/auth_token, where every later `ray start`
  on this machine finds it and turns authentication on. Ray's processes inherit this one's
  environment, so the token never touches the disk. RAY_AUTH_MODE=disabled is respected.
  """
  os.environ.setdefault(_AUTH_MODE, "token")
  os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def _runtime_env(options: cluster_flags.RayOptions, kind: str) -> Dict[str, Any]:
  """The task kind's runtime_env, its env_vars with grpcio's fork handlers off.

  An actor starts its task with subprocess in a Ray worker, where grpcio is busy: on Python
  3.9 (fork, not vfork) the handlers could abort the child (see mnist_estimator/__init__.py).
  """
  runtime_env = dict(options.runtime_env(kind) or {})
  runtime_env["env_vars"] = {**mnist_estimator.GRPC_FORK_ENV, **runtime_env.get("env_vars", {})}
  return runtime_env


def _has_token() -> bool:
  """Whether this machine holds a Ray token (where Ray itself looks for one)."""
  path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
  return bool(os.environ.get("RAY_AUTH_TOKEN")) or os.path.isfile(path)


def launch(training_flags: Sequence[str], workers: int, ps: int, evaluator: bool,
           options: cluster_flags.RayOptions) -> int:
  """Runs the job on Ray, relaunching it whole up to options.max_restarts times.

  Args:
    training_flags: main's flags (they must name a --model_dir every node sees).
    workers, ps, evaluator: the tasks, as for the local launcher.
    options: a cluster_flags.RayOptions.

  Returns:
    The exit code: 0, or that of the task that failed last (130/143 when interrupted).

  Raises:
    UsageError: bad flags, no cluster, tasks that cannot be placed, unshared storage.
  """
  argv, shared = cluster_flags.for_ray(training_flags, options.task_cpus)
  tasks = cluster.labels(workers, ps, evaluator)
  ray = None
  with cluster_watch.sigterm_exits():  # SIGTERM unwinds like Ctrl-C
    try:
      ray = connect(options.address, _needed(tasks, options))
      for attempt in range(options.max_restarts + 1):
        if attempt:
          print(f"[cluster] restart {attempt}/{options.max_restarts}: relaunching every task "
                f"from the last checkpoint ({_last_checkpoint(shared['model_dir'])})",
                flush=True)
        code = Job(ray, tasks, argv, shared, options).run()
        if code == 0:
          return 0
      return code
    except KeyboardInterrupt:
      print("[cluster] interrupted: every task stopped; the last checkpoint is kept", flush=True)
      return 130
    finally:
      if ray is not None:
        ray.shutdown()


def _last_checkpoint(model_dir: str) -> str:
  """"step N" of the newest model.ckpt-N in model_dir, or "none yet"."""
  steps = [int(m.group(1)) for name in os.listdir(model_dir)
           for m in [re.match(r"model\.ckpt-(\d+)\.index$", name)] if m]
  return f"step {max(steps):,}" if steps else "no checkpoint yet: from step 0"


class Job:
  """One launch of every task as a Ray actor: place, check storage, start, watch, stop."""

  def __init__(self, ray: ModuleType, tasks: Sequence[Tuple[str, str, int]], argv: Sequence[str],
               shared: Mapping[str, str], options: cluster_flags.RayOptions) -> None:
    self._ray = ray
    self._tasks = tasks
    self._argv = argv
    self._shared = shared
    self._options = options
    self._actors: Dict[str, Any] = {}  # label: its Ray actor handle
    self._started: List[str] = []  # labels of the tasks whose process was started
    self._watched = cluster_watch.Tasks()

  def run(self) -> int:
    """Returns the exit code of cluster_watch.watch; every actor is gone afterwards."""
    try:
      runner = self._ray.remote(ray_task.TaskRunner)
      for label, kind, _ in self._tasks:
        cpus, resources = self._options.task_resources(kind)
        self._actors[label] = runner.options(
            num_cpus=cpus, resources=resources, runtime_env=_runtime_env(self._options, kind),
            max_restarts=0).remote(label)
      places = self._place()
      self._check_storage(places)
      self._start(places)
      return cluster_watch.watch(self._watched, self._options.grace_secs)
    finally:
      self._stop()

  def _place(self) -> Dict[str, Place]:
    """{label: (node ip, port, hostname)} once every actor is placed; distinct ports."""
    refs = {label: actor.where.remote() for label, actor in self._actors.items()}
    ready, pending = self._ray.wait(list(refs.values()), num_returns=len(refs),
                                    timeout=self._options.placement_timeout_secs)
    if pending:
      raise UsageError(self._unplaced([label for label, ref in refs.items() if ref in pending]))
    places = {label: self._get(label, ref) for label, ref in refs.items()}
    for _ in range(5):  # two tasks of one node may have drawn the same free port
      seen, again = set(), []
      for label, (ip, port, _, _) in places.items():
        (again.append(label) if (ip, port) in seen else seen.add((ip, port)))
      if not again:
        return places
      for label in again:
        places[label] = self._get(label, self._actors[label].where.remote())
    raise UsageError("could not draw distinct free ports for the tasks; retry")

  def _get(self, label: str, ref: Any) -> Any:
    try:
      return self._ray.get(ref)
    except self._ray.exceptions.RayError as e:
      raise UsageError(f"task {label} could not start on its Ray node "
                       f"({str(e).strip().splitlines()[-1]}): install "
                       "'mnist_estimator[ray]' there, the same version as here") from None

  def _unplaced(self, pending: Sequence[str]) -> str:
    options = self._options
    asks = []
    for label in pending:
      cpus, resources = options.task_resources(label.rstrip("0123456789"))
      wants = [f"{cpus:g} CPU"] + [f"{v:g} {k}" for k, v in resources.items()]
      asks.append(f"{label} {', '.join(wants)}")
    total = ", ".join(f"{v:g} {k}" for k, v in sorted(self._ray.cluster_resources().items())
                      if not k.startswith(("node:", "object_store_memory", "memory")))
    return (f"could not place every task within {options.placement_timeout_secs:g} s "
            f"(--placement_timeout_secs): {'; '.join(asks)} (--task_cpus, --task_resources), "
            f"and the Ray cluster has {total} in all; add nodes or ask for less")

  def _check_storage(self, places: Mapping[str, Place]) -> None:
    """Every actor must read the token the driver wrote into model_dir, before any training."""
    model_dir, data_dir = self._shared["model_dir"], self._shared.get("data_dir")
    os.makedirs(model_dir, exist_ok=True)
    name, token = f".cluster-check-{uuid.uuid4().hex}", uuid.uuid4().hex
    path = os.path.join(model_dir, name)
    with open(path, "w") as f:
      f.write(token)
    try:
      files = ray_task.listing(data_dir) if data_dir else None
      refs = {label: actor.check_storage.remote(model_dir, name, token, data_dir, files)
              for label, actor in self._actors.items()}
      for label, ref in refs.items():
        problem = self._get(label, ref)
        if problem:
          ip, _, host, _ = places[label]
          raise UsageError(
              f"task {label} on node {host} ({ip}) cannot see this job's storage: {problem} "
              f"there; mount the same shared filesystem (NFS or the like) at that path on "
              f"{host}, as on this machine")
    finally:
      os.remove(path)

  def _start(self, places: Mapping[str, Place]) -> None:
    spec = cluster.spec_from({label: f"{ip}:{port}" for label, (ip, port, _, _) in places.items()
                              if not label.startswith("evaluator")})
    env = {k: v for k, v in os.environ.items()
           if k.startswith(ray_task.FORWARDED_PREFIXES) and k != "TF_CONFIG"}
    env["OMP_NUM_THREADS"] = str(max(1, round(self._options.task_cpus)))  # Ray sets 1
    for label, tf_config in cluster.tasks(spec, evaluator="evaluator" in self._actors):
      task_env = dict(env, TF_CONFIG=json.dumps(tf_config))
      pid = self._get(label, self._actors[label].start.remote(self._argv, task_env, os.getcwd()))
      self._started.append(label)
      ip, port, host, actor_pid = places[label]
      where = f"{ip}:{port}" if label != "evaluator" else ip
      print(f"[cluster] {label} on {host} ({where}), pid {pid} (Ray actor pid {actor_pid})",
            flush=True)
      self._watched.procs[label] = RemoteTask(self._ray, self._actors[label], label,
                                              self._watched)

  def _stop(self) -> None:
    """Stops every task (SIGTERM, then SIGKILL), prints its last lines, ends its actor.

    The parameter servers go last: they hold the variables that a chief stopping on
    SIGTERM still reads to save its final checkpoint.
    """
    for servers in (False, True):
      refs = {label: self._actors[label].stop.remote(_STOP_SECS) for label in self._started
              if label.startswith("ps") == servers}
      for label, ref in refs.items():
        try:
          lines, _ = self._ray.get(ref, timeout=_STOP_SECS + 10)
        except Exception:  # pylint: disable=broad-except  # a dead actor took its task along
          continue
        for line in lines:
          self._watched.emit(label, line)
    for actor in self._actors.values():
      self._ray.kill(actor)  # its worker process goes, and with it (PDEATHSIG) any task left
    self._actors.clear()


class RemoteTask:
  """A Ray task's handle with Popen's poll(): brings its new output through Tasks.emit."""

  def __init__(self, ray: Any, actor: Any, label: str, watched: cluster_watch.Tasks) -> None:
    self._ray, self._actor, self._label, self._watched = ray, actor, label, watched
    self.code: Optional[int] = None

  def poll(self) -> Optional[int]:
    if self.code is not None:
      return self.code
    try:
      lines, self.code = self._ray.get(self._actor.poll.remote(), timeout=_POLL_TIMEOUT_SECS)
    except self._ray.exceptions.GetTimeoutError:
      lines, self.code = [f"(its Ray actor did not answer for {_POLL_TIMEOUT_SECS} s)"], 1
    except self._ray.exceptions.RayError as e:  # its node or its process died
      lines, self.code = [f"(its Ray actor died: {str(e).strip().splitlines()[0]})"], 1
    for line in lines:
      self._watched.emit(self._label, line)
    return self.code
