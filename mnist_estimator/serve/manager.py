"""Model versions as TF Serving keeps them: a base path of numbered SavedModels, polled."""

import threading

from absl import logging

from mnist_estimator.common import saved_model
from mnist_estimator.common.errors import UsageError
from mnist_estimator.serve import servable as servable_lib
from mnist_estimator.serve import status


class ModelManager:
  """Serves the newest version under a base path and swaps in newer ones without a gap.

  Like TF Serving's default version policy (latest 1): a new version is loaded beside the old
  one, then becomes the served one; requests already holding the old version finish on it.
  """

  def __init__(self, name, base_path, poll_seconds=1.0, session_config=None, loader=None):
    self.name = name
    self.base_path = base_path
    self.poll_seconds = poll_seconds
    self._session_config = session_config
    self._loader = loader or servable_lib.Servable
    self._current = None
    self._failed = {}  # version -> the error of its last load attempt
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread = None

  def load_newest(self):
    """Loads the newest version if it is not the one served; returns True if it swapped.

    Raises:
      UsageError: if nothing is served yet and there is no loadable version.
    """
    versions = saved_model.versions(self.base_path)
    if not versions and self._current is None:
      raise UsageError(f"no SavedModel in {self.base_path}: a TF Serving base path holds "
                       "numbered versions (e.g. export/best/<timestamp>); export one first")
    newest = max(versions, default=None)
    current = self._current
    if newest is None or (current and newest <= current.version):
      return False
    try:
      servable = self._loader(versions[newest], newest, self._session_config)
      servable.warm_up()
    except Exception as e:  # pylint: disable=broad-except  # a half-written export: keep serving
      reason = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
      if self._failed.get(newest) != reason:  # retried at every poll, logged once
        logging.warning("cannot load version %d of %s: %s", newest, self.name, reason)
      self._failed[newest] = reason
      if current is None:
        raise UsageError(f"cannot load {versions[newest]}: {reason}") from e
      return False
    with self._lock:
      self._current = servable
    logging.info("serving %s version %d from %s", self.name, newest, versions[newest])
    return True  # the old Servable closes its Session when its last request drops it

  def start(self):
    """Loads the newest version now, then polls for newer ones every poll_seconds."""
    self.load_newest()
    if self.poll_seconds > 0:
      self._thread = threading.Thread(target=self._poll, name="version-poll", daemon=True)
      self._thread.start()

  def stop(self):
    self._stop.set()
    if self._thread:
      self._thread.join(timeout=10)

  def _poll(self):
    while not self._stop.wait(self.poll_seconds):
      try:
        self.load_newest()
      except Exception as e:  # pylint: disable=broad-except  # polling must not die
        logging.warning("polling %s: %s", self.base_path, e)

  def names(self):
    """The names of the models served (sorted)."""
    return [self.name]

  def get(self, name, version=None, label=None):
    """The served Servable of model `name` (at `version`, or its version labelled `label`).

    Raises:
      ApiError: INVALID_ARGUMENT for no name or a version label (none is defined: TF Serving's
        answer to an unknown label), NOT_FOUND for another model or a version not served.
    """
    _check_spec(name, version, label)
    current = self._current
    wanted = f"Latest({name})" if version is None else f"Specific({name}, {version})"
    if name != self.name or current is None or (
        version is not None and int(version) != current.version):
      raise status.not_found(f"Servable not found for request: {wanted}")
    return current

  def status(self, name, version=None):
    """GetModelStatusResponse as JSON, the shape TF Serving's REST API returns.

    As in TF Serving's GetModelStatus, a version label is not looked at: all versions are listed.
    """
    _check_spec(name, version, None)
    current = self._current
    if name != self.name or current is None:
      raise status.not_found(f"Could not find any versions of model {name}")
    if version is not None and int(version) != current.version:
      raise status.not_found(f"Could not find version {version} of model {name}")
    return {"model_version_status": [{
        "version": str(current.version), "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}

  def metadata(self, name, version=None, label=None):
    """GetModelMetadataResponse as JSON: model_spec and the signature_def map."""
    servable = self.get(name, version, label)
    return {"model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": servable.signature_def_map()}}


def _check_spec(name, version, label):
  """TF Serving's ServableRequestFromModelSpec checks (server_core.cc)."""
  if not name:
    raise status.bad_request("ModelSpec has no name specified.")
  if label is not None and version is not None:
    raise status.bad_request(f"Both model version ({version}) and model version label ({label}) "
                             "cannot be supplied.")
  if label is not None:
    raise status.bad_request(f"Unrecognized servable version label: {label}")
