"""The models to serve: a ModelServerConfig (--model_config_file), or the flags' one model."""

import dataclasses
import os
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from absl import logging
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from mnist_estimator.common.errors import UsageError
from mnist_estimator.serve import status

PLATFORM = "tensorflow"  # TF Serving's default model_platform; ours serves .tflite/.onnx too


@dataclasses.dataclass(frozen=True)
class Policy:
  """TF Serving's ServableVersionPolicy: which versions on disk are served.

  Attributes:
    kind: "latest" (the newest `num_versions`), "all", or "specific" (`versions`).
    num_versions: for latest; TF Serving's default is 1.
    versions: for specific.
  """
  kind: str = "latest"
  num_versions: int = 1
  versions: Tuple[int, ...] = ()

  def select(self, on_disk: Iterable[int]) -> Set[int]:
    """The versions to serve among the set `on_disk`."""
    if self.kind == "all":
      return set(on_disk)
    if self.kind == "specific":
      return set(on_disk) & set(self.versions)
    return set(sorted(on_disk)[-self.num_versions:]) if on_disk else set()

  def describe(self) -> str:
    if self.kind == "latest":
      return "the newest version" if self.num_versions == 1 else (
          f"the newest {self.num_versions} versions")
    if self.kind == "all":
      return "every version"
    return "versions " + ", ".join(map(str, self.versions))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """One model: TF Serving's ModelConfig fields this server uses."""
  name: str
  base_path: str
  policy: Policy = Policy()
  labels: Tuple[Tuple[str, int], ...] = ()  # ((label, version), ...), sorted

  @property
  def label_map(self) -> Dict[str, int]:
    return dict(self.labels)


def single(name: str, base_path: str) -> List[ModelConfig]:
  """The one model of --model_name and --model_base_path (or --saved_model, --model_dir)."""
  return [ModelConfig(name, base_path)]


def read_file(path: str) -> List[ModelConfig]:
  """The models of a --model_config_file (a text-format ModelServerConfig).

  Raises:
    UsageError: the file is missing, is not a ModelServerConfig, or TF Serving would refuse it.
  """
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except OSError as e:
    raise UsageError(f"cannot read --model_config_file={path}: {e.strerror}") from e
  try:
    proto = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
  except text_format.ParseError as e:
    raise UsageError(f"--model_config_file={path} is not a text-format ModelServerConfig: {e} "
                     "(e.g. model_config_list { config { name: 'mnist' base_path: '/models/"
                     "mnist' } })") from e
  try:
    return from_proto(proto)
  except status.ApiError as e:
    raise UsageError(f"--model_config_file={path}: {e.message}") from e


def from_proto(proto: Any) -> List[ModelConfig]:
  """The models of a ModelServerConfig proto, checked as TF Serving's ServerCore checks them.

  Raises:
    ApiError: INVALID_ARGUMENT with TF Serving's text (server_core.cc ValidateModelConfigList,
      model_service_impl.cc) for a config it refuses.
  """
  if proto.WhichOneof("config") != "model_config_list":
    raise status.bad_request("ServerModelConfig type not supported by HandleReloadConfigRequest."
                             " Only ModelConfigList is currently supported")
  models: List[ModelConfig] = []
  seen: Set[str] = set()
  for entry in proto.model_config_list.config:
    if entry.name in seen:
      raise status.bad_request(f"Illegal to list model {entry.name} multiple times in config "
                               "list")
    seen.add(entry.name)
    if not os.path.isabs(entry.base_path) and "://" not in entry.base_path:
      raise status.bad_request(f"Expected model {entry.name} to have an absolute path or URI; "
                               f"got base_path()={entry.base_path}")
    if entry.model_platform not in ("", PLATFORM):
      raise status.ApiError(status.FAILED_PRECONDITION, "PlatformConfigMap has no entry for "
                            f"platform {entry.model_platform}")
    models.append(ModelConfig(entry.name, entry.base_path, _policy(entry.model_version_policy),
                              tuple(sorted(entry.version_labels.items()))))
  return models


def _policy(proto: Any) -> Policy:
  """A Policy from a ServableVersionPolicy (unset: latest 1, as TF Serving)."""
  kind = proto.WhichOneof("policy_choice")
  if kind == "all":
    return Policy("all")
  if kind == "specific":
    return Policy("specific", versions=tuple(sorted(proto.specific.versions)))
  if kind == "latest" and proto.latest.num_versions > 0:
    return Policy("latest", proto.latest.num_versions)
  return Policy()


class FileWatcher:
  """Reads a --model_config_file again every poll_seconds and applies it when its text changed.

  As TF Serving's --model_config_file_poll_wait_seconds: a file that does not parse, or that
  the server refuses, is logged and the config served stays.
  """

  def __init__(self, path: str, poll_seconds: float,
               apply: Callable[[List[ModelConfig]], None]) -> None:
    self.path = path
    self.poll_seconds = poll_seconds
    self._apply = apply  # models -> None, may raise ApiError
    self._last = self._text()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._loop, name="config-poll", daemon=True)

  def _text(self) -> Optional[str]:
    try:
      with open(self.path, encoding="utf-8") as f:
        return f.read()
    except OSError:
      return None

  def check(self) -> bool:
    """Applies the file if it changed since the last look; True if it was applied."""
    text = self._text()
    if text is None or text == self._last:
      return False
    self._last = text
    try:
      self._apply(read_file(self.path))
    except (UsageError, status.ApiError) as e:
      logging.warning("not applied: %s", getattr(e, "message", e))
      return False
    logging.info("applied the new %s", self.path)
    return True

  def start(self) -> None:
    if self.poll_seconds > 0:
      self._thread.start()

  def stop(self) -> None:
    """Stops polling, after a load under way (a thread killed inside TensorFlow aborts)."""
    self._stop.set()
    if self._thread.is_alive():
      self._thread.join(timeout=60)

  def _loop(self) -> None:
    while not self._stop.wait(self.poll_seconds):
      self.check()
