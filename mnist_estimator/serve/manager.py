"""The models served, as TF Serving's ServerCore keeps them: a config, versions polled, reloads."""

import threading

from absl import logging

from mnist_estimator.serve import config as config_lib
from mnist_estimator.serve import status
from mnist_estimator.serve import versions as versions_lib


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

  def __init__(self, name=None, base_path=None, poll_seconds=1.0, session_config=None,
               loader=None, models=None, allow_labels_for_unavailable=False):
    self._models = list(models) if models is not None else config_lib.single(name, base_path)
    self.name = self._models[0].name if self._models else name
    self.poll_seconds = poll_seconds
    self._loader = loader or versions_lib.default_loader(session_config)
    self._allow_unavailable_labels = allow_labels_for_unavailable
    self._versions = {}  # name -> ModelVersions, removed models too (their status stays)
    self._reload_lock = threading.Lock()
    self._listeners = []
    self.metrics = None  # the server's serve.metrics.Metrics, set by serve.server.build
    self._stop = threading.Event()
    self._thread = None

  def start(self):
    """Loads what is on disk now, then polls every poll_seconds.

    Raises:
      ApiError: a version label names a version that is not served.
    """
    self.reload(self._models)
    if self.poll_seconds > 0:
      self._thread = threading.Thread(target=self._poll_loop, name="version-poll", daemon=True)
      self._thread.start()

  def stop(self):
    """Stops polling, after a load under way (a thread killed inside TensorFlow aborts)."""
    self._stop.set()
    if self._thread:
      self._thread.join(timeout=60)

  def add_listener(self, listener):
    """Calls listener() after any version is loaded or unloaded (metrics, health)."""
    self._listeners.append(listener)

  def reload(self, models):
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

  def _check_labels(self, models):
    if self._allow_unavailable_labels:
      return
    for model in models:
      served = self._versions[model.name].served
      for _, version in model.labels:
        if version not in served:
          raise status.ApiError(status.FAILED_PRECONDITION, "Request to assign label to "
                                f"version {version} of model {model.name}, which is not "
                                "currently available for inference")

  def poll(self):
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

  def _poll_loop(self):
    while not self._stop.wait(self.poll_seconds):
      self.poll()

  def models(self):
    """The models configured now (config.ModelConfig), in config order."""
    return list(self._models)

  def names(self):
    """The names of the models configured now (sorted)."""
    return sorted(m.name for m in self._models)

  def known_names(self):
    """Every model name seen since start, also of models no longer configured (a set)."""
    return set(self._versions)

  def available(self, name):
    """True if model `name` is configured and has a version served."""
    versions = self._versions.get(name)
    return bool(versions and versions.active and versions.served)

  def served_versions(self, name):
    """The versions of model `name` served now (sorted; empty if none or not configured)."""
    versions = self._versions.get(name)
    return sorted(versions.served) if versions and versions.active else []

  def get(self, name, version=None, label=None):
    """The servable of model `name` (at `version`, its `label`'s version, or the newest).

    Raises:
      ApiError: INVALID_ARGUMENT for no name, both a version and a label, or an unknown label;
        NOT_FOUND for a model or version not served (TF Serving's texts).
    """
    _check_spec(name, version, label)
    versions = self._versions.get(name)
    if versions is None or not versions.active:
      wanted = f"Latest({name})" if version is None else f"Specific({name}, {version})"
      if label is not None:
        raise status.bad_request(f"Unrecognized servable version label: {label}")
      raise status.not_found(f"Servable not found for request: {wanted}")
    return versions.get(version, label)

  def status(self, name, version=None):
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

  def metadata(self, name, version=None, label=None):
    """GetModelMetadataResponse as JSON: model_spec and the signature_def map."""
    servable = self.get(name, version, label)
    response = {"model_spec": {"name": name, "signature_name": "",
                               "version": str(servable.version)},
                "metadata": {"signature_def": servable.signature_def_map()}}
    response["metadata"].update(servable.extra_metadata())
    return response


def _check_spec(name, version, label):
  """TF Serving's ServableRequestFromModelSpec checks (server_core.cc)."""
  if not name:
    raise status.bad_request("ModelSpec has no name specified.")
  if label is not None and version is not None:
    raise status.bad_request(f"Both model version ({version}) and model version label ({label}) "
                             "cannot be supplied.")
