"""One model's versions as TF Serving's file system source and manager keep them."""

import dataclasses
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple

from absl import logging

from mnist_estimator.common import saved_model
from mnist_estimator.serve import servable as servable_lib
from mnist_estimator.serve import status
from mnist_estimator.serve import warmup

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.serve.config import ModelConfig

AVAILABLE, LOADING, END = "AVAILABLE", "LOADING", "END"
# (path, version) -> the loaded version.
Loader = Callable[[str, int], servable_lib.Servable]
# A version's files: ((path, size, mtime in ns), ...).
Stamp = Tuple[Tuple[str, int, int], ...]


@dataclasses.dataclass(frozen=True)
class VersionState:
  """A version's ModelVersionStatus: its state and the status of its last load or unload."""
  state: str
  error_code: str = "OK"
  error_message: str = ""

  def as_json(self, version: int) -> Dict[str, Any]:
    return {"version": str(version), "state": self.state,
            "status": {"error_code": self.error_code, "error_message": self.error_message}}


def on_disk(base_path: str) -> Dict[int, str]:
  """{version: path} under a base path: numbered SavedModels, or a .tflite/.onnx file as one."""
  if servable_lib.is_model_file(base_path):  # a missing file too: no version yet
    if not os.path.isfile(base_path):
      return {}
    return {servable_lib.file_version(base_path): base_path}
  return saved_model.versions(base_path)


def default_loader(session_config: Optional[Any] = None) -> Loader:
  """(path, version) -> a loaded servable: a SavedModel's Session, or TFLite/onnxruntime."""
  threads = session_config.intra_op_parallelism_threads if session_config else None

  def load(path: str, version: int) -> servable_lib.Servable:
    return servable_lib.Servable(path, version, threads or None, session_config)
  return load


class ModelVersions:
  """The served versions of one model, following its base path on every poll.

  As TF Serving with servable_versions_always_present=false and its AvailabilityPreservingPolicy
  (core/availability_preserving_policy.cc): the policy picks the versions on disk to serve; new
  ones are loaded beside the served ones before the versions no longer wanted are unloaded, so a
  swap has no gap; a version gone from disk is unloaded; with none left nothing is served. A
  version that fails to load keeps its error in the status (END) and is tried again once its
  files change (a copy still being written).
  """

  def __init__(self, model: "ModelConfig", loader: Loader) -> None:
    self.model = model  # a config.ModelConfig
    self.active = True  # False once the model is removed from the config: everything unloads
    self._loader = loader
    # version -> servable; replaced whole, so readers need no lock
    self.served: Dict[int, servable_lib.Servable] = {}
    self.states: Dict[int, VersionState] = {}  # replaced whole too
    self._tried: Dict[int, Stamp] = {}  # version -> the files' stamp when its load failed
    self._lock = threading.Lock()  # one poll at a time

  def poll(self) -> bool:
    """Loads and unloads versions to match the disk and the policy; True if anything changed."""
    with self._lock:
      found = on_disk(self.model.base_path) if self.active else {}
      wanted = self.model.policy.select(found)
      loaded: Dict[int, servable_lib.Servable] = {}
      for version in sorted(wanted - set(self.served), reverse=True):
        servable = self._load(version, found[version])
        if servable is not None:
          loaded[version] = servable
      served = {**self.served, **loaded}
      unwanted = set(served) - wanted
      # AvailabilityPreservingPolicy: an unwanted version is kept while no wanted one is served.
      if wanted and not wanted & set(served):
        unwanted = set(sorted(unwanted)[:-1])
      if not loaded and not unwanted:
        return False
      self.served = {v: s for v, s in served.items() if v not in unwanted}
      self._set_states({**{v: VersionState(AVAILABLE) for v in loaded},
                        **{v: VersionState(END) for v in unwanted}})
      for version in sorted(unwanted):
        logging.info("unloaded version %d of %s", version, self.model.name)
      return True

  def _load(self, version: int, path: str) -> Optional[servable_lib.Servable]:
    """The servable of `version`, or None (its error kept in the status) if it does not load."""
    stamp = _stamp(path)
    if self._tried.get(version) == stamp:
      return None  # failed before, and its files have not changed since
    self._set_states({version: VersionState(LOADING)})
    try:
      servable = self._loader(path, version)
      servable.model_name = self.model.name  # for the metrics of its batches
      servable.warm_up()
      replayed = warmup.replay(servable)  # a bad record fails the load, as in TF Serving
      if replayed:
        logging.info("replayed %d warmup records of version %d of %s", replayed, version,
                     self.model.name)
    except Exception as e:  # pylint: disable=broad-except  # a half-written copy: serve on
      self._tried[version] = stamp
      message = e.message if isinstance(e, status.ApiError) else (
          f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
      logging.warning("cannot load version %d of %s from %s: %s", version, self.model.name, path,
                      message)
      self._set_states({version: VersionState(END, _error_code(e), message)})
      return None
    self._tried.pop(version, None)
    logging.info("serving version %d of %s from %s", version, self.model.name, path)
    return servable

  def _set_states(self, changes: Mapping[int, VersionState]) -> None:
    self.states = {**self.states, **changes}

  def get(self, version: Optional[int] = None,
          label: Optional[str] = None) -> servable_lib.Servable:
    """The servable of `version`, of `label`'s version, or the newest served.

    Raises:
      ApiError: INVALID_ARGUMENT for an unknown label, NOT_FOUND for a version not served
        (TF Serving's texts: server_core.cc GetModelVersionForLabel, ServableRequest).
    """
    served, name = self.served, self.model.name
    if label is not None:
      if label not in self.model.label_map:
        raise status.bad_request(f"Unrecognized servable version label: {label}")
      version = self.model.label_map[label]
    if version is None:
      if not served:
        raise status.not_found(f"Servable not found for request: Latest({name})")
      return served[max(served)]
    if int(version) not in served:
      raise status.not_found(f"Servable not found for request: Specific({name}, {version})")
    return served[int(version)]

  def status(self, version: Optional[int] = None) -> Dict[str, Any]:
    """GetModelStatusResponse as JSON: every version seen, newest first (as the state monitor).

    Raises:
      ApiError: NOT_FOUND with TF Serving's text (get_model_status_impl.cc).
    """
    states, name = self.states, self.model.name
    if version is not None:
      if int(version) not in states:
        raise status.not_found(f"Could not find version {version} of model {name}")
      return {"model_version_status": [states[int(version)].as_json(version)]}
    if not states:
      raise status.not_found(f"Could not find any versions of model {name}")
    return {"model_version_status": [states[v].as_json(v) for v in sorted(states, reverse=True)]}


def _stamp(path: str) -> Stamp:
  """The names, sizes and times of a version's files: a failed load is retried when they change."""
  if os.path.isfile(path):
    info = os.stat(path)
    return ((path, info.st_size, info.st_mtime_ns),)
  stamp: List[Tuple[str, int, int]] = []
  for root, _, files in os.walk(path):
    for name in files:
      try:
        info = os.stat(os.path.join(root, name))
      except OSError:
        continue
      stamp.append((os.path.join(root, name), info.st_size, info.st_mtime_ns))
  return tuple(sorted(stamp))


def _error_code(error: BaseException) -> str:
  """The canonical code's name of a load error (TensorFlow's own or a warmup's, else UNKNOWN)."""
  if isinstance(error, status.ApiError):
    return error.code
  code = getattr(error, "error_code", None)
  if isinstance(code, int):
    from tensorflow.core.protobuf import error_codes_pb2  # pylint: disable=g-import-not-at-top
    try:
      return error_codes_pb2.Code.Name(code)
    except ValueError:
      pass
  return "UNKNOWN"
