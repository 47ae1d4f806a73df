"""The models served, as TF Serving's ServerCore keeps them: a config, versions polled, reloads."""

import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Set

from absl import logging

from mnist_estimator.serve import config as config_lib
from mnist_estimator.serve import status
from mnist_estimator.serve import versions as versions_lib

if TYPE_CHECKING:  # for the hints only
  from mnist_estimator.serve.metrics import Metrics
  from mnist_estimator.serve.servable import Servable


class ModelManager:
  """Serves the models of a ModelServerConfig (or one model), following their base paths.

  Every `poll_seconds` each model's base path is read again and its versions loaded and
  unloaded as its version policy says (serve.versions). `reload(models)` applies a new config
  as TF Serving's HandleReloadConfigRequest does: new models are loaded before it returns,
  models no longer listed are unloaded (their status stays, END), labels are checked.

  Attributes:
    name: the first model's name (the page's default model).
    poll_seconds: how often the base paths are read (0: only at start and reload).
  """

  def __init__(self, name: Optional[str] = None, base_path: Optional[str] = None,
               poll_seconds: float = 1.0, session_config: Optional[Any] = None,
               loader: Optional[versions_lib.Loader] = None,
               models: Optional[Sequence[config_lib.ModelConfig]] = None,
               allow_labels_for_unavailable: bool = False) -> None:
    if models is None:
      assert name is not None and base_path is not None, "a model's name and base path, or models"
      models = config_lib.single(name, base_path)
    self._models = list(models)
    self.name = self._models[0].name if self._models else name
    self.poll_seconds = poll_seconds
    self._loader = loader or versions_lib.default_loader(session_config)
    self._allow_unavailable_labels = allow_labels_for_unavailable
    # name -> ModelVersions, removed models too (their status stays)
    self._versions: Dict[str, versions_lib.ModelVersions] = {}
    self._reload_lock = threading.Lock()
    self._listeners: List[Callable[[], Any]] = []
    # the server's serve.metrics.Metrics, set by serve.server.build
    self.metrics: Optional["Metrics"] = None
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None

  def start(self) -> None:
    """Loads what is on disk now, then polls every poll_seconds.

    Raises:
      ApiError: a version label names a version that is not served.
    """
    self.reload(self._models)
    if self.poll_seconds > 0:
      self._thread = threading.Thread(target=self._poll_loop, name="version-poll", daemon=True)
      self._thread.start()

  def stop(self) -> None:
    """Stops polling, after a load under way (a thread killed inside TensorFlow aborts)."""
    self._stop.set()
    if self._thread:
      self._thread.join(timeout=60)

  def add_listener(self, listener: Callable[[], Any]) -> None:
    """Calls listener() after any version is loaded or unloaded (metrics, health)."""
    self._listeners.append(listener)

  def reload(self, models: Sequence[config_lib.ModelConfig]) -> None:
    """Serves `models` (a list of config.ModelConfig) from now on.

    Raises:
      ApiError: FAILED_PRECONDITION for a label of a version not available (TF Serving's text,
        server_core.cc UpdateModelVersionLabelMap); the models are loaded all the same.
    """
    with self._reload_lock:
      listed = {m.name for m in models}
      known = dict(self._versions)  # replaced whole: the poll thread reads it without a lock
      for model in models:
        current = known.get(model.name)
        if current is None:
          known[model.name] = versions_lib.ModelVersions(model, self._loader)
        else:
          current.model, current.active = model, True
      for name, versions in known.items():
        if name not in listed:
          versions.active = False
      self._versions = known
      self._models = list(models)
      if models:
        self.name = models[0].name
      if not self.poll():  # poll() told the listeners of a change; a model gone is one too
        for listener in self._listeners:
          listener()
      self._check_labels(models)

  def _check_labels(self, models: Sequence[config_lib.ModelConfig]) -> None:
    if self._allow_unavailable_labels:
      return
    for model in models:
      served = self._versions[model.name].served
      for _, version in model.labels:
        if version not in served:
          raise status.ApiError(status.FAILED_PRECONDITION, "Request to assign label to "
                                f"version {version} of model {model.name}, which is not "
                                "currently available for inference")

  def poll(self) -> bool:
    """Reads every base path once; True if a version was loaded or unloaded."""
    changed = False
    for versions in list(self._versions.values()):
      try:
        changed |= versions.poll()
      except Exception as e:  # pylint: disable=broad-except  # polling must not die
        logging.warning("polling %s: %s", versions.model.base_path, e)
    if changed:
      for listener in self._listeners:
        listener()
    return changed

  def _poll_loop(self) -> None:
    while not self._stop.wait(self.poll_seconds):
      self.poll()

  def models(self) -> List[config_lib.ModelConfig]:
    """The models configured now (config.ModelConfig), in config order."""
    return list(self._models)

  def names(self) -> List[str]:
    """The names of the models configured now (sorted)."""
    return sorted(m.name for m in self._models)

  def known_names(self) -> Set[str]:
    """Every model name seen since start, also of models no longer configured (a set)."""
    return set(self._versions)

  def available(self, name: str) -> bool:
    """True if model `name` is configured and has a version served."""
    versions = self._versions.get(name)
    return bool(versions and versions.active and versions.served)

  def served_versions(self, name: str) -> List[int]:
    """The versions of model `name` served now (sorted; empty if none or not configured)."""
    versions = self._versions.get(name)
    return sorted(versions.served) if versions and versions.active else []

  def get(self, name: Optional[str], version: Optional[int] = None,
          label: Optional[str] = None) -> "Servable":
    """The servable of model `name` (at `version`, its `label`'s version, or the newest).

    Raises:
      ApiError: INVALID_ARGUMENT for no name, both a version and a label, or an unknown label;
        NOT_FOUND for a model or version not served (TF Serving's texts).
    """
    if not name:
      raise status.bad_request("ModelSpec has no name specified.")
    _check_spec(version, label)
    versions = self._versions.get(name)
    if versions is None or not versions.active:
      wanted = f"Latest({name})" if version is None else f"Specific({name}, {version})"
      if label is not None:
        raise status.bad_request(f"Unrecognized servable version label: {label}")
      raise status.not_found(f"Servable not found for request: {wanted}")
    return versions.get(version, label)

  def status(self, name: str, version: Optional[int] = None) -> Dict[str, Any]:
    """GetModelStatusResponse as JSON; labels are not looked at (as TF Serving's GetModelStatus).

    Raises:
      ApiError: NOT_FOUND (also for an empty name, as get_model_status_impl.cc has no check).
    """
    versions = self._versions.get(name)
    if versions is None:
      if version is not None:
        raise status.not_found(f"Could not find version {version} of model {name}")
      raise status.not_found(f"Could not find any versions of model {name}")
    return versions.status(version)

  def metadata(self, name: str, version: Optional[int] = None,
               label: Optional[str] = None) -> Dict[str, Any]:
    """GetModelMetadataResponse as JSON: model_spec and the signature_def map."""
    servable = self.get(name, version, label)
    response: Dict[str, Any] = {"model_spec": {"name": name, "signature_name": "",
                               "version": str(servable.version)},
                "metadata": {"signature_def": servable.signature_def_map()}}
    response["metadata"].update(servable.extra_metadata())
    return response


def _check_spec(version: Optional[int], label: Optional[str]) -> None:
  """TF Serving's ServableRequestFromModelSpec checks (server_core.cc) after the name's."""
  if label is not None and version is not None:
    raise status.bad_request(f"Both model version ({version}) and model version label ({label}) "
                             "cannot be supplied.")
